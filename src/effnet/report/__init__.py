"""What a training run shows a person: training curves, a confusion matrix, the misclassified images, an
HTML report tying them together, and a plain-text metrics table for the terminal.

Pure functions over plain data (lists and dicts, as a training run records them; see each function for the
shapes). Plots render with matplotlib's Agg canvas directly, never through pyplot, so a user's chosen
backend is left alone. Every file is written atomically.
"""

from effnet.report.confusion import plot_confusion_matrix
from effnet.report.curves import best_validation_epoch, plot_training_curves
from effnet.report.detection import write_detection_report
from effnet.report.html import render_report, write_report
from effnet.report.misclassified import plot_misclassified
from effnet.report.terminal import format_metrics_table

__all__ = [
    "best_validation_epoch",
    "format_metrics_table",
    "plot_confusion_matrix",
    "plot_misclassified",
    "plot_training_curves",
    "render_report",
    "write_detection_report",
    "write_report",
]
