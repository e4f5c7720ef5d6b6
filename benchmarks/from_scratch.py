"""What training from scratch costs in accuracy: the number `effnet train --from-scratch` (and
``create(..., train_whole_model=True, pretrained=False)``) warns about.

One model, one dataset, Model Maker's default settings throughout, three starts: the pretrained backbone
frozen (the default), the pretrained network fine-tuned, and random initialization fine-tuned. The data:
scikit-learn's real handwritten digits (10 classes), a stratified train/test split.

Run: .venv/bin/python benchmarks/from_scratch.py [--images 500] [--size 64] [--epochs 5]
         [--out results/from_scratch-cpu-2core.md]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from machine import describe, save_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--size", type=int, default=64, help="input size (small: fine-tuning on a CPU)")
    parser.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs (Model Maker's default)")
    parser.add_argument("--out", help="write the markdown table here too")
    args = parser.parse_args()

    from effnet.data import ImageDataset
    from effnet.data.samples import write_digits_folder
    from effnet.image_classifier import ModelSpec, create

    folder = write_digits_folder(Path(tempfile.mkdtemp(prefix="from-scratch-")), limit=args.images)
    train, test = ImageDataset.from_folder(folder, seed=0).split(0.8, seed=0)
    shape = (args.size, args.size)
    starts = [
        ("pretrained, frozen backbone (default)", {}, True),
        ("pretrained, fine-tuned", {"train_whole_model": True, "epochs": args.epochs}, True),
        ("random init, fine-tuned (from scratch)", {"train_whole_model": True, "epochs": args.epochs}, False),
    ]
    lines = [
        f"{describe()}; {args.model} at {args.size} px on {len(train)} train / {len(test)} test digits "
        "(10 classes); Model Maker's defaults otherwise",
        "",
        "| start | epochs | test accuracy | seconds |",
        "|---|---:|---:|---:|",
    ]
    for name, settings, pretrained in starts:
        began = time.perf_counter()
        spec = ModelSpec(args.model, input_image_shape=shape, pretrained=pretrained)
        classifier = create(train, model_spec=spec, **settings)
        _, accuracy = classifier.evaluate(test)
        lines.append(
            f"| {name} | {classifier.hparams.epochs} | {accuracy:.3f} | {time.perf_counter() - began:.0f} |"
        )
        print(lines[-1], flush=True)
    save_table(args.out, lines, "\nchance level: 0.100")


if __name__ == "__main__":
    main()
