"""Quantized embeddings of trained embedders: how close int8 and int16 files stay to float, and what that does
to verification.

For each Lite backbone x head (gap, gdc, flatten): fine-tune on scikit-learn's digits, identities 0-6, at
112 px (ArcFace, the recognition_digits.py recipe, ``--epochs``; ``--dataset textures``: on real photographs
instead, crops of 7 of the 10 scikit-image photos of `effnet data textures`, 120 per photo, the other 3
photos held out), export .onnx and .tflite in int8 and int16 (int16 activations, int8 weights:
`QuantizationConfig.for_int16`) calibrated on 200 training images (bias correction on, the default),
int8 / int16 after quantization-aware fine-tuning on those images
(``int8-qat``, ``int16-qat``: ``QuantizationConfig(finetune_steps=...)``) and with GPTQ weight rounding
(``int8-gptq``, ``int16-gptq``: ``QuantizationConfig(weight_rounding="gptq")``), and measure each file on the
held-out identities 7-9 with `effnet.embedder` (``model.export(..., validation_data=held_out)``): mean
cosine similarity of its embeddings to PyTorch's on 200 images, and its verification accuracy next to the
float model's.

Trained embedders are kept in ``--cache`` (default: a temporary folder) so that a second run only exports.

    python benchmarks/quantized_embeddings.py --backbones efficientnet_lite0 --out results/x.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from effnet import embedder
from effnet.data.samples import write_digits_folder, write_textures_folder
from effnet.export import QuantizationConfig
from int8_embeddings import BACKBONES, HEADS
from machine import describe, log_seconds, save_table
from recognition_digits import open_set_split

FORMATS = ("onnx", "tflite")
# -qat: after quantization-aware fine-tuning; -gptq: GPTQ weight rounding
MODES = ("int8", "int16", "int8-qat", "int16-qat", "int8-gptq", "int16-gptq")
CALIBRATION_IMAGES = 200
TEXTURE_CROPS = 120  # per photo: 840 training images, 360 held out


def trained(
    backbone: str, head: str, train, epochs: int, cache: Path, dataset: str = "digits"
) -> embedder.Embedder:
    prefix = "" if dataset == "digits" else f"{dataset}-"  # digits keeps the cache names it always had
    folder = cache / f"{prefix}{backbone}-{head}-{epochs}"
    if (folder / "config.json").is_file():
        try:
            return embedder.load(folder)
        except Exception as error:  # a partial cache from an interrupted run: train again
            print(f"  retraining {folder.name}: {error}", file=sys.stderr)
    began = time.perf_counter()
    model = embedder.create(
        train,
        backbone=backbone,
        head=head,
        loss="arcface",
        embedding_dim=512,
        input_size=112,
        epochs=epochs,
        seed=0,
        num_workers=0,
        margin_warmup_epochs=1,
        flip=False,  # a mirrored digit is another glyph
    )
    model.save(folder)
    print(f"  trained {folder.name} in {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    return model


def dataset_folder(name: str, work: Path) -> Path:
    """The identity folder the embedders train on (identities 0-6) and are measured on (7-9)."""
    if name == "textures":
        return write_textures_folder(work / "textures", per_class=TEXTURE_CROPS) / "train"
    return write_digits_folder(work / "digits")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES))
    parser.add_argument("--heads", nargs="+", default=list(HEADS), choices=HEADS)
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--finetune-steps", type=int, default=300, help="-qat modes: fine-tuning steps")
    parser.add_argument(
        "--calibration-images",
        type=int,
        default=CALIBRATION_IMAGES,
        help="training images to calibrate (and, -qat modes, fine-tune) on",
    )
    parser.add_argument("--dataset", choices=("digits", "textures"), default="digits")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", help="folder for the trained embedders (reused when present)")
    parser.add_argument("--out", help="also write the table to this markdown file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = f"Machine: {describe()}."
    columns = [(f, m) for f in args.formats for m in args.modes]
    lines = [
        "| backbone | head | float acc | " + " | ".join(f"{f} {m} cosine / acc" for f, m in columns) + " |",
        "|---|---|---:|" + "---:|" * len(columns),
    ]
    print("\n".join(lines), flush=True)
    with tempfile.TemporaryDirectory() as work:
        cache = Path(args.cache) if args.cache else Path(work) / "models"
        train, held_out = open_set_split(dataset_folder(args.dataset, Path(work)))
        calibration = train.shuffled(seed=0)
        for backbone in args.backbones:
            for head in args.heads:
                model = trained(backbone, head, train, args.epochs, cache, args.dataset)
                # the protocol the export measures the file with (balanced pairs, seed 0, flip test)
                float_accuracy = model.evaluate_verification(held_out, seed=0)["accuracy"]
                cells = []
                for file_format, mode in columns:
                    began = time.perf_counter()
                    finetune = args.finetune_steps if mode.endswith("-qat") else 0
                    config = QuantizationConfig(
                        mode.split("-")[0],
                        calibration,
                        args.calibration_images,
                        finetune_steps=finetune,
                        weight_rounding="gptq" if mode.endswith("-gptq") else "nearest",
                    )
                    folder = Path(work) / f"{backbone}-{head}-{mode}"
                    result = model.export(folder, file_format, config, validation_data=held_out)[file_format]
                    accuracy = result["verification"]["accuracy"]
                    cells.append(f"{result['mean_cosine']:.4f} / {accuracy:.3f}")
                    log_seconds(f"{backbone} {head} {file_format} {mode}", began)
                line = f"| `{backbone}` | {head} | {float_accuracy:.3f} | " + " | ".join(cells) + " |"
                lines.append(line)
                print(line, flush=True)
    footer = (
        f"\n{started}\n\nEmbedders fine-tuned {args.epochs} epochs on {args.dataset} identities 0-6 "
        f"(112 px, 512-d, ArcFace); files calibrated on {args.calibration_images} training images with bias "
        f"correction (-qat: without, after {args.finetune_steps} steps of quantization-aware fine-tuning on "
        "them; -gptq: weights rounded by GPTQ on them); cosine = mean cosine similarity of the file's "
        "embeddings to PyTorch's on 200 images of identities 7-9; acc = verification accuracy (10-fold) on "
        "pairs of identities 7-9, the file's next to the float model's."
    )
    save_table(args.out, lines, footer)


if __name__ == "__main__":
    main()
