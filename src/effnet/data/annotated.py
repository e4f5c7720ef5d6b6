"""What detection and segmentation datasets share (`DetectionData`, `SegmentationData`): image samples with
their annotations and class names, the files their loader left out (`SkippedAnnotation`), the list-like
views and a seeded `split`.

numpy only (no torch)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Generic, NamedTuple, TypeVar

import numpy as np

Sample = TypeVar("Sample")
Data = TypeVar("Data", bound="AnnotatedImages")


class SkippedAnnotation(NamedTuple):
    """Something a loader left out or changed: the file to look at (annotation or image) and what happened,
    e.g. ``("labels.csv", "line 7: xmin 0.8 >= xmax 0.3; object dropped")``."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class AnnotatedImages(Generic[Sample]):
    """Samples (an image file and its annotation each) and the class names (``label_names[i]`` names label
    ``i``). A subclass checks its samples and names, then calls this ``__init__``."""

    def __init__(self, samples: Sequence[Sample], label_names: Sequence[str]) -> None:
        self._samples = list(samples)
        self._label_names = [str(name) for name in label_names]
        self._skipped: list[SkippedAnnotation] = []

    def __len__(self) -> int:
        return len(self._samples)

    def __getitem__(self, index: int) -> Sample:
        return self._samples[index]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self._samples)

    @property
    def size(self) -> int:
        """Number of images (Model Maker's name for ``len``)."""
        return len(self._samples)

    @property
    def samples(self) -> list[Sample]:
        return list(self._samples)

    @property
    def label_names(self) -> list[str]:
        """Class names; label ``i`` is ``label_names[i]``."""
        return list(self._label_names)

    @property
    def num_classes(self) -> int:
        return len(self._label_names)

    @property
    def skipped(self) -> list[SkippedAnnotation]:
        """Files and annotations the loader left out, each with the file and the reason, in reading order."""
        return list(self._skipped)

    def split(self: Data, fraction: float, seed: int = 0) -> tuple[Data, Data]:
        """(first, rest): ``fraction`` of the images (rounded to the nearest image) drawn with ``seed`` in
        ``first``, the others in ``rest``; both keep this dataset's order and its ``label_names``. The same
        seed gives the same parts."""
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise ValueError(
                f"split: fraction must be between 0 and 1, exclusive, got {fraction!r}; e.g. 0.8 puts 80% of "
                "the images in the first part"
            )
        take = int(np.floor(fraction * len(self) + 0.5))
        chosen = np.zeros(len(self), dtype=bool)
        chosen[np.random.default_rng(seed).permutation(len(self))[:take]] = True
        return self._subset(np.flatnonzero(chosen)), self._subset(np.flatnonzero(~chosen))

    def _subset(self: Data, indices: np.ndarray) -> Data:
        return type(self)([self._samples[i] for i in indices], self._label_names)
