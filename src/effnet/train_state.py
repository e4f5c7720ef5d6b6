"""Step checkpoints moved to `effnet.training.checkpoints`; these names stay for code that imports them."""

from effnet.training.checkpoints import FOLDER, StepCheckpoints, rng_states, set_rng_states

__all__ = ["FOLDER", "StepCheckpoints", "rng_states", "set_rng_states"]
