"""Exporting a trained detector and evaluating the exported file."""

from __future__ import annotations

from pathlib import Path


def export_detector(detector, export_dir: str | Path, *args, **kwargs):
    raise NotImplementedError(
        "ObjectDetector.export needs effnet.export.detection.export_detector (branch det-export), which is "
        "not part of this build yet"
    )


def evaluate_exported(path: str | Path, data) -> dict:
    raise NotImplementedError(
        "ObjectDetector.evaluate_tflite needs the runtime's detection support (branch det-export), which is "
        "not part of this build yet"
    )
