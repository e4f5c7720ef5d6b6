"""Does training augmentation (random flips, small random crops) help an embedder on identities it never saw?

Two open-set splits of real images available offline; pretrained Lite0 + gdc head + ArcFace with the
library's defaults (s=64, m=0.5, gradient norm clipped to 5):

- textures: `effnet data textures` (crops of 10 scikit-image photos; a photo is an identity): photos 0-6
  train (left halves), photos 7-9 verify (right halves: no pixel seen in training). A mirrored crop of a
  photo is still that photo, so flips are a fair augmentation here, and the flip test is used.
- digits: scikit-learn digits, 0-6 train, 7-9 verify (as benchmarks/recognition_digits.py). A mirrored digit
  is another glyph: only crops are tried, no flip test.

    python benchmarks/recognition_augmentation.py                    # all rows (~1-2 min a row, 1 thread)
    python benchmarks/recognition_augmentation.py --datasets textures --epochs 5
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from effnet import embedder
from effnet.data import ImageDataset
from effnet.data.samples import TEXTURE_SOURCES, write_digits_folder, write_textures_folder

# (flip, crop_scale) per row
SETTINGS = {"none": (False, None), "flip": (True, None), "crop": (False, 0.8), "flip+crop": (True, 0.8)}
DATASETS = {"textures": ("none", "flip", "crop", "flip+crop"), "digits": ("none", "crop")}


def textures_split(root: Path) -> tuple[ImageDataset, ImageDataset]:
    train_names, held_names = TEXTURE_SOURCES[:7], TEXTURE_SOURCES[7:]

    def subset(split: str, names) -> ImageDataset:
        paths, labels = [], []
        for label, name in enumerate(names):
            files = sorted((root / split / name).glob("*.png"))
            paths += [str(f) for f in files]
            labels += [label] * len(files)
        return ImageDataset.from_samples(paths, labels, list(names))

    return subset("train", train_names), subset("test", held_names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--rows", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--size", type=int, default=48, help="input size in px (default 48)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--scale", type=float, default=64.0, help="ArcFace s (default 64)")
    parser.add_argument(
        "--margin-warmup-epochs", type=float, default=0.0, help="ramp the margin from 0 over N epochs"
    )
    parser.add_argument("--crop-scale", type=float, default=0.8, help="the crop rows' area fraction")
    parser.add_argument("--pairs", type=int, default=40000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    from machine import describe as describe_machine
    from recognition_digits import open_set_split

    torch.set_num_threads(args.threads)
    print(describe_machine())
    print(
        f"lite0 pretrained + gdc, ArcFace s={args.scale} m=0.5 (margin warm-up {args.margin_warmup_epochs} "
        f"epochs, gradient norm clipped to 5), {args.size} px, {args.epochs} epochs, lr "
        f"{args.learning_rate}, crops of {args.crop_scale}-1 of the area, {args.pairs} balanced pairs"
    )
    tmp = Path(tempfile.gettempdir())
    results = []
    for dataset in args.datasets:
        if dataset == "textures":
            train, held_out = textures_split(write_textures_folder(tmp / "effnet-textures"))
        else:
            train, held_out = open_set_split(write_digits_folder(tmp / "effnet-digits"))
        flip_test = dataset == "textures"
        pairs = embedder.sample_pairs(held_out, num_pairs=args.pairs, seed=args.seed)
        for row in args.rows:
            if row not in DATASETS[dataset]:
                continue
            flip, crop = SETTINGS[row]
            began = time.perf_counter()
            model = embedder.create(
                train,
                backbone="efficientnet_lite0",
                head="gdc",
                loss="arcface",
                input_size=args.size,
                epochs=args.epochs,
                learning_rate=args.learning_rate,
                scale=args.scale,
                margin_warmup_epochs=args.margin_warmup_epochs,
                seed=args.seed,
                num_workers=0,
                flip=flip,
                crop_scale=args.crop_scale if crop else None,
            )
            seconds = time.perf_counter() - began
            metrics = embedder.evaluate_verification(model, pairs, flip=flip_test)
            results.append({"dataset": dataset, "row": row, "train_s": seconds, **metrics})
            print(
                f"{dataset:9s} {row:10s} acc {metrics['accuracy']:.4f}±{metrics['accuracy_std']:.4f}  "
                f"TAR@FAR=1e-3 {metrics['tar@far=1e-3']:.4f}  AUC {metrics['auc']:.4f}  ({seconds:.0f} s)",
                flush=True,
            )
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=2, default=float))
    print("\n| dataset | augmentation | verification acc (10-fold) | TAR@FAR=1e-3 | AUC | EER |")
    print("|---|---|---|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['dataset']} | {r['row']} | {r['accuracy']:.4f} ± {r['accuracy_std']:.4f} | "
            f"{r['tar@far=1e-3']:.4f} | {r['auc']:.4f} | {r['eer']:.4f} |"
        )


if __name__ == "__main__":
    main()
