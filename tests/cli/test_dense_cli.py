"""What the detection and segmentation commands share (`effnet.cli.dense`)."""

import math

from effnet.cli.dense import format_metrics


def test_format_metrics_aligns_names_and_shows_undefined_values_as_na():
    table = format_metrics({"AP": 0.51234, "APs": -1.0, "IoU/cat": math.nan})
    assert table.splitlines() == ["AP       0.5123", "APs      n/a", "IoU/cat  n/a"]
