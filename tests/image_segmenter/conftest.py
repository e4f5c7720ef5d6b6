import pytest

from effnet.data.segmentation_set import load_segmentation_set


@pytest.fixture(scope="module")
def seg_data(segmentation_set):
    """(train, test) of the generated set: 32 and 12 images of 96 px, 6 classes."""
    return load_segmentation_set(segmentation_set)


@pytest.fixture(scope="module")
def trained(seg_data, one_torch_thread):
    """LR-ASPP-Lite0, ImageNet backbone frozen, head trained 10 epochs at 64 px (about 2 s)."""
    from effnet import image_segmenter

    train, _ = seg_data
    return image_segmenter.create(train, epochs=10, input_size=64)
