"""Stages `validate` and `benchmark`: the artifact against the FP32 ONNX Runtime reference."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from optbuild.metrics import compare, latency_stats, paired_outputs


def _reference(path: str) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def _artifact(inputs: dict[str, str], device: str, properties: dict[str, str]) -> Any:
    import openvino as ov

    return ov.Core().compile_model(inputs["model.xml"], device, properties)


def validate(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    from optbuild.datasets import load_dataset

    shape = params["input_shape"]
    samples = load_dataset(input_shape=shape, **params["dataset"])
    reference = _reference(inputs["reference.onnx"])
    compiled = _artifact(inputs, params["device"], params["properties"])
    name = reference.get_inputs()[0].name
    ref_out, art_out = paired_outputs(samples, shape[0], lambda x: reference.run(None, {name: x})[0],
                                      lambda x: compiled(x)[0])
    metrics = compare(ref_out, art_out)
    return {"files": [], "data": {"validation": metrics}}


def benchmark(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """Batch-1 latency of the artifact and of the FP32 ONNX Runtime baseline, interleaved in
    one process so that machine noise hits both alike."""
    reference = _reference(inputs["reference.onnx"])
    properties = {**params["properties"], "PERFORMANCE_HINT": "LATENCY"}
    compiled = _artifact(inputs, params["device"], properties)
    request = compiled.create_infer_request()
    name = reference.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal(params["input_shape"]).astype(np.float32)
    baseline_s, artifact_s = [], []
    for i in range(params["warmup"] + params["iterations"]):
        t0 = time.perf_counter()
        reference.run(None, {name: x})
        t1 = time.perf_counter()
        request.infer({0: x})
        t2 = time.perf_counter()
        if i >= params["warmup"]:
            baseline_s.append(t1 - t0)
            artifact_s.append(t2 - t1)
    artifact, baseline = latency_stats(artifact_s), latency_stats(baseline_s)
    return {
        "files": [],
        "data": {
            "benchmark": {
                "batch": params["input_shape"][0],
                "artifact": artifact,
                "baseline_onnxruntime_fp32": baseline,
                "speedup_median": baseline["median_ms"] / artifact["median_ms"],
                "properties": properties,
            }
        },
    }
