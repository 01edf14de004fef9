"""Stages that need TensorRT and a GPU: `engine` (model.plan), `validate` (the engine against
the FP32 reference) and `benchmark` (the engine timed on its own stream in steady state, then
FP32 ONNX Runtime on the CPU). Device buffers and events come from torch (already a dependency)
to keep this code short."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from optbuild.core import machine
from optbuild.core.digest import sha256_file
from optbuild.data import DatasetRequest, load_labeled, synthetic_feeds
from optbuild.errors import OptbuildError
from optbuild.passes.onnx_io import cpu_session
from optbuild.serving.contract import normalize, to_pixels
from optbuild.stages.metrics import latency_spread, latency_stats, paired_outputs, validation_metrics
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


def _values(dims: Any) -> tuple[int, ...]:
    """TensorRT Dims as a tuple (Dims index like a sequence but are not one)."""
    return tuple(int(dims[axis]) for axis in range(len(dims)))


class EngineRunner:
    """Runs an engine on batches of named inputs; outputs come back as float32 arrays."""

    def __init__(self, plan: str, version_compatible: bool) -> None:
        import torch

        engine.load_tensorrt()
        trt = engine.trt
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        runtime.engine_host_code_allowed = version_compatible
        self.engine = runtime.deserialize_cuda_engine(Path(plan).read_bytes())
        if self.engine is None:
            raise OptbuildError("TensorRT could not load model.plan (built by another TensorRT version, or for "
                                "another GPU?): see its log, and rebuild the engine on this machine")
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise OptbuildError("TensorRT could not create an execution context for the engine (out of GPU "
                                "memory?): see its log")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        self.stream = torch.cuda.Stream()
        self.torch = torch
        self.profile = 0

    def _profile_for(self, shapes: dict[str, tuple[int, ...]]) -> int:
        """The first optimization profile whose min..max holds every input's shape."""
        for index in range(self.engine.num_optimization_profiles):
            fits = True
            for name, shape in shapes.items():
                low, _, high = (_values(d) for d in self.engine.get_tensor_profile_shape(name, index))
                fits &= len(low) == len(shape) and all(a <= d <= b for a, d, b in zip(low, shape, high))
            if fits:
                return index
        raise OptbuildError(f"no optimization profile of the engine takes the inputs {shapes}: build it with a "
                            "profile that covers them (target.tensorrt.profiles, or the inputs' dims ranges)")

    def bind(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        """Copy the batch to the device, select the profile that takes it and bind input/output
        buffers (on this runner's stream)."""
        torch, trt = self.torch, engine.trt
        with torch.cuda.stream(self.stream):
            self._inputs = {name: torch.from_numpy(np.ascontiguousarray(feeds[name])).cuda() for name in self.inputs}
            profile = self._profile_for({name: tuple(t.shape) for name, t in self._inputs.items()})
            if profile != self.profile:
                self.context.set_optimization_profile_async(profile, self.stream.cuda_stream)
                self.profile = profile
            for name, tensor in self._inputs.items():
                if not self.context.set_input_shape(name, tuple(tensor.shape)):
                    raise OptbuildError(f"the engine does not take input '{name}' of shape {list(tensor.shape)}: "
                                        f"outside its optimization profile {profile}")
                self.context.set_tensor_address(name, tensor.data_ptr())
            outs = {}
            for name in self.outputs:
                shape = _values(self.context.get_tensor_shape(name))
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
    contract = params.get("client") or []  # the engine takes what a client sends
    ref_out, eng_out = paired_outputs(to_pixels(data.samples, contract), request.batch,
                                      lambda x: reference.run(None, normalize(x, contract)), runner)
    metrics = validation_metrics(ref_out, eng_out, [o.name for o in reference.get_outputs()], data.labels,
                                 params.get("metrics", ()))
    return {"files": [], "data": {"validation": {**metrics, "runtime": "tensorrt"}}}


def benchmark(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """The engine timed the way trtexec does: enqueued back to back on its stream after a warm-up,
    each run between two CUDA events (GPU time, no CPU work in between, so clocks stay up), then
    as many runs as fit in `throughput_seconds` for throughput; FP32 ONNX Runtime on the CPU after
    it, so neither measurement disturbs the other."""
    before = machine.snapshot()
    reference = cpu_session(inputs["reference.onnx"])
    runner = EngineRunner(inputs["model.plan"], params["version_compatible"])
    torch = runner.torch
    x = synthetic_feeds(params["inputs"])  # what a client sends the engine
    model_x = normalize(x, params["inputs"])  # the same, as the FP32 model takes it
    runner.bind(x)  # the input stays on the device: the events time the engine alone
    for _ in range(params["warmup"]):
        runner.execute()
    runner.stream.synchronize()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
              for _ in range(params["iterations"])]
    for start, end in events:
        start.record(runner.stream)
        runner.execute()
        end.record(runner.stream)
    runner.stream.synchronize()
    engine_s = [start.elapsed_time(end) / 1000.0 for start, end in events]
    runs, first, last = 0, torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    first.record(runner.stream)
    deadline = time.perf_counter() + params.get("throughput_seconds", 1.0)
    while time.perf_counter() < deadline:  # enqueue in chunks; the stream stays full
        for _ in range(10):
            runner.execute()
        runs += 10
        runner.stream.synchronize()
    last.record(runner.stream)
    last.synchronize()
    batch = int(params["inputs"][0]["shape"][0])
    throughput = runs * batch / (first.elapsed_time(last) / 1000.0)
    baseline_s = []
    for i in range(params["warmup"] + params["iterations"]):
        t0 = time.perf_counter()
        reference.run(None, model_x)
        if i >= params["warmup"]:
            baseline_s.append(time.perf_counter() - t0)
    artifact = {**latency_stats(engine_s), **latency_spread(engine_s)}
    baseline = {**latency_stats(baseline_s), **latency_spread(baseline_s)}
    return {"files": [], "data": {"benchmark": {
        "batch": batch, "artifact": artifact, "baseline_onnxruntime_fp32": baseline,
        "speedup_median": baseline["median_ms"] / artifact["median_ms"],
        "throughput": {"artifact": {"samples_per_s": throughput, "runs": runs, "batch": batch}},
        "timer": "CUDA events (GPU time), back to back on one stream after warm-up",
        "method": {"iterations": params["iterations"], "warmup": params["warmup"], "batch": batch,
                   "threads": None, "hint": "back-to-back", "streams": 1},
        "measured": machine.conditions(before, machine.snapshot(), 1, build_pid=os.getppid()),
        "remeasure": params.get("remeasure"),
    }}}
