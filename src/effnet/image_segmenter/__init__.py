"""The Model Maker-style semantic-segmentation workflow: image + mask folders in, a trained, evaluated,
exported segmenter out.

    from effnet import image_segmenter
    data = image_segmenter.DataLoader.from_folder("images/", "masks/")   # index or VOC palette PNGs
    train_data, test_data = data.split(0.8)
    model = image_segmenter.create(train_data, model_spec="lraspp_efficientnet_lite0")
    print(model.evaluate(test_data))        # {"mIoU": ..., "pixel_accuracy": ..., "IoU/cat": ...}
    model.export(export_dir="out/")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from effnet.lazy import lazy_exports

_EXPORTS = {
    "DataLoader": "effnet.data.segmentation:SegmentationData",
    "ImageSegmenter": "effnet.image_segmenter.segmenter",
    "create": "effnet.image_segmenter.segmenter",
    "load": "effnet.image_segmenter.segmenter",
    "SegmenterHParams": "effnet.image_segmenter.hparams",
    "RunOptions": "effnet.training.options",
    "PretrainedWeightsError": "effnet.weights.missing",
}

__all__ = [
    "DataLoader",
    "ImageSegmenter",
    "PretrainedWeightsError",
    "RunOptions",
    "SegmenterHParams",
    "create",
    "load",
]

if TYPE_CHECKING:
    from effnet.data.segmentation import SegmentationData as DataLoader
    from effnet.image_segmenter.hparams import SegmenterHParams
    from effnet.image_segmenter.segmenter import ImageSegmenter, create, load
    from effnet.training.options import RunOptions
    from effnet.weights.missing import PretrainedWeightsError

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
