"""Stage `benchmark` (intel): the artifact against its baselines, in one process.

Latency is batch 1, sync, with warm-up; the artifact, the FP32 ONNX Runtime reference and (for
torch sources) the torch eager model take turns in short blocks, so that machine noise hits all
of them alike. Each turn starts with one untimed run, and ONNX Runtime's workers do not spin
after a run: measured on ResNet-50, an OpenVINO inference right after a spinning ONNX Runtime
run took ~2x its steady latency, which `benchmark_app` (one model alone) never sees.
Throughput is what each can sustain: the artifact with an OpenVINO AsyncInferQueue of its
optimal number of requests (THROUGHPUT hint unless tuned), ONNX Runtime as the better of one
session on all cores and one single-threaded session per core run concurrently. The ratios
are the headline.

The runner gives this stage the machine alone as far as optbuild is concerned (no build stage of
any optbuild process runs meanwhile: pipeline/measuring.py); what else ran is measured anyway and
recorded under `measured`, with the spread of each latency (p10/p50/p90, a CI of the median) and
the method (iterations, threads, hint), so a report can tell which numbers compare.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from optbuild.core import machine
from optbuild.core.platform import version
from optbuild.data import synthetic_feeds
from optbuild.passes.onnx_io import cpu_session
from optbuild.serving.contract import normalize
from optbuild.stages.intel.cpu import device_facts, usable_cores
from optbuild.stages.intel.runtime import read_runtime
from optbuild.stages.intel.turns import interleaved

# Properties that shape how requests are scheduled, not what the model computes.
PERFORMANCE_KEYS = ("PERFORMANCE_HINT", "NUM_STREAMS", "PERFORMANCE_HINT_NUM_REQUESTS", "INFERENCE_NUM_THREADS")
RESOLVED_KEYS = ("PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS", "INFERENCE_PRECISION_HINT",
                 "OPTIMAL_NUMBER_OF_INFER_REQUESTS")


def resolved(compiled: Any) -> dict[str, Any]:
    """What the device made of the requested properties (hints resolve to streams/threads)."""
    out: dict[str, Any] = {}
    for key in RESOLVED_KEYS:
        value = compiled.get_property(key)
        out[key] = value.to_string() if hasattr(value, "to_string") else value
    return out


def mode_properties(runtime: dict[str, Any], objective: str) -> dict[str, str]:
    """Compile properties for a latency or throughput run: the runtime.json's own when it was
    tuned for that objective, else its precision properties plus that objective's hint."""
    properties = runtime.get("properties", {})
    if runtime.get("objective") == objective:
        return dict(properties)
    kept = {k: v for k, v in properties.items() if k not in PERFORMANCE_KEYS}
    return {**kept, "PERFORMANCE_HINT": objective.upper()}


feeds = synthetic_feeds  # one fixed seeded batch per input, of its dtype


def compile_at_batch(core: Any, model_xml: str, device: str, properties: dict[str, str], batch: int) -> Any:
    """The IR compiled with its batch dimension set to `batch` (a fresh read: reshape mutates)."""
    model = core.read_model(model_xml)
    first = model.inputs[0].get_partial_shape()[0]
    if first.is_static and first.get_length() != batch:  # a dynamic batch takes any size as it is
        import openvino as ov

        model.reshape({port.get_any_name(): ov.PartialShape([batch, *list(port.get_partial_shape())[1:]])
                       for port in model.inputs})
    return core.compile_model(model, device, properties)


def async_throughput(compiled: Any, data: dict[str, np.ndarray], seconds: float) -> dict[str, Any]:
    """Inferences/s with all of the compiled model's optimal requests kept busy for `seconds`
    (after a warm-up of a fifth of that); samples/s counts the batch."""
    import openvino as ov

    requests = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    queue = ov.AsyncInferQueue(compiled, requests)
    for i in range(requests):
        queue[i].infer(data)  # also leaves the inputs in each request: the loop below copies nothing
    for timed, span in ((False, seconds / 5), (True, seconds)):
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < span:
            queue.start_async()  # blocks until a request is free
            done += 1
        queue.wait_all()
        elapsed = time.perf_counter() - start
    batch = next(iter(data.values())).shape[0]
    return {"inferences_per_s": done / elapsed, "samples_per_s": done * batch / elapsed, "batch": batch,
            "requests": requests, "inferences": done, "seconds": round(elapsed, 3)}


def onnxruntime_session(path: str, threads: int) -> Any:
    # Spinning workers would steal the cores from whichever model runs next (see the module doc).
    return cpu_session(path, threads=threads, spinning=False)


def onnxruntime_parallel(path: str, data: dict[str, np.ndarray], sessions: int, seconds: float) -> dict[str, Any]:
    """One single-threaded session per core, each run back to back in its own thread
    (ONNX Runtime releases the GIL while it runs): ONNX Runtime's own throughput mode."""
    workers = [onnxruntime_session(path, 1) for _ in range(sessions)]
    for session in workers:
        session.run(None, data)
    counts = [0] * sessions
    deadline = time.perf_counter() + seconds

    def loop(i: int) -> None:
        while time.perf_counter() < deadline:
            workers[i].run(None, data)
            counts[i] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return {"inferences_per_s": sum(counts) / elapsed, "sessions": sessions, "intra_op_threads": 1,
            "inferences": sum(counts), "seconds": round(elapsed, 3)}


def torch_model(spec: dict[str, Any], weights: str | None, threads: int,
                data: dict[str, np.ndarray]) -> Callable[[], Any]:
    """The source torch module (same seeded init / weights as the export stage), eager."""
    # OpenMP threads that busy-wait at barriers collapse when a core is shared (measured: ResNet-50
    # at 1-2.6 s instead of ~60-100 ms per inference on a loaded 2-core machine); a passive wait
    # costs little alone. Read once, when torch loads libgomp: this is a fresh stage process.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    from optbuild.sources.torch_models import build_module

    torch.set_num_threads(threads)
    module = build_module(spec["source"], spec["name"], spec["seed"], weights)
    tensors = [torch.from_numpy(array) for array in data.values()]

    def run() -> Any:
        with torch.inference_mode():
            return module(*tensors)

    return run


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator and denominator else None


def benchmark(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    import openvino as ov

    before = machine.snapshot()
    runtime = read_runtime(inputs["runtime.json"])
    core, device = ov.Core(), runtime["device"]
    threads = usable_cores()
    contract = params["inputs"]  # what a client sends the artifact
    data = feeds(contract)
    model_data = normalize(data, contract)  # the same inputs as the network itself takes them

    latency_properties = mode_properties(runtime, "latency")
    compiled = core.compile_model(inputs["model.xml"], device, latency_properties)
    request = compiled.create_infer_request()
    request.infer(data)  # inputs stay in the request: the timed call copies nothing
    reference = onnxruntime_session(inputs["reference.onnx"], threads)
    models: dict[str, Callable[[], Any]] = {"artifact": request.infer,
                                           "onnxruntime_fp32": lambda: reference.run(None, model_data)}
    if params.get("torch"):
        models["torch_eager"] = torch_model(params["torch"], inputs.get("weights.pt"), threads, model_data)
    latency = interleaved(models, params["iterations"], params["warmup"])
    latency_runtime = resolved(compiled)
    del request, compiled
    from_image = None
    if "network.xml" in inputs:
        from optbuild.stages.intel.end_to_end import end_to_end

        from_image = end_to_end(inputs, runtime, latency_properties, contract, reference, params)

    throughput_properties = mode_properties(runtime, "throughput")
    batch = int(runtime.get("batch", 1)) if runtime.get("objective") == "throughput" else 1
    compiled = compile_at_batch(core, inputs["model.xml"], device, throughput_properties, batch)
    artifact_tp = async_throughput(compiled, feeds(params["inputs"], batch), params["throughput_seconds"])
    throughput_runtime = resolved(compiled)
    del compiled
    sequential = 1000.0 / latency["onnxruntime_fp32"]["mean_ms"]
    parallel = onnxruntime_parallel(inputs["reference.onnx"], model_data, threads, params["throughput_seconds"])
    ort_tp = {"inferences_per_s": max(sequential, parallel["inferences_per_s"]),
              "sequential_per_s": sequential, "parallel": parallel}
    torch_tp = 1000.0 / latency["torch_eager"]["mean_ms"] if "torch_eager" in latency else None

    measured = machine.conditions(before, machine.snapshot(), threads, build_pid=os.getppid())  # this worker's parent
    artifact_ms = latency["artifact"]["median_ms"]
    torch_ms = latency["torch_eager"]["median_ms"] if "torch_eager" in latency else None
    result_batch = int(params["inputs"][0]["shape"][0])
    result = {
        "batch": result_batch,  # of the latency runs; throughput has its own
        "shapes": {name: list(array.shape) for name, array in data.items()},  # what was measured
        "artifact": latency["artifact"],
        "baseline_onnxruntime_fp32": latency["onnxruntime_fp32"],
        "baseline_torch_eager": latency.get("torch_eager"),
        "throughput": {"artifact": artifact_tp, "onnxruntime_fp32": ort_tp,
                       "torch_eager": {"inferences_per_s": torch_tp} if torch_tp else None},
        "speedup_latency_vs_onnxruntime": latency["onnxruntime_fp32"]["median_ms"] / artifact_ms,
        "speedup_median": latency["onnxruntime_fp32"]["median_ms"] / artifact_ms,  # the field older readers use
        "speedup_latency_vs_torch": _ratio(torch_ms, artifact_ms),
        "speedup_throughput_vs_onnxruntime": artifact_tp["samples_per_s"] / ort_tp["inferences_per_s"],
        "speedup_throughput_vs_torch": _ratio(artifact_tp["samples_per_s"], torch_tp),
        # From a decoded image to the outputs, when the artifact takes pixels (end_to_end.py).
        "end_to_end": from_image,
        "runtime": {
            "latency": {"properties": latency_properties, "resolved": latency_runtime, "requests": 1},
            "throughput": {"properties": throughput_properties, "resolved": throughput_runtime,
                           "batch": batch, "requests": artifact_tp["requests"]},
            "tuned_for": runtime.get("objective"),
        },
        "onnxruntime": {"intra_op_threads": threads, "intra_op_spinning": False, "version": version("onnxruntime")},
        "torch": {"threads": threads, "inference_mode": True, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
        if "torch_eager" in latency else None,
        "cpu": device_facts(core, device),
        "iterations": params["iterations"], "warmup": params["warmup"],
        "throughput_seconds": params["throughput_seconds"],
        # What makes two rows' latencies comparable: same loop, same threads, same hint and streams.
        "method": {"iterations": params["iterations"], "warmup": params["warmup"], "batch": result_batch,
                   "threads": latency_runtime.get("INFERENCE_NUM_THREADS"),
                   "hint": latency_runtime.get("PERFORMANCE_HINT"), "streams": latency_runtime.get("NUM_STREAMS")},
        "measured": measured,
        "remeasure": params.get("remeasure"),
    }
    return {"files": [], "data": {"benchmark": result}}
