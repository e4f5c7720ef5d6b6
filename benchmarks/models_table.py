"""The README's supported-models table: params and MACs counted from each module graph.

Run: .venv/bin/python benchmarks/models_table.py
"""

from __future__ import annotations

from effnet.cli.models import model_rows
from effnet.cli.table import human_count
from machine import describe


def main() -> None:
    print(f"<!-- {describe()} -->")
    print("| model | params | MACs | resolution | ImageNet top-1 (reference) | pretrained weights |")
    print("|---|---:|---:|---:|---:|---|")
    for row in model_rows():
        weights = ", ".join(row["weights"]) or "-"
        top1 = f"{row['top1']:.1f}" if row["top1"] else "-"
        print(
            f"| `{row['name']}` | {row['params']:,} | {human_count(row['macs'])} | {row['resolution']} "
            f"| {top1} "
            f"| {weights} |"
        )


if __name__ == "__main__":
    main()
