"""`effnet models` and `effnet profile`."""

from __future__ import annotations

import argparse
import json

from effnet.cli.argument_types import positive_int
from effnet.cli.table import format_table, human_count
from effnet.models.detection.spec import DETECTOR_FAMILIES  # plain data, as the registry
from effnet.models.registry import FAMILIES  # the registry is plain data: no torch for --help


def model_rows(pattern: str | None = None, family: str | None = None) -> list[dict]:
    """One row per model: params and MACs counted from the module graph at the default resolution (the table
    in `effnet.models.counts`: no model is built, no torch imported)."""
    from effnet.models.counts import counts
    from effnet.models.registry import get_config, list_models
    from effnet.weights.published import weights_for

    rows = []
    if family in DETECTOR_FAMILIES:
        return rows
    for name in list_models(pattern, family=family):
        config = get_config(name)
        params, macs = counts(name)
        rows.append(
            {
                "name": name,
                "family": config.family,
                "params": params,
                "macs": macs,
                "resolution": config.resolution,
                "top1": config.top1,
                "reference_macs": config.macs,
                "weights": [spec.tag for spec in weights_for(name)],
            }
        )
    return rows


def detector_rows(pattern: str | None = None, family: str | None = None) -> list[dict]:
    """One row per detector (`effnet.list_detectors`): params, MACs and anchors with COCO's 90 classes at its
    input size (the table in `effnet.models.counts`), and the ImageNet weights its backbone can start from
    (no detection weights are published with effnet)."""
    from effnet.models.counts import DETECTOR_CLASSES, detector_counts
    from effnet.models.detection.spec import detector_family, get_detector_spec, list_detectors
    from effnet.weights.published import weights_for

    if family is not None and family not in DETECTOR_FAMILIES:
        return []
    rows = []
    for name in list_detectors(pattern, family=family):
        spec = get_detector_spec(name)
        params, macs, anchors = detector_counts(name)
        rows.append(
            {
                "name": name,
                "family": detector_family(spec),
                "backbone": spec.backbone,
                "params": params,
                "macs": macs,
                "classes": DETECTOR_CLASSES,
                "resolution": spec.input_size,
                "anchors": anchors,
                "backbone_weights": [] if spec.reduced_tail else [w.tag for w in weights_for(spec.backbone)],
            }
        )
    return rows


def cmd_models(args: argparse.Namespace) -> int:
    rows = model_rows(args.pattern, args.family)
    detectors = detector_rows(args.pattern, args.family)
    if not rows and not detectors:
        raise ValueError(f"no model matches {args.pattern!r}; run `effnet models` to list all")
    if args.json:
        print(json.dumps(rows + detectors, indent=2))
        return 0
    if rows:
        print_models(rows)
    if detectors:
        if rows:
            print()
        print_detectors(detectors)
    return 0


def print_detectors(rows: list[dict]) -> None:
    table = [
        (
            r["name"],
            r["family"],
            r["backbone"],
            f"{r['params']:,}",
            human_count(r["macs"]),
            r["resolution"],
            f"{r['anchors']:,}",
            ", ".join(r["backbone_weights"]) or "-",
        )
        for r in rows
    ]
    headers = ("detector", "family", "backbone", "params", "MACs", "input", "anchors", "backbone weights")
    print(format_table(headers, table, right=(3, 4, 5, 6)))
    print(f"(params and MACs with {rows[0]['classes']} classes; no detection weights: the heads start fresh)")


def print_models(rows: list[dict]) -> None:
    table = [
        (
            r["name"],
            r["family"],
            f"{r['params']:,}",
            human_count(r["macs"]),
            r["resolution"],
            r["top1"] or "-",
            ", ".join(r["weights"]) or "-",
        )
        for r in rows
    ]
    headers = ("name", "family", "params", "MACs", "resolution", "top-1", "weights (first = default)")
    print(format_table(headers, table, right=(2, 3, 4, 5)))


def cmd_profile(args: argparse.Namespace) -> int:
    from effnet.factory import create_model
    from effnet.profiling import profile

    model = create_model(args.model)
    result = profile(model, args.resolution)
    if args.json:
        print(
            json.dumps(
                {
                    "model": args.model,
                    "input_size": result.input_size,
                    "params": result.params,
                    "macs": result.macs,
                    "layers": [
                        vars(layer)
                        for layer in (result.layers if args.depth is None else result.grouped(args.depth))
                    ],
                },
                indent=2,
            )
        )
        return 0
    height, width = result.input_size
    print(
        f"{args.model} at {height}x{width}: {result.params:,} params, {result.macs:,} MACs "
        f"({human_count(result.macs)}); convolutions and linear layers, one MAC = one multiply-add"
    )
    print(result.table(args.depth))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models", help="list the supported models and detectors with params, MACs and reference top-1"
    )
    p.add_argument("pattern", nargs="?", help="filter names, e.g. 'lite' or 'mobilenet_v3_*'")
    p.add_argument("--family", choices=FAMILIES + DETECTOR_FAMILIES, help="only this family")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("profile", help="per-layer params and MACs of a model")
    p.add_argument("model", help="model name (see `effnet models`)")
    p.add_argument("--resolution", type=positive_int, help="input size in pixels (default: the model's)")
    p.add_argument(
        "--depth",
        type=positive_int,
        help="sum layers by the first N parts of their names (3: one row per block, 2: per stage)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_profile)
