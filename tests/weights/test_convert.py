"""Every converter on the key/shape lists of the real implementations, and numerical parity with them."""

import pytest
import torch
from reference_data import (
    all_fixtures,
    conventions,
    deterministic_input,
    deterministic_state_dict,
    effnet_name,
    load,
    meta_state_dict,
)

import effnet
from effnet.weights import WeightsMismatchError, convert_state_dict, detect_naming, load_weights

CONVERTIBLE = [
    f for f in all_fixtures() if not f.startswith("lite_packages") and effnet_name(*f.split("/")) is not None
]
WITH_OUTPUT = [f for f in CONVERTIBLE if load(f)["reference_output"]]
# the large networks among them: over 10 s each on a 2-core CPU
SLOW_OUTPUTS = {"torchvision/efficientnet_b5", "torchvision/efficientnet_v2_s"}


def test_fixtures_cover_every_source_and_family():
    sources = {f.split("/")[0] for f in CONVERTIBLE}
    assert sources == {"timm", "torchvision", "efficientnet_pytorch"}
    assert len(CONVERTIBLE) >= 70 and len(WITH_OUTPUT) >= 15
    families = {effnet.get_config(effnet_name(*f.split("/"))).family for f in CONVERTIBLE}
    assert families == set(effnet.FAMILIES) - {"iresnet"}  # no timm/torchvision weights to convert


@pytest.mark.parametrize("fixture", CONVERTIBLE)
def test_converter_maps_every_key_with_matching_shape(fixture):
    source, model = fixture.split("/")
    data = load(fixture)
    name = effnet_name(source, model)
    state = meta_state_dict(data)
    assert detect_naming(state) == source
    converted = convert_state_dict(state, name)
    with torch.device("meta"):
        target = effnet.create_model(name).state_dict()
    assert list(converted) == list(target)
    assert all(converted[k].shape == target[k].shape for k in target)
    assert (
        sum(v.numel() for k, v in converted.items() if "running" not in k and "num_batches" not in k)
        == (data["num_params"])
    )


@pytest.mark.parametrize(
    "fixture", [pytest.param(f, marks=pytest.mark.slow) if f in SLOW_OUTPUTS else f for f in WITH_OUTPUT]
)
def test_converted_weights_reproduce_reference_outputs(fixture):
    """Same weights, same input: effnet's network computes what timm / torchvision / efficientnet_pytorch
    compute (TF SAME padding, hard-sigmoid gates, SE widths, BN eps included)."""
    source, model = fixture.split("/")
    data = load(fixture)
    name = effnet_name(source, model)
    net = effnet.create_model(name, **conventions(data)).eval()
    net.load_state_dict(convert_state_dict(deterministic_state_dict(data), name), strict=True)
    x = deterministic_input(data["reference_output"]["input_shape"])
    with torch.no_grad():
        pre_logits = net.forward_head(net.forward_features(x), pre_logits=True)[0]
        logits = net.forward_head(net.forward_features(x))[0]
    reference_pre = torch.tensor(data["config"]["reference_pre_logits"])
    reference = torch.tensor(data["reference_output"]["logits"])
    assert (pre_logits - reference_pre).abs().max() <= 1e-5 * reference_pre.abs().max()
    assert (logits - reference).abs().max() <= 1e-5 * reference.abs().max()


def test_wrong_model_size_names_the_fitting_model():
    state = meta_state_dict(load("timm/tf_efficientnet_b0"))
    with pytest.raises(WeightsMismatchError) as error:
        convert_state_dict(state, "efficientnet_b2")
    message = str(error.value)
    assert "shape mismatch" in message and "look like efficientnet_b0" in message


def test_wrong_family_is_refused():
    state = meta_state_dict(load("torchvision/mobilenet_v2"))
    with pytest.raises(WeightsMismatchError, match="mobilenet_v2_100"):
        convert_state_dict(state, "efficientnet_lite0")


def test_unknown_naming_and_empty_checkpoint():
    with pytest.raises(WeightsMismatchError, match="cannot tell"):
        convert_state_dict({"layer.weight": torch.zeros(2, 2)}, "efficientnet_b0")
    with pytest.raises(WeightsMismatchError, match="no tensors"):
        convert_state_dict({"epoch": 3}, "efficientnet_b0")
    with pytest.raises(ValueError, match="unknown source"):
        convert_state_dict(meta_state_dict(load("timm/efficientnet_b0")), "efficientnet_b0", source="keras")


def test_checkpoint_wrappers_and_prefixes_are_unwrapped():
    state = meta_state_dict(load("timm/mobilenetv2_100"))
    wrapped = {"epoch": 10, "state_dict": {f"module.{k}": v for k, v in state.items()}}
    converted = convert_state_dict(wrapped, "mobilenet_v2_100")
    assert "stem.conv.weight" in converted


def test_missing_num_batches_tracked_is_filled():
    state = {k: v for k, v in meta_state_dict(load("timm/mobilenetv2_100")).items() if "num_batches" not in k}
    converted = convert_state_dict(state, "mobilenet_v2_100")
    assert converted["stem.bn.num_batches_tracked"].dtype == torch.int64


def test_transfer_learning_keeps_backbone_and_starts_a_fresh_classifier():
    data = load("timm/mobilenetv3_small_100")
    state = deterministic_state_dict(data)
    model = effnet.create_model("mobilenet_v3_small_100", num_classes=10)
    fresh = model.classifier.weight.clone()
    report = load_weights(model, state)
    assert not report.classifier_loaded and report.num_classes_in_weights == 1000
    assert torch.equal(model.classifier.weight, fresh)
    assert torch.equal(model.stem.conv.weight, state["conv_stem.weight"])


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".bin", ".safetensors"])
def test_create_model_from_weight_files(tmp_path, suffix):
    data = load("torchvision/mobilenet_v3_small")
    state = deterministic_state_dict(data)
    path = tmp_path / f"mobilenet_v3_small-047dcff4{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, path)
    else:
        torch.save(state, path)
    model = effnet.create_model("mobilenet_v3_small_100", weights=path).eval()
    assert model.padding == "symmetric"
    x = deterministic_input(data["reference_output"]["input_shape"])
    with torch.no_grad():
        logits = model(x)[0]
    reference = torch.tensor(data["reference_output"]["logits"])
    assert (logits - reference).abs().max() <= 1e-5 * reference.abs().max()


def test_tf_weights_file_selects_same_padding(tmp_path):
    data = load("timm/tf_efficientnet_lite0")
    path = tmp_path / "tf_efficientnet_lite0.pth"
    torch.save(deterministic_state_dict(data), path)
    model = effnet.create_model("efficientnet_lite0", weights=path).eval()
    assert model.padding == "same"
    assert all(m.eps == 1e-3 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    with pytest.warns(UserWarning, match="trained with 'same' padding"):
        effnet.create_model("efficientnet_lite0", weights=path, padding="symmetric")


def test_grayscale_model_from_rgb_weights():
    state = deterministic_state_dict(load("timm/mobilenetv2_100"))
    model = effnet.create_model("mobilenet_v2_100", in_chans=1, weights=state)
    assert torch.allclose(model.stem.conv.weight[:, 0], state["conv_stem.weight"].sum(1))


def test_bad_weight_files_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pth: weights file not found"):
        effnet.create_model("efficientnet_b0", weights=tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"junk\.pth: cannot read weights"):
        effnet.create_model("efficientnet_b0", weights=junk)
    with pytest.raises(ValueError, match="not both"):
        effnet.create_model("efficientnet_lite0", pretrained=True, weights=junk)


def test_known_source_file_brings_its_preprocessing(tmp_path):
    path = tmp_path / "mobilenet_v3_large-5c1a4163.pth"
    torch.save(deterministic_state_dict(load("torchvision/mobilenet_v3_large")), path)
    model = effnet.create_model("mobilenet_v3_large_100", weights=path)
    assert model.preprocessing.interpolation == "bilinear"  # torchvision's eval transform, not the TF one
    assert model.preprocessing.resize_size[0] in (232, 256)
