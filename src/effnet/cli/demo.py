"""`effnet demo`: the pretrained Lite0 on a real photo, and what the model costs to run."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from effnet.cli.argument_types import positive_int


def sample_photo(folder: Path) -> Path | None:
    """scikit-image's 'chelsea' cat photo, written as a JPEG (None if scikit-image is not installed)."""
    try:
        from PIL import Image
        from skimage import data
    except ImportError:
        return None
    path = folder / "chelsea.jpg"
    Image.fromarray(data.chelsea()).save(path, quality=95)
    return path


def cmd_demo(args: argparse.Namespace) -> int:
    import torch

    from effnet.factory import create_model
    from effnet.predict import predict_images
    from effnet.profiling import profile

    model = create_model(args.model, pretrained=True).eval()
    counted = profile(model)
    height, width = model.preprocessing.input_size
    print(f"{args.model}: {counted.params:,} params, {counted.macs / 1e6:.0f}M MACs at {height}x{width}")
    print(f"weights: {model.weights_report}")

    with tempfile.TemporaryDirectory() as folder:
        photo = Path(args.image) if args.image else sample_photo(Path(folder))
        if photo is None:
            print("(install scikit-image or pass --image PATH to see a prediction on a photo)")
        else:
            [result] = predict_images(model, [photo], top_k=3)
            if result.error:
                raise ValueError(result.error)
            print(f"\n{photo.name}:")
            for p in result.predictions:
                print(f"  {p.probability:6.3f}  {p.label}")

    model = model.to(memory_format=torch.channels_last)  # NHWC runs ~20% faster on CPU
    x = torch.randn(1, 3, height, width).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        for _ in range(3):  # warm-up: first calls allocate and pick kernels
            model(x)
        start = time.perf_counter()
        for _ in range(args.runs):
            model(x)
        latency = (time.perf_counter() - start) / args.runs * 1000
    print(
        f"\nlatency: {latency:.1f} ms per image (PyTorch eager, channels_last, batch 1, "
        f"{torch.get_num_threads()} threads)"
    )
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="pretrained EfficientNet-Lite0 on a real photo, with its cost")
    p.add_argument(
        "--model", default="efficientnet_lite0", help="model with published weights (default: %(default)s)"
    )
    p.add_argument("--image", help="an image to classify (default: scikit-image's chelsea photo)")
    p.add_argument("--runs", type=positive_int, default=20, help="timed runs (default: 20)")
    p.set_defaults(func=cmd_demo)
