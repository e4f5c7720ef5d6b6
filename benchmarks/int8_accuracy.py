"""int8 vs float accuracy of transfer-learned classifiers, measured on the exported files themselves.

For each dataset and model: train with `image_classifier.create` (Model Maker defaults: frozen pretrained
backbone, linear head), evaluate in PyTorch, export float and int8 .tflite (uint8 I/O, as Model Maker) and
.onnx (QDQ), calibrated on the training images, and evaluate every file with `effnet.runtime` on the test
images. int8 files use per-layer bias correction (`QuantizationConfig.bias_correction`, the default); with
`--uncorrected`, a "no corr." column adds the same ONNX int8 export without it.

Datasets (no network): `digits` (scikit-learn's 1,797 handwritten digits, a seeded 50/50 split, so the test
set has 899 images: one image is 0.11 points) and `textures` (10 classes of crops of scikit-image photos,
`--per-class` train crops per class from the photos' left halves, as many test crops from their right halves).

Models without pretrained weights on this machine (only Lite0/1/2 and MobileNetV2 are bundled; the others
download from the timm / torchvision hubs, which need network) are trained from random initialization instead
(whole network, `--scratch-size` pixels, `--scratch-epochs` epochs), and the table says so.

Run: .venv/bin/python benchmarks/int8_accuracy.py [--models ...] [--datasets digits,textures]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from effnet import runtime
from effnet.data.samples import write_digits_folder, write_textures_folder
from effnet.export import QuantizationConfig
from effnet.image_classifier import DataLoader, ModelSpec, create
from effnet.weights.published import weights_for
from machine import describe

MODELS = (
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
    "efficientnet_lite3",
    "efficientnet_lite4",
    "mobilenet_v2_100",
    "efficientnet_b0",
    "efficientnet_v2_b0",
)


def datasets(names: list[str], root: Path, per_class: int) -> dict[str, tuple[DataLoader, DataLoader]]:
    found = {}
    if "digits" in names:
        data = DataLoader.from_folder(write_digits_folder(root / "digits"))
        found["digits"] = data.split(0.5, seed=0)
    if "textures" in names:
        folder = write_textures_folder(root / "textures", per_class=per_class)
        found["textures"] = (
            DataLoader.from_folder(folder / "train"),
            DataLoader.from_folder(folder / "test"),
        )
    return found


def bundled_weights(model: str) -> bool:
    return any(spec.bundled for spec in weights_for(model))


def train(model: str, train_data: DataLoader, args) -> tuple[object, str]:
    if bundled_weights(model):
        return create(train_data, model_spec=model), "ImageNet, frozen"
    spec = ModelSpec(model, input_image_shape=(args.scratch_size,) * 2, pretrained=False)
    # A from-scratch recipe that converges on a few hundred images (MobileNetV2 at 48 px on 400 digits:
    # 95.5% in 20 epochs): a higher learning rate, no augmentation, no label smoothing, light weight decay.
    classifier = create(
        train_data,
        model_spec=spec,
        train_whole_model=True,
        epochs=args.scratch_epochs,
        learning_rate=0.05,
        label_smoothing=0.0,
        weight_decay=1e-5,
        probe_first=False,
        backbone_lr_scale=1.0,
    )
    return classifier, f"scratch {args.scratch_size}px"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--datasets", default="digits,textures")
    parser.add_argument("--scratch-size", type=int, default=48)
    parser.add_argument("--scratch-epochs", type=int, default=20)
    parser.add_argument("--per-class", type=int, default=40, help="textures: crops per class and split")
    parser.add_argument("--uncorrected", action="store_true", help="also ONNX int8 without bias correction")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()
    print(describe())
    rows = []
    header = (
        "| dataset | model | weights | test imgs | PyTorch | .tflite float | .tflite int8 | .onnx float "
        "| .onnx int8 | .onnx int8 no corr. | worst int8 loss (pts) |"
    )
    lines = [header, "|" + "---|" * 3 + "---:|" * 8]
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for dataset, (train_data, test_data) in datasets(
            args.datasets.split(","), work, args.per_class
        ).items():
            for model in args.models.split(","):
                start = time.time()
                classifier, weights = train(model, train_data, args)
                row = {"dataset": dataset, "model": model, "weights": weights, "test_images": len(test_data)}
                row["pytorch"] = classifier.evaluate(test_data)[1]
                exports = {"float": None, "int8": "default"}
                if args.uncorrected:
                    exports["int8_no_correction"] = QuantizationConfig(
                        "int8", classifier.train_data, bias_correction=False
                    )
                for tag, quantization in exports.items():
                    formats = ["onnx"] if tag == "int8_no_correction" else ["tflite", "onnx"]
                    files = classifier.export(
                        work / model / tag, export_format=formats, quantization_config=quantization
                    )
                    for engine, path in files.items():
                        row[f"{engine}_{tag}"] = runtime.load(path).evaluate(test_data)["accuracy"]
                        row[f"{engine}_{tag}_bytes"] = path.stat().st_size
                row["worst_int8_loss_points"] = 100 * (
                    row["pytorch"] - min(row["tflite_int8"], row["onnx_int8"])
                )
                row["seconds"] = round(time.time() - start, 1)
                rows.append(row)
                keys = ("tflite_float", "tflite_int8", "onnx_float", "onnx_int8", "onnx_int8_no_correction")
                cells = [row.get(key) for key in keys]
                lines.append(
                    f"| {dataset} | {model} | {weights} | {len(test_data)} | {100 * row['pytorch']:.2f} | "
                    + " | ".join("-" if cell is None else f"{100 * cell:.2f}" for cell in cells)
                    + f" | {row['worst_int8_loss_points']:.2f} |"
                )
                print(lines[-1], f"({row['seconds']} s)", flush=True)
    print("\n" + "\n".join(lines))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
