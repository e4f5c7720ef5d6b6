"""`effnet bench --models lraspp_mobilenet_v3_large`: segmenters timed as their exported files run."""

from effnet.bench.core import resolve_models, run_bench


def test_segmenter_names_resolve_to_the_exported_form(tmp_path):
    (model,) = resolve_models(["lraspp_mobilenet_v3_large"], None, None, resolution=64)
    assert model.family == "lraspp" and model.network.export_output == "segmentation"
    assert len(model.labels) == 21 and model.network.preprocessing.input_size == (64, 64)
    rows = run_bench(
        models=["deeplabv3_mobilenet_v2"], formats=["torch"], threads=[1], resolution=64, runs=2, warmup=1,
        workdir=tmp_path, progress=False,
    )  # fmt: skip
    assert rows[0]["skipped"] is None and rows[0]["latency_ms_median"] > 0
    assert rows[0]["params"] == 2_113_557  # 21 classes: the MobileNetV2 paper's 2.11M
