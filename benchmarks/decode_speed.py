"""Frozen-backbone `image_classifier.create()` on big images vs small ones: seconds per 1,000 training images.

Folders of distinct images in 2 classes, made from scikit-image photos: "small" (512 x 512 JPEGs), "camera"
(3000 x 4000 / 4000 x 3000 JPEGs at quality 92 with sensor-like noise, plus large PNGs of 6 to 12
megapixels), and "camera JPEGs only" (the camera folder without its PNGs). Each source tree
(``--tree NAME=SRC_DIR``, e.g. main's and this branch's ``src``) runs `create()` on each folder in a fresh
process, one after the other, so the ratios in one table come from the same machine state. A first run is a
warm-up (imports, page cache).

Run: .venv/bin/python benchmarks/decode_speed.py --tree main=/work/main/src --tree branch=src
         [--images 240] [--png-fraction 0.25] [--work /tmp/effnet-decode-bench] [--out results/x.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")

# One create() in a child process: prints {"seconds": ..., "images": ...} as its last line.
CHILD = """
import json, sys, time, logging
logging.basicConfig(level=logging.WARNING, format="%(message)s")
from effnet.image_classifier import DataLoader, create
data = DataLoader.from_folder(sys.argv[1])
began = time.perf_counter()
create(data, model_spec="efficientnet_lite0", epochs=5, batch_size=32)
print(json.dumps({"seconds": time.perf_counter() - began, "images": len(data)}))
"""


def photo(name: str) -> np.ndarray:
    from skimage import data

    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return image[..., :3]


def make_folders(work: Path, count: int, png_fraction: float) -> dict[str, Path]:
    """Write the two folders once (kept in ``work``: PNG encoding takes seconds per file)."""
    folders = {"small": work / f"small-{count}", "camera": work / f"camera-{count}-{png_fraction:g}"}
    rng = np.random.default_rng(0)
    sources = [Image.fromarray(photo(name)) for name in PHOTOS]
    for kind, folder in folders.items():
        done = folder / ".complete"
        if done.exists():
            continue
        for index in range(count):
            label = "ab"[index % 2]
            (folder / label).mkdir(parents=True, exist_ok=True)
            source = sources[index % len(sources)]
            left, top = (int(v) for v in rng.integers(0, 40, 2))  # each image distinct
            cropped = source.crop((left, top, source.width - 40 + left, source.height - 40 + top))
            if kind == "small":
                cropped.resize((512, 512), Image.Resampling.BICUBIC).save(
                    folder / label / f"{index:05d}.jpg", quality=92
                )
                continue
            png = index < round(count * png_fraction)
            size = (4000, 3000) if index % 3 else (3000, 4000)
            if png:
                size = (4000, 3000) if index % 2 else (3000, 2000)
            pixels = np.asarray(cropped.resize(size, Image.Resampling.BICUBIC), dtype=np.int16)
            pixels = pixels + rng.normal(0, 4, pixels.shape).astype(np.int16)  # sensor noise: real file sizes
            big = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
            if png:
                big.save(folder / label / f"{index:05d}.png")
            else:
                big.save(folder / label / f"{index:05d}.jpg", quality=92)
        done.touch()
    # the camera folder's JPEGs alone (symlinks): what DCT-scaled decoding does without the PNGs
    jpegs = work / f"camera-jpeg-{count}-{png_fraction:g}"
    for path in sorted(folders["camera"].glob("*/*.jpg")):
        link = jpegs / path.parent.name / path.name
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path)
    folders["camera JPEGs only"] = jpegs
    return folders


def run_create(src: str, folder: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(src)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder)], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"create() on {folder} with {src} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    pieces = done.stderr.replace("\r", "\n").splitlines()  # tqdm redraws its bar with carriage returns
    result["messages"] = [piece for piece in pieces if "to decode" in piece][:3]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", required=True, help="NAME=SRC_DIR of an effnet checkout")
    parser.add_argument("--images", type=int, default=240, help="images per folder (default: %(default)s)")
    parser.add_argument("--png-fraction", type=float, default=0.25, help="PNG share of the camera folder")
    parser.add_argument("--work", default="/tmp/effnet-decode-bench", help="where the folders are made")
    parser.add_argument("--out", help="also write the table (markdown) here")
    args = parser.parse_args()
    trees = dict(item.split("=", 1) for item in args.tree)
    folders = make_folders(Path(args.work), args.images, args.png_fraction)
    sys.path.insert(0, os.path.abspath(next(iter(trees.values()))))
    sys.path.insert(0, str(Path(__file__).parent))
    from machine import describe

    run_create(next(iter(trees.values())), folders["small"])  # warm-up: page cache, imports
    lines = [
        "| tree | folder | images | seconds | s / 1,000 images | vs small (same tree) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    notes = []
    for name, src in trees.items():
        per_thousand = {}
        for kind in folders:
            result = run_create(src, folders[kind])
            per_thousand[kind] = 1000 * result["seconds"] / result["images"]
            ratio = per_thousand[kind] / per_thousand["small"]
            line = (
                f"| {name} | {kind} | {result['images']} | {result['seconds']:.1f} | "
                f"{per_thousand[kind]:.1f} | {ratio:.2f}x |"
            )
            lines.append(line)
            print(line, flush=True)
            notes += [f"{name}/{kind}: {message}" for message in result["messages"]]
    footer = (
        f"\n{describe()}; load average {os.getloadavg()[0]:.2f} at the end.\n"
        f"camera: {args.images} images, {args.png_fraction:.0%} PNG (3000x2000 or 4000x3000), the rest "
        f"JPEG 4000x3000 / 3000x4000 q92; small: 512x512 JPEG q92. create(efficientnet_lite0, epochs=5, "
        f"batch_size=32), frozen backbone, default workers. {time.strftime('%Y-%m-%d')}."
    )
    if notes:
        footer += "\nMessages:\n" + "\n".join(f"  {note}" for note in notes)
    from machine import save_table

    save_table(args.out, lines, footer)


if __name__ == "__main__":
    main()
