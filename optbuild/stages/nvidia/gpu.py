"""Stages that need TensorRT and a GPU: `engine` (model.plan), `validate` (the engine against
the FP32 reference) and `benchmark` (CUDA-event latency next to FP32 ONNX Runtime on CPU).
Device buffers and events come from torch (already a dependency) to keep this code short."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from optbuild.core.digest import sha256_file
from optbuild.data import DatasetRequest, load_labeled, synthetic_feeds
from optbuild.errors import OptbuildError
from optbuild.passes.onnx_io import cpu_session
from optbuild.stages.metrics import latency_stats, paired_outputs, validation_metrics
from optbuild.stages.nvidia import engine
from optbuild.stages.nvidia.kit import write_spec
from optbuild.stages.nvidia.precision import with_profiles


def build_engine(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    import onnx

    cache_path = params.get("timing_cache")
    spec = with_profiles(onnx.load(inputs["model.onnx"], load_external_data=False), params["spec"])
    try:
        engine.load_tensorrt()
        report = engine.build(spec, inputs["model.onnx"], out_dir, Path(cache_path).read_bytes() if cache_path else None)
    except engine.EngineBuildError as err:
        raise OptbuildError(f"TensorRT engine build failed: {err}") from err
    shutil.copyfile(inputs["model.onnx"], Path(out_dir, "model.onnx"))
    write_spec(spec, inputs["model.onnx"], out_dir)
    timing = {"sha256": sha256_file(Path(out_dir, "timing.cache"))}
    return {"files": ["model.plan", "model.onnx", "build_spec.json", "engine.json", "timing.cache"],
            "data": {"engine": report, "timing_cache_out": timing}}


class EngineRunner:
    """Runs an engine on batches of named inputs; outputs come back as float32 arrays."""

    def __init__(self, plan: str, version_compatible: bool) -> None:
        import torch

        engine.load_tensorrt()
        trt = engine.trt
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        runtime.engine_host_code_allowed = version_compatible
        self.engine = runtime.deserialize_cuda_engine(Path(plan).read_bytes())
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        self.stream = torch.cuda.Stream()
        self.torch = torch

    def bind(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        """Copy the batch to the device and bind input/output buffers (on this runner's stream)."""
        torch, trt = self.torch, engine.trt
        with torch.cuda.stream(self.stream):
            self._inputs = {name: torch.from_numpy(np.ascontiguousarray(feeds[name])).cuda() for name in self.inputs}
            for name, tensor in self._inputs.items():
                if not self.context.set_input_shape(name, tuple(tensor.shape)):
                    raise OptbuildError(f"the engine does not take input '{name}' of shape {list(tensor.shape)}: "
                                        "outside its optimization profile")
                self.context.set_tensor_address(name, tensor.data_ptr())
            outs = {}
            for name in self.outputs:
                dims = self.context.get_tensor_shape(name)
                shape = tuple(dims[axis] for axis in range(len(dims)))
                dtype = torch.from_numpy(np.empty(0, trt.nptype(self.engine.get_tensor_dtype(name)))).dtype
                outs[name] = torch.empty(shape, dtype=dtype, device="cuda")
                self.context.set_tensor_address(name, outs[name].data_ptr())
        return outs

    def execute(self) -> None:
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise OptbuildError("TensorRT failed to run the engine: see the log")

    def __call__(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        outs = self.bind(feeds)
        self.execute()
        self.stream.synchronize()
        return [outs[name].float().cpu().numpy() for name in self.outputs]


def validate(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    request = DatasetRequest.from_data(params["dataset"])
    data = load_labeled(request)
    reference = cpu_session(inputs["reference.onnx"])
    runner = EngineRunner(inputs["model.plan"], params["version_compatible"])
    ref_out, eng_out = paired_outputs(data.samples, request.batch, lambda x: reference.run(None, x), runner)
    metrics = validation_metrics(ref_out, eng_out, [o.name for o in reference.get_outputs()], data.labels,
                                 params.get("metrics", ()))
    return {"files": [], "data": {"validation": {**metrics, "runtime": "tensorrt"}}}


def benchmark(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """Engine latency from CUDA events on its stream, interleaved with FP32 ONNX Runtime (CPU)."""
    import time

    reference = cpu_session(inputs["reference.onnx"])
    runner = EngineRunner(inputs["model.plan"], params["version_compatible"])
    torch = runner.torch
    x = synthetic_feeds(params["inputs"])
    runner.bind(x)  # the input stays on the device: the events time the engine alone
    runner.stream.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    baseline_s, engine_s = [], []
    for i in range(params["warmup"] + params["iterations"]):
        t0 = time.perf_counter()
        reference.run(None, x)
        t1 = time.perf_counter()
        start.record(runner.stream)
        runner.execute()
        end.record(runner.stream)
        end.synchronize()
        if i >= params["warmup"]:
            baseline_s.append(t1 - t0)
            engine_s.append(start.elapsed_time(end) / 1000.0)
    artifact, baseline = latency_stats(engine_s), latency_stats(baseline_s)
    return {"files": [], "data": {"benchmark": {
        "batch": params["inputs"][0]["shape"][0], "artifact": artifact, "baseline_onnxruntime_fp32": baseline,
        "speedup_median": baseline["median_ms"] / artifact["median_ms"], "timer": "CUDA events (GPU time)",
    }}}
