"""Training detectors on a CPU: COCO AP of EfficientDet-Lite0 and SSDLite-MobileNetV2 (ImageNet backbones),
with a frozen backbone (`object_detector.create`'s default) and fine-tuned, on the generated detection set
(`effnet.data.detection_set`: objects cut from scikit-image photos pasted onto real backgrounds, exact
boxes, 5 classes; test backgrounds and coins never seen in training).

Fine-tuning first trains the neck and heads on the frozen backbone (``probe_epochs``), then the whole
network for ``--fine-tune-epochs``. Each row's seconds include decoding, feature caching and training,
not the test evaluation.

Run: .venv/bin/python benchmarks/detection_training.py [--train 500] [--test 100] [--size 192]
         [--out results/detection_training-cpu-2core.md]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from machine import describe, save_table

MODELS = ("ssdlite_mobilenet_v2", "efficientdet_lite0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=500, help="generated training images")
    parser.add_argument("--test", type=int, default=100, help="generated test images")
    parser.add_argument("--size", type=int, default=192, help="input size the detectors train at")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--frozen-epochs", type=int, nargs="+", default=[12, 6], help="per model")
    parser.add_argument("--probe-epochs", type=int, nargs="+", default=[6, 3], help="per model")
    parser.add_argument("--fine-tune-epochs", type=int, nargs="+", default=[3, 1], help="per model")
    parser.add_argument("--data", help="folder for the generated set (default: a temporary one)")
    parser.add_argument("--out", help="write the markdown table here too")
    parser.add_argument("--json", help="append each row as a JSON line here")
    args = parser.parse_args()

    from effnet import object_detector
    from effnet.data import detection_set

    folder = Path(args.data or tempfile.mkdtemp(prefix="detection-training-"))
    root = detection_set.write_detection_set(folder / "set", train=args.train, test=args.test, image_size=320)
    train, test = detection_set.load_detection_set(root)
    lines = [
        f"{describe()}; generated detection set: {len(train)} train / {len(test)} test images of 320 px, "
        f"{len(train.label_names)} classes ({', '.join(train.label_names)}), trained at {args.size} px, "
        "batch 8, SGD lr 0.08, horizontal flips",
        "",
        "| detector | mode | epochs | test AP | test AP50 | test AP75 | train seconds |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    for position, name in enumerate(args.models):
        runs = [
            ("frozen backbone", {"epochs": args.frozen_epochs[position]}),
            (
                "fine-tuned",
                {
                    "train_whole_model": True,
                    "probe_epochs": args.probe_epochs[position],
                    "epochs": args.fine_tune_epochs[position],
                },
            ),
        ]
        for mode, settings in runs:
            began = time.perf_counter()
            model = object_detector.create(
                train, model_spec=name, batch_size=8, input_size=args.size, **settings
            )
            seconds = time.perf_counter() - began
            metrics = model.evaluate(test)
            epochs = (
                f"{settings['probe_epochs']} heads + {settings['epochs']} whole"
                if mode == "fine-tuned"
                else str(settings["epochs"])
            )
            lines.append(
                f"| {name} | {mode} | {epochs} | {metrics['AP']:.3f} | {metrics['AP50']:.3f} | "
                f"{metrics['AP75']:.3f} | {seconds:.0f} |"
            )
            print(lines[-1], flush=True)
            if args.json:
                with open(args.json, "a") as file:
                    row = {"model": name, "mode": mode, "epochs": epochs, "seconds": seconds, **metrics}
                    file.write(json.dumps(row) + "\n")
    save_table(
        args.out,
        lines,
        "\nAP: COCO AP over IoU 0.5:0.95 (pycocotools COCOeval), AP50 / AP75 at IoU 0.5 / 0.75, boxes "
        "compared in the test images' own pixels. The 2-core machine was shared with other jobs while this "
        "ran: the seconds are indicative only.",
    )


if __name__ == "__main__":
    main()
