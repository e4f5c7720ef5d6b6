"""`effnet predict IMAGE...`: top-k labels for image files."""

from __future__ import annotations

import argparse
import json
import sys

from effnet.factory import create_model
from effnet.predict import predict_images


def cmd_predict(args: argparse.Namespace) -> int:
    if args.weights:
        model = create_model(args.model, weights=args.weights)
    else:
        model = create_model(args.model, pretrained=True)
    results = predict_images(model, args.images, top_k=args.top)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        for result in results:
            if result.error:
                continue
            print(result.file)
            for p in result.predictions:
                print(f"  {p.probability:6.3f}  {p.label}")
    failed = [r for r in results if r.error]
    for result in failed:
        print(f"effnet predict: {result.error}", file=sys.stderr)
    return 1 if failed else 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="top-k ImageNet (or your model's) labels for images")
    p.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, WebP, BMP, TIFF, GIF ...)"
    )
    p.add_argument("--model", default="efficientnet_lite0", help="model name (default: efficientnet_lite0)")
    p.add_argument("--weights", help="weights file (default: the model's published pretrained weights)")
    p.add_argument("--top", type=int, default=5, help="how many labels per image (default: 5)")
    p.add_argument("--json", action="store_true", help="print JSON, one object per image")
    p.set_defaults(func=cmd_predict)
