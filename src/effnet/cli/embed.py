"""`effnet embed-train DATA_DIR`, `effnet verify MODEL PAIRS` and `effnet embed MODEL IMAGE...`: recognition
(see `effnet.embedder`). MODEL is a run folder, an exported .onnx / .tflite file, or an insightface
arcface_torch IResNet checkpoint (.pth / .pt)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from effnet.cli.argument_types import (
    area_fraction,
    finite_float,
    fraction,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from effnet.cli.runs import add_run_folder_arguments, add_run_option_arguments, run_options, run_training
from effnet.embedder.hparams import DEFAULT_MARGINS, DEFAULT_SCALE, HEADS, LOSSES, EmbedderHParams


def _identities(data_dir: str, val_identities: float, seed: int):
    """(train, held-out or None): a fraction of the identities (whole sub-folders) is held out, so that the
    validation is open-set."""
    from effnet.data import ImageDataset

    data = ImageDataset.from_folder(data_dir, seed=seed)
    if not 0 <= val_identities < 1:
        raise ValueError(f"--val-identities must be in [0, 1), got {val_identities}")
    count = round(val_identities * data.num_classes)
    if count == 0:
        return data, None
    if data.num_classes - count < 2:
        raise ValueError(f"{data_dir}: {data.num_classes} identities leave fewer than 2 to train on")
    import numpy as np

    held = set(np.random.default_rng(seed).permutation(data.num_classes)[:count].tolist())
    subsets = []
    for keep in (lambda c: c not in held, lambda c: c in held):
        classes = [c for c in range(data.num_classes) if keep(c)]
        remap = {c: i for i, c in enumerate(classes)}
        rows = [
            (p, remap[int(label)]) for p, label in zip(data.paths, data.labels, strict=True) if keep(label)
        ]
        subsets.append(
            ImageDataset.from_samples(
                [p for p, _ in rows], [label for _, label in rows], [data.index_to_label[c] for c in classes]
            )
        )
    return subsets[0], subsets[1]


EMBED_RUN_FILES = ("config.json", "model.safetensors", "history.json", "metrics.json", "roc.png")


def cmd_embed_train(args: argparse.Namespace) -> int:
    from effnet import distributed

    context = distributed.init(args.device)  # under torchrun: DDP, rank 0 writes and prints
    return run_training(
        args,
        context,
        EMBED_RUN_FILES,
        lambda: _embed_train(args),
        lambda trained: _embed_report(args, *trained),
    )


def _embed_train(args: argparse.Namespace) -> tuple:
    """(embedder, training identities, held-out identities or None) trained as ``args`` say."""
    from effnet import embedder

    train, held_out = _identities(args.data_dir, args.val_identities, args.seed)
    margins = (
        tuple(args.margins)
        if args.margins and len(args.margins) == 3
        else (args.margins[0] if args.margins else None)
    )
    model = embedder.create(
        train,
        backbone=args.backbone,
        head=args.head,
        loss=args.loss,
        embedding_dim=args.embedding_dim,
        input_size=args.input_size,
        epochs=args.epochs,
        validation_data=held_out,
        model_dir=Path(args.out),
        seed=args.seed,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        margins=margins,
        scale=args.scale,
        margin_warmup_epochs=args.margin_warmup_epochs,
        easy_margin=args.easy_margin,
        flip=not args.no_flip,
        crop_scale=args.crop_scale,
        pretrained=not args.scratch,
        freeze_bn={"yes": True, "no": False}.get(args.freeze_bn, args.freeze_bn),
        drop_path_rate=args.drop_path_rate,
        num_workers=args.workers,
        run_options=run_options(args),
        **({} if args.clip_grad_norm is None else {"clip_grad_norm": args.clip_grad_norm or None}),
    )
    return model, train, held_out


def _embed_report(args: argparse.Namespace, model, train, held_out) -> int:
    """Verification and identification on the held-out identities: printed, and in metrics.json."""
    from effnet import embedder
    from effnet.checkpoint import write_json

    out = Path(args.out)
    result: dict = {
        "model_dir": str(out),
        "best_epoch": model.best_epoch,
        "train_identities": train.num_classes,
    }
    if held_out is not None:
        result["verification"] = embedder.evaluate_verification(model, held_out, roc_path=out / "roc.png")
        result["identification"] = model.identify(held_out)
        write_json(out / "metrics.json", result)
    _print(result, args.json)
    return 0


def open_model(target: str, arch: str | None = None):
    """A run folder or an insightface .pth as an `Embedder`; an exported file stays a path (the runtime
    loads it)."""
    from effnet import embedder
    from effnet.embedder.insightface import is_weights_file

    path = Path(target)
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such model; pass a run folder, a .onnx / .tflite file or an insightface .pth"
        )
    if path.is_dir() or is_weights_file(path):
        return embedder.load(path, arch)
    if arch is not None:
        raise ValueError(f"--arch applies to an insightface .pth checkpoint, not {path}")
    return path


def cmd_verify(args: argparse.Namespace) -> int:
    from effnet import embedder

    model = open_model(args.model, args.arch)
    result = embedder.evaluate_verification(
        model,
        args.pairs,
        images_root=args.images_root,
        num_pairs=args.num_pairs,
        seed=args.seed,
        flip=not args.no_flip,
        roc_path=args.roc,
    )
    _print(result, args.json)
    return 0


def _image_paths(items: list[str]) -> list[str]:
    """Image files as given; a folder stands for the images in it (recursively, sorted; entries that are not
    regular files are named on stderr and left out)."""
    from effnet.data.listing import list_images

    paths: list[str] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            listing = list_images(str(path))
            for entry in listing.skipped:
                print(f"effnet embed: {entry}", file=sys.stderr)
            if not listing.images:
                raise ValueError(f"{path}: no images in this folder")
            paths += listing.images
        elif path.is_file():
            paths.append(str(path))
        else:
            raise FileNotFoundError(f"{path}: no such image or folder")
    return paths


def cmd_embed(args: argparse.Namespace) -> int:
    import numpy as np

    from effnet.checkpoint import atomic_path
    from effnet.embedder.embedding import embed_paths

    model = open_model(args.model, args.arch)
    paths = _image_paths(args.images)
    embeddings = embed_paths(model, paths, flip=not args.no_flip, batch_size=args.batch_size)
    if args.out:
        with atomic_path(args.out) as tmp, open(tmp, "wb") as handle:
            np.save(handle, embeddings)
    if args.json:
        rows = [{"path": p, "embedding": e.tolist()} for p, e in zip(paths, embeddings, strict=True)]
        print(json.dumps({"embedding_dim": int(embeddings.shape[1]), "images": rows}))
        return 0
    from effnet.cli.table import format_table

    similarity = embeddings @ embeddings.T
    shown = min(len(paths), 12)
    names = [Path(p).name for p in paths[:shown]]
    rows = [[f"{i}: {names[i]}"] + [f"{similarity[i, j]:.3f}" for j in range(shown)] for i in range(shown)]
    print(f"{len(paths)} embeddings of {embeddings.shape[1]} dims (L2-normalised); cosine similarity:")
    print(format_table(["image"] + [str(j) for j in range(shown)], rows, right=range(1, shown + 1)))
    if args.out:
        print(f"saved to {args.out}")
    return 0


def _print(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2, default=float))
        return
    metrics = result.get("verification", result)
    if "accuracy" in metrics:
        print(
            f"verification: accuracy {metrics['accuracy']:.4f} ± {metrics['accuracy_std']:.4f} (10-fold, "
            f"threshold {metrics['threshold']:.3f}), TAR@FAR=1e-3 {metrics['tar@far=1e-3']:.4f}, "
            f"TAR@FAR=1e-4 {metrics['tar@far=1e-4']:.4f}, AUC {metrics['auc']:.4f} "
            f"on {metrics['num_pairs']} pairs"
        )
    if "identification" in result:
        ident = result["identification"]
        print(f"identification: top-1 {ident['top1']:.4f}, top-5 {ident['top5']:.4f}")
    if "model_dir" in result:
        print(f"saved to {result['model_dir']}")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed-train", help="train a recognition (embedding) model on identity folders")
    p.add_argument("data_dir", help="folder with one sub-folder of images per identity")
    p.add_argument("--out", required=True, help="run folder: weights, config.json, metrics.json, roc.png")
    defaults = EmbedderHParams()
    arcface_m, cosface_m = DEFAULT_MARGINS["arcface"][1], DEFAULT_MARGINS["cosface"][2]
    p.add_argument(
        "--backbone",
        default=defaults.backbone,
        help="any effnet model, e.g. iresnet50 (default: %(default)s)",
    )
    p.add_argument(
        "--head",
        default=defaults.head,
        choices=HEADS,
        help="embedding head: gap (average pool, FC), gdc (MobileFaceNet's global depthwise conv, FC), "
        "flatten (insightface's E head: FC over the whole map) (default: %(default)s)",
    )
    p.add_argument(
        "--loss",
        default=defaults.loss,
        choices=LOSSES,
        help=f"arcface (margin m={arcface_m:g} on the angle), cosface (m={cosface_m:g} on the cosine), "
        "combined (m1 m2 m3 of --margins), softmax (no margin) (default: %(default)s)",
    )
    p.add_argument(
        "--margins",
        type=finite_float,
        nargs="+",
        help=f"m (arcface/cosface) or m1 m2 m3 (combined) (default: arcface {arcface_m:g}, cosface "
        f"{cosface_m:g}, combined = arcface's)",
    )
    p.add_argument("--scale", type=positive_float, help=f"logit scale s (default: {DEFAULT_SCALE:g})")
    p.add_argument(
        "--margin-warmup-epochs",
        type=non_negative_float,
        default=defaults.margin_warmup_epochs,
        metavar="EPOCHS",
        help="ramp the margins linearly from 0 to their value over EPOCHS (fractions allowed; default: "
        "%(default)s)",
    )
    p.add_argument(
        "--easy-margin", action="store_true", help="no margin for targets at cos(theta) <= 0 (insightface)"
    )
    p.add_argument(
        "--clip-grad-norm",
        type=non_negative_float,
        metavar="NORM",
        help=f"clip the network's gradient norm (default: {defaults.clip_grad_norm:g}, as arcface_torch; "
        "0: off)",
    )
    p.add_argument("--no-flip", action="store_true", help="no random horizontal flips in training")
    p.add_argument(
        "--crop-scale",
        type=area_fraction,
        metavar="FRACTION",
        help="random crops of FRACTION-1 of the image area in training (e.g. 0.8; default: none)",
    )
    p.add_argument(
        "--embedding-dim",
        type=positive_int,
        default=defaults.embedding_dim,
        help="embedding size (default: %(default)s)",
    )
    p.add_argument(
        "--input-size",
        type=positive_int,
        default=defaults.input_size,
        help="square input images, in pixels (default: %(default)s)",
    )
    p.add_argument(
        "--epochs", type=positive_int, default=defaults.epochs, help="epochs (default: %(default)s)"
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=defaults.batch_size,
        help="the global batch (torchrun: over all ranks; default: %(default)s)",
    )
    p.add_argument(
        "--learning-rate",
        type=positive_float,
        default=defaults.learning_rate,
        help="SGD learning rate of the head; a pretrained backbone learns at "
        f"{defaults.backbone_lr_scale:g} of it (default: %(default)s)",
    )
    p.add_argument(
        "--val-identities",
        type=fraction,
        default=0.2,
        help="fraction of identities held out for open-set validation (default: %(default)s; 0: none)",
    )
    p.add_argument(
        "--from-scratch",
        "--scratch",
        dest="scratch",
        action="store_true",
        help="random initialization instead of the backbone's pretrained weights (needed for a backbone "
        "without published weights, e.g. iresnet50)",
    )
    p.add_argument(
        "--freeze-bn",
        default=defaults.freeze_bn,
        choices=("auto", "yes", "no", "all"),
        help="keep BatchNorm statistics: auto (a pretrained backbone's), yes (the backbone's), no, all "
        "(the head's too: torchrun then computes exactly what one process does) (default: %(default)s)",
    )
    p.add_argument(
        "--drop-path-rate", type=fraction, help="the backbone's stochastic depth (default: the model's)"
    )
    p.add_argument(
        "--workers", type=non_negative_int, help="decoding processes per rank (default: CPUs / ranks)"
    )
    p.add_argument(
        "--seed",
        type=non_negative_int,
        default=defaults.seed,
        help="seed of initialization, data order, augmentation and the held-out identities "
        "(default: %(default)s)",
    )
    add_run_folder_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    add_run_option_arguments(p, "scale-out (run under `torchrun --nproc-per-node N -m effnet ...`)")
    p.set_defaults(func=cmd_embed_train)

    model_help = (
        "run folder from `effnet embed-train`, an exported .onnx / .tflite file, or an insightface "
        "arcface_torch IResNet checkpoint (.pth / .pt)"
    )
    arch_help = "for a .pth: iresnet18/34/50/100/200 (default: inferred from the file)"
    p = sub.add_parser("verify", help="verification accuracy / TAR@FAR of an embedder or exported file")
    p.add_argument("model", help=model_help)
    p.add_argument("--arch", help=arch_help)
    p.add_argument(
        "pairs", help="LFW pairs.txt, a .csv (path1,path2,same), or a folder of held-out identities"
    )
    p.add_argument("--images-root", help="folder the pairs' image names are relative to")
    p.add_argument(
        "--num-pairs", type=positive_int, help="pairs sampled from a folder (default: one per image)"
    )
    p.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="seed of the pairs sampled from a folder (default: %(default)s)",
    )
    p.add_argument("--no-flip", action="store_true", help="skip the flip test")
    p.add_argument("--roc", help="write the ROC curve (PNG) here")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("embed", help="L2-normalised embeddings of images (and their cosine similarities)")
    p.add_argument("model", help=model_help)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of images")
    p.add_argument("--arch", help=arch_help)
    p.add_argument("--out", help="write the embeddings here as a .npy array (N, dim), in the order given")
    p.add_argument("--no-flip", action="store_true", help="skip the flip test (embedding + mirror's)")
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=32,
        help="images per forward pass: more is faster, up to memory (default: %(default)s)",
    )
    p.add_argument("--json", action="store_true", help="print JSON: each path with its embedding")
    p.set_defaults(func=cmd_embed)
