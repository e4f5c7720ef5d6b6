"""`effnet data ...`: built-in datasets written as image folders, a detection set as Pascal VOC, a
segmentation set as images + masks; `effnet data pack` writes tar shards."""

from __future__ import annotations

import argparse

from effnet.cli.argument_types import fraction, non_negative_int, positive_int


def cmd_digits(args: argparse.Namespace) -> int:
    from effnet.data.samples import write_digits_folder

    root = write_digits_folder(args.out, limit=args.limit)
    count = sum(1 for _ in root.glob("*/*.png"))
    print(f"{root}: {count} images of scikit-learn's handwritten digits in 10 class folders")
    return 0


def cmd_textures(args: argparse.Namespace) -> int:
    from effnet.data.samples import TEXTURE_SOURCES, write_textures_folder

    root = write_textures_folder(args.out, per_class=args.per_class, seed=args.seed)
    count = {split: sum(1 for _ in (root / split).glob("*/*.png")) for split in ("train", "test")}
    print(
        f"{root}: {count['train']} train and {count['test']} test crops of {len(TEXTURE_SOURCES)} "
        "scikit-image photos (train from each photo's left half, test from its right half); train with "
        f"`effnet train {root}/train`, evaluate on {root}/test"
    )
    return 0


def cmd_detection(args: argparse.Namespace) -> int:
    from effnet.data.detection_set import LABEL_NAMES, load_detection_set, write_detection_set

    root = write_detection_set(
        args.out, train=args.train, test=args.test, seed=args.seed, image_size=args.image_size
    )
    train, test = load_detection_set(root)
    objects = sum(len(sample.labels) for sample in [*train, *test])
    print(
        f"{root}: {len(train)} train and {len(test)} test images ({args.image_size} px JPEG, {objects} "
        f"objects of {len(LABEL_NAMES)} classes: {', '.join(LABEL_NAMES)}) as Pascal VOC in train/ and "
        "test/, each with images/ and annotations/, and label_map.txt; read it with "
        f"DetectionData.from_pascal_voc('{root}/train/images', '{root}/train/annotations', "
        f"'{root}/label_map.txt')"
    )
    return 0


def cmd_segmentation(args: argparse.Namespace) -> int:
    from effnet.data.segmentation_set import LABEL_NAMES, write_segmentation_set

    root = write_segmentation_set(
        args.out, train=args.train, test=args.test, seed=args.seed, image_size=args.image_size
    )
    print(
        f"{root}: {args.train} train and {args.test} test images ({args.image_size} px JPEG) with exact "
        f"masks (VOC palette PNGs) of {len(LABEL_NAMES)} classes ({', '.join(LABEL_NAMES)}) in train/ and "
        f"test/, each with images/ and masks/, and label_map.txt; train with `effnet train {root} --out RUN`"
    )
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    import json

    from effnet.data.shards import pack

    index = pack(
        args.data_dir, args.out, shard_size=args.shard_size, val_split=args.val_split,
        test_split=args.test_split, seed=args.seed,
    )  # fmt: skip
    splits = json.loads(index.read_text())["splits"]
    shown = ", ".join(
        f"{name} {s['count']} images in {len(s['shards'])} shards" for name, s in splits.items()
    )
    print(f"{args.out}: {shown}; train with `effnet train {args.out} --fine-tune ...`")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="built-in datasets as image folders")
    data_sub = p.add_subparsers(dest="data_command", metavar="DATASET", required=True)
    digits = data_sub.add_parser("digits", help="scikit-learn's 1,797 real handwritten digits (10 classes)")
    digits.add_argument("out", help="folder to write (one sub-folder per digit)")
    digits.add_argument("--limit", type=positive_int, help="only the first N images")
    digits.set_defaults(func=cmd_digits)
    textures = data_sub.add_parser(
        "textures", help="10 classes of crops of scikit-image's photos, train/test from disjoint halves"
    )
    textures.add_argument("out", help="folder to write (train/ and test/, one sub-folder per class)")
    textures.add_argument(
        "--per-class", type=positive_int, default=60, help="crops per class and split (default: 60)"
    )
    textures.add_argument("--seed", type=non_negative_int, default=0, help="crop positions seed (default: 0)")
    textures.set_defaults(func=cmd_textures)
    detection = data_sub.add_parser(
        "detection",
        help="object detection: real objects pasted on real photos, exact boxes, as Pascal VOC (5 classes)",
    )
    detection.add_argument(
        "out", help="folder to write (train/ and test/, each with images/ and annotations/)"
    )
    detection.add_argument(
        "--train", type=non_negative_int, default=600, help="training images (default: %(default)s)"
    )
    detection.add_argument(
        "--test", type=non_negative_int, default=150, help="test images (default: %(default)s)"
    )
    detection.add_argument("--seed", type=non_negative_int, default=0, help="layout seed (default: 0)")
    detection.add_argument(
        "--image-size",
        type=positive_int,
        default=320,
        help="side of the square images in pixels (default: 320)",
    )
    detection.set_defaults(func=cmd_detection)
    segmentation = data_sub.add_parser(
        "segmentation",
        help="semantic segmentation: real objects cut out onto real photos, exact masks (5 classes)",
    )
    segmentation.add_argument("out", help="folder to write (train/ and test/, each with images/ and masks/)")
    segmentation.add_argument(
        "--train", type=non_negative_int, default=300, help="training images (default: %(default)s)"
    )
    segmentation.add_argument(
        "--test", type=non_negative_int, default=100, help="test images (default: %(default)s)"
    )
    segmentation.add_argument("--seed", type=non_negative_int, default=0, help="layout seed (default: 0)")
    segmentation.add_argument(
        "--image-size", type=positive_int, default=256, help="side of the square images (default: 256)"
    )
    segmentation.set_defaults(func=cmd_segmentation)
    packer = data_sub.add_parser("pack", help="pack an image folder into tar shards that stream from disk")
    packer.add_argument("data_dir", help="folder with one sub-folder of images per class")
    packer.add_argument("out", help="folder to write shards and index.json to")
    packer.add_argument(
        "--shard-size", type=positive_int, default=1000, help="samples per shard (default: 1000)"
    )
    packer.add_argument(
        "--val-split",
        type=fraction,
        default=0.0,
        help="fraction packed as validation shards (default: %(default)s)",
    )
    packer.add_argument(
        "--test-split",
        type=fraction,
        default=0.0,
        help="fraction packed as test shards (default: %(default)s)",
    )
    packer.add_argument(
        "--seed", type=non_negative_int, default=0, help="shuffle and split seed (default: 0)"
    )
    packer.set_defaults(func=cmd_pack)
