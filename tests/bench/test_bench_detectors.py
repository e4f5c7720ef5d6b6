"""`effnet bench --models efficientdet_lite0`: detectors timed whole (network + NMS), as their files run."""

import pytest

from effnet.bench.core import resolve_models, run_bench
from effnet.bench.runners import DetectorOnnxRunner, NotForDetectors, TorchRunner, runner_for


def test_detector_names_resolve_to_the_detector_with_its_postprocessing():
    (model,) = resolve_models(["ssdlite_mobilenet_v3_large"], None, None, resolution=96)
    assert model.family == "ssdlite" and model.network.detector.input_size == 96
    assert model.network.postprocess.max_detections == 100
    assert runner_for("onnx", model.network) is DetectorOnnxRunner
    assert runner_for("torch", model.network) is TorchRunner
    assert runner_for("onnx-int16", model.network) is NotForDetectors
    with pytest.raises(ValueError, match="unknown model 'efficientdet_lite9'"):
        resolve_models(["efficientdet_lite9"], None, None, resolution=None)


@pytest.mark.slow
def test_rows_for_a_detector_time_the_whole_file(tmp_path):
    pytest.importorskip("onnxscript")
    rows = run_bench(
        models=["ssdlite_mobilenet_v3_small"],
        formats=["torch", "onnx", "onnx-int16"],
        threads=[1, 2],
        resolution=64,
        runs=3,
        warmup=1,
        workdir=tmp_path,
        progress=False,
    )
    by_format = {(r["format"], r["threads"]): r for r in rows}
    assert len(rows) == 6
    for threads in (1, 2):
        onnx = by_format["onnx", threads]
        assert onnx["skipped"] is None and onnx["latency_ms_median"] > 0 and onnx["file"].endswith(".onnx")
        assert by_format["torch", threads]["latency_ms_median"] > 0
        assert "not offered for detectors" in by_format["onnx-int16", threads]["skipped"]
    from effnet.runtime import load

    predictor = load(by_format["onnx", 1]["file"])
    assert predictor.is_detector and predictor.metadata.detection["num_classes"] == 90
