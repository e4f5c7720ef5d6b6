import numpy as np
import pytest

from effnet.image_segmenter.metrics import confusion_matrix, segmentation_metrics


def test_confusion_matrix_ignores_255_and_metrics_follow_voc():
    truth = np.array([[0, 0, 1, 1], [2, 2, 255, 255]])
    prediction = np.array([[0, 1, 1, 1], [2, 0, 2, 1]])
    confusion = confusion_matrix(prediction, truth, 4)
    assert confusion.sum() == 6  # the two ignored pixels count nowhere
    assert confusion.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    metrics = segmentation_metrics(confusion, ["background", "cat", "dog", "bird"])
    # IoU: background 1/(2+2-1)=1/3, cat 2/(3+2-2)=2/3, dog 1/(1+2-1)=1/2, bird absent (NaN, not averaged)
    assert metrics["IoU/background"] == pytest.approx(1 / 3)
    assert metrics["IoU/cat"] == pytest.approx(2 / 3)
    assert metrics["IoU/dog"] == pytest.approx(1 / 2)
    assert np.isnan(metrics["IoU/bird"])
    assert metrics["mIoU"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert metrics["pixel_accuracy"] == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="prediction has 3 pixels, the mask 8"):
        confusion_matrix(np.zeros(3), truth, 4)
