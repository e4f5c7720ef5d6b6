"""`effnet profile`: per-layer rows sum to the same totals as effnet.profile / count_params."""

import json

import pytest
import torch

from effnet import count_params, create_model, profile
from effnet.cli import main


@pytest.mark.parametrize("name", ["efficientnet_lite0", "mobilenet_v3_small_075", "efficientnet_v2_b0"])
def test_layer_rows_sum_to_the_totals(name):
    with torch.device("meta"):
        model = create_model(name)
    counted = profile(model, 96)
    assert sum(layer.macs for layer in counted.layers) == counted.macs > 0
    assert sum(layer.params for layer in counted.layers) == counted.params == count_params(model)
    for depth in (1, 2, 3):
        groups = counted.grouped(depth)
        assert sum(g.macs for g in groups) == counted.macs
        assert sum(g.params for g in groups) == counted.params
        assert len(groups) <= len(counted.layers)


def test_cli_json_rows_sum_to_the_total(capsys):
    assert main(["profile", "mobilenet_v3_small_075", "--resolution", "64", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["input_size"] == [64, 64]
    assert sum(layer["macs"] for layer in result["layers"]) == result["macs"]
    assert sum(layer["params"] for layer in result["layers"]) == result["params"]
    model = create_model("mobilenet_v3_small_075")
    assert result["macs"] == profile(model, 64).macs and result["params"] == count_params(model)


def test_cli_table_by_stage(capsys):
    assert main(["profile", "efficientnet_lite0", "--depth", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("efficientnet_lite0 at 224x224: 4,652,008 params, 385,187,552 MACs")
    names = [line.split()[0] for line in lines[3:-1]]
    assert names == [
        "stem.conv",
        "stem.bn",
        *(f"stages.{i}" for i in range(7)),
        "head.conv",
        "head.bn",
        "classifier",
    ]
    shares = [float(line.split()[-1].rstrip("%")) for line in lines[3:-1]]
    assert sum(shares) == pytest.approx(100, abs=0.5)
    assert lines[-1].split()[:3] == ["total", "4,652,008", "385,187,552"]
