"""Migrating from insightface: an arcface_torch IResNet checkpoint loads into effnet's IResNet and gives the
same embeddings; wrong, truncated or mismatching files are one-line errors that name the file.

The insightface key names are written out here from arcface_torch's iresnet.py (module names conv1, bn1,
prelu, layerN.I.{bn1, conv1, bn2, prelu, conv2, bn3, downsample.0/1}, then bn2, fc, features at the top
level), independently of the library's mapping, so a wrong mapping fails these tests."""

import json

import numpy as np
import pytest
import torch

import effnet
from effnet import embedder
from effnet.cli import main
from effnet.weights.insightface import arch_for, block_counts

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def insightface_keys(layers=(2, 2, 2, 2)) -> list[str]:
    """arcface_torch IResNet state dict keys, in its module registration order."""
    keys = ["conv1.weight", *(f"bn1.{f}" for f in BN), "prelu.weight"]
    for stage, blocks in enumerate(layers, start=1):
        for block in range(blocks):
            p = f"layer{stage}.{block}."
            keys += [p + f"bn1.{f}" for f in BN] + [p + "conv1.weight"] + [p + f"bn2.{f}" for f in BN]
            keys += [p + "prelu.weight", p + "conv2.weight"] + [p + f"bn3.{f}" for f in BN]
            if block == 0:  # every stage starts with a stride-2 block: 1x1 conv + BN shortcut
                keys += [p + "downsample.0.weight"] + [p + f"downsample.1.{f}" for f in BN]
    keys += [f"bn2.{f}" for f in BN] + ["fc.weight", "fc.bias"] + [f"features.{f}" for f in BN]
    return keys


def test_expected_names_spot_checks():
    keys = insightface_keys()
    assert len(keys) == 7 + 8 * 18 + 4 * 6 + 12 == len(set(keys))  # stem, blocks, shortcuts, head
    assert {"layer1.0.downsample.0.weight", "layer4.1.bn3.running_var", "features.weight"} <= set(keys)
    assert "layer1.1.downsample.0.weight" not in keys and "head.fc.weight" not in keys


@pytest.fixture(scope="module")
def source(one_torch_thread, tmp_path_factory):
    """A random iresnet18 (random BatchNorm statistics and PReLU slopes too, so that a swapped tensor of the
    same shape changes the output) and the same weights in insightface naming."""
    torch.manual_seed(3)
    model = effnet.create_model("iresnet18", num_classes=0).eval()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith(("running_var", "bn1.weight", "bn2.weight", "bn3.weight", "prelu.weight")):
                tensor.uniform_(0.5, 1.5)
            elif name.endswith(("running_mean", "bias")):
                tensor.normal_(0, 0.1)
    ours = model.state_dict()
    names = insightface_keys()
    assert len(names) == len(ours)
    theirs = {}
    for name, (our_name, tensor) in zip(names, ours.items(), strict=True):
        # same registration order; the leaf names and shapes agree, only the head's prefix differs
        assert name.rsplit(".", 1)[1] == our_name.rsplit(".", 1)[1]
        theirs[name] = tensor.clone()
    assert theirs["fc.weight"].shape == (512, 512 * 7 * 7)
    assert theirs["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    images = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        expected = model(images)
    path = tmp_path_factory.mktemp("insightface") / "r18.pth"
    torch.save(theirs, path)
    return theirs, images, expected, path


def test_insightface_checkpoint_gives_the_same_embeddings(source, tmp_path):
    _, images, expected, path = source
    model = embedder.load_insightface(path)  # iresnet18 inferred from the blocks per stage
    assert model.network.backbone.name == "iresnet18" and model.embedding_dim == 512
    assert model.preprocessing.input_size == (112, 112) and model.preprocessing.mean == (0.5, 0.5, 0.5)
    with torch.no_grad():
        assert torch.allclose(model.network(images), expected, rtol=1e-5, atol=1e-5)
        # the factory's weights= path takes the same file
        body = effnet.create_model("iresnet18", num_classes=0, weights=path).eval()
        assert torch.allclose(body(images), expected, rtol=1e-5, atol=1e-5)
    # saved as an effnet run folder, it loads back as one
    model.save(tmp_path / "run")
    with torch.no_grad():
        assert torch.allclose(embedder.load(tmp_path / "run").network(images), expected, atol=1e-5)


def test_ddp_prefixed_and_wrapped_checkpoints(source, tmp_path):
    state, images, expected, _ = source
    path = tmp_path / "ddp.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 20}, path)
    model = embedder.load(path, arch="iresnet18")  # embedder.load routes a .pth here too
    training = {"epoch": 3, "global_step": 10, "state_dict_backbone": state, "state_optimizer": {}}
    from_training = embedder.load_insightface(training)
    with torch.no_grad():
        assert torch.allclose(model.network(images), expected, rtol=1e-5, atol=1e-5)
        assert torch.allclose(from_training.network(images), expected, rtol=1e-5, atol=1e-5)


def test_wrong_architecture_truncated_and_foreign_files(source, tmp_path):
    state, _, _, path = source
    with pytest.raises(ValueError, match=r"r18\.pth: holds iresnet18 weights .* not iresnet50; pass arch="):
        embedder.load_insightface(path, arch="iresnet50")
    with pytest.raises(ValueError, match=r"r18\.pth: holds iresnet18 .* use iresnet18"):
        effnet.create_model("iresnet50", weights=path)
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(path.read_bytes()[:200_000])
    with pytest.raises(ValueError, match=r"cut\.pth: the file is truncated or corrupt .* download or save"):
        embedder.load_insightface(truncated)
    incomplete = {k: v for k, v in state.items() if not k.startswith("layer4.1.")}
    with pytest.raises(ValueError, match=r"\(2, 2, 2, 1\) blocks per stage match no IResNet"):
        embedder.load_insightface(incomplete)
    lite0 = effnet.create_model("efficientnet_lite0", num_classes=0).state_dict()
    with pytest.raises(ValueError, match="not an IResNet state dict"):
        embedder.load_insightface(lite0)


@pytest.mark.parametrize(
    "layers, arch",
    [((3, 4, 6, 3), "iresnet34"), ((3, 4, 14, 3), "iresnet50"), ((3, 13, 30, 3), "iresnet100"),
     ((6, 26, 60, 6), "iresnet200")],
)  # fmt: skip
def test_depth_is_inferred_from_the_key_names(layers, arch):
    names = dict.fromkeys(insightface_keys(layers))
    assert block_counts(names) == layers and arch_for(block_counts(names)) == arch


def test_cli_embed_and_verify_take_a_pth(source, tmp_path, capsys):
    from PIL import Image
    from sklearn.datasets import load_digits

    path = source[3]
    digits = load_digits()
    paths = []
    for i in range(5):
        image = (digits.images[i] * 16).astype(np.uint8)
        paths.append(str(tmp_path / f"d{i}.png"))
        Image.fromarray(image).resize((112, 112)).save(paths[-1])
    out = tmp_path / "emb.npy"
    assert main(["embed", str(path), *paths[:2], "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = np.load(out)
    assert saved.shape == (2, 512) and np.allclose(np.linalg.norm(saved, axis=1), 1, atol=1e-5)
    assert np.allclose(printed["images"][1]["embedding"], saved[1], atol=1e-6)
    assert np.allclose(embedder.load_insightface(path).embed(paths[:2]), saved, atol=1e-5)
    rows = [f"{paths[i]},{paths[i]},1\n{paths[i]},{paths[(i + 1) % 5]},0\n" for i in range(5)]
    (tmp_path / "pairs.csv").write_text("path1,path2,same\n" + "".join(rows))
    assert main(["verify", str(path), str(tmp_path / "pairs.csv"), "--json", "--no-flip"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["num_pairs"] == 10 and result["auc"] == 1.0  # an image matches itself best
    assert main(["verify", str(path), str(tmp_path / "pairs.csv"), "--arch", "iresnet34"]) == 2
    error = capsys.readouterr().err
    assert "r18.pth: holds iresnet18 weights" in error and len(error.strip().splitlines()) == 1
