import pytest


@pytest.fixture(scope="session")
def detection_set(tmp_path_factory):
    """A small generated detection set (effnet.data.detection_set: real-photo objects with exact boxes):
    48 train / 24 test images of 160 px, 5 classes."""
    from effnet.data.detection_set import write_detection_set

    return write_detection_set(
        tmp_path_factory.mktemp("detection") / "set", train=48, test=24, image_size=160
    )


@pytest.fixture(scope="session")
def detection_parts(detection_set):
    from effnet.data.detection_set import load_detection_set

    return load_detection_set(detection_set)
