"""Parameters and multiply-accumulates counted from the real module graph at a given input size."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class LayerProfile:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    macs: int


@dataclass
class Profile:
    params: int
    macs: int
    input_size: tuple[int, int]
    layers: list[LayerProfile] = field(default_factory=list)

    def grouped(self, depth: int) -> list[LayerProfile]:
        """Layers summed by the first ``depth`` parts of their names (``depth=3``: one row per block,
        ``stages.1.0``); each group keeps its last layer's output shape, and the kind of its layers when
        they are all of one kind (else "block"). Rows still sum to the totals."""
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        groups: dict[str, LayerProfile] = {}
        for layer in self.layers:
            name = ".".join(layer.name.split(".")[:depth])
            group = groups.get(name)
            if group is None:
                groups[name] = LayerProfile(name, layer.kind, layer.output_shape, layer.params, layer.macs)
                continue
            group.kind = group.kind if group.kind == layer.kind else "block"
            group.output_shape = layer.output_shape
            group.params += layer.params
            group.macs += layer.macs
        return list(groups.values())

    def table(self, depth: int | None = None) -> str:
        """A per-layer table: type, output shape, params, MACs and share of the total (``depth``: grouped,
        see `grouped`)."""
        rows = [("layer", "type", "output", "params", "MACs", "share")]
        for layer in self.layers if depth is None else self.grouped(depth):
            share = f"{100 * layer.macs / self.macs:.1f}%" if self.macs else "-"
            shape = "x".join(str(d) for d in layer.output_shape)
            rows.append((layer.name, layer.kind, shape, f"{layer.params:,}", f"{layer.macs:,}", share))
        rows.append(("total", "", "", f"{self.params:,}", f"{self.macs:,}", "100%"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(
                c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
            for r in rows
        ]
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(lines)


def count_params(model: nn.Module) -> int:
    """Trainable and frozen parameters (BatchNorm affine included, running statistics not)."""
    return sum(p.numel() for p in model.parameters())


def _layer_macs(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        per_output = (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
        return output[0].numel() * per_output
    if isinstance(module, nn.Linear):
        return output[0].numel() * module.in_features
    return 0


def profile(
    model: nn.Module, input_size: int | tuple[int, int] | None = None, in_chans: int | None = None
) -> Profile:
    """Count parameters and multiply-accumulates (one MAC = one multiply-add) of one image.

    The count runs the model once on a zero image of ``input_size`` (default: the model's own resolution)
    and sums convolutions and linear layers, the layers the papers count.
    """
    if input_size is None:
        preprocessing = getattr(model, "preprocessing", None)
        if preprocessing is None:
            raise ValueError("input_size is required for a model without a .preprocessing config")
        input_size = preprocessing.input_size
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    chans = in_chans or getattr(model, "in_chans", 3)
    layers: list[LayerProfile] = []

    def hook(module, inputs, output, name):
        macs = _layer_macs(module, inputs, output)
        params = sum(p.numel() for p in module.parameters(recurse=False))
        layers.append(LayerProfile(name, type(module).__name__, tuple(output.shape[1:]), params, macs))

    leaves = [
        (n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d))
    ]
    handles = [m.register_forward_hook(lambda mod, i, o, n=n: hook(mod, i, o, n)) for n, m in leaves]
    was_training = model.training
    try:
        model.eval()
        param = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, chans, *size, dtype=param.dtype, device=param.device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return Profile(
        params=count_params(model), macs=sum(layer.macs for layer in layers), input_size=size, layers=layers
    )
