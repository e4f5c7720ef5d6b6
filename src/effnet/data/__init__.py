"""Data: image datasets (folders, CSV files), detection datasets (Pascal VOC, Model Maker CSV, COCO), decoding
image files, transforms that follow a model's `Preprocessing`, and class names."""

from effnet.data.dataset import ImageDataset, SkippedImage, VerifyReport
from effnet.data.detection import DetectionData, DetectionSample
from effnet.data.images import IMAGE_EXTENSIONS, ImageDecodeError, load_image
from effnet.data.labels import imagenet_labels
from effnet.data.transforms import EvalTransform, TrainTransform, transforms_for

__all__ = [
    "IMAGE_EXTENSIONS",
    "DetectionData",
    "DetectionSample",
    "EvalTransform",
    "ImageDataset",
    "ImageDecodeError",
    "SkippedImage",
    "TrainTransform",
    "VerifyReport",
    "imagenet_labels",
    "load_image",
    "transforms_for",
]
