"""Stage `tune` (intel): a bounded search for the runtime settings that serve the objective best.

Candidates are hint × streams × batch × inference precision. Each is compiled, and what the
device resolved it to (streams, threads, precision, requests) is read back: OpenVINO honours
NUM_STREAMS under either hint, clamps it to the cores and may resolve a precision it lacks to
another, so candidates that resolve alike are measured once. Each distinct one runs for
`seconds`: latency = batch-1 sync median; throughput = samples/s with all optimal async
requests busy at batch N (the IR reshaped to N). OpenVINO's defaults (the build's runtime.json,
no performance properties) are measured the same way; the winner is re-measured against them,
interleaved, so the recorded gain is not just the best of many noisy draws.
"""

from __future__ import annotations

from typing import Any

from optbuild.stages.intel.benchmark import PERFORMANCE_KEYS, async_throughput, compile_at_batch, feeds, resolved
from optbuild.stages.intel.cpu import default_inference_precisions, device_facts
from optbuild.stages.intel.runtime import RUNTIME_FILE, read_runtime, write_runtime
from optbuild.stages.metrics import latency_stats

CONFIRM_ROUNDS = 2  # winner and default, alternately, this many times each


def sync_latency(compiled: Any, data: dict[str, Any], seconds: float) -> dict[str, float]:
    """Batch-1 latency stats of back-to-back sync inferences for `seconds` (after a warm-up)."""
    import time

    request = compiled.create_infer_request()
    request.infer(data)
    for timed, span in ((False, seconds / 5), (True, seconds)):
        times: list[float] = []
        start = time.perf_counter()
        while time.perf_counter() - start < span:
            t0 = time.perf_counter()
            request.infer()
            times.append(time.perf_counter() - t0)
    return latency_stats(times)


class _Measure:
    """Compiles a setting and measures the objective; a score is higher-is-better."""

    def __init__(self, model_xml: str, device: str, params: dict[str, Any]) -> None:
        import openvino as ov

        self.core, self.model_xml, self.device = ov.Core(), model_xml, device
        self.objective, self.seconds, self.inputs = params["objective"], params["seconds"], params["inputs"]

    def compile(self, properties: dict[str, str], batch: int) -> tuple[Any, dict[str, Any]]:
        compiled = compile_at_batch(self.core, self.model_xml, self.device, properties, batch)
        return compiled, resolved(compiled)

    def run(self, compiled: Any, batch: int) -> dict[str, Any]:
        data = feeds(self.inputs, batch)
        if self.objective == "latency":
            stats = sync_latency(compiled, data, self.seconds)
            return {**stats, "score": -stats["median_ms"]}
        result = async_throughput(compiled, data, self.seconds)
        return {**result, "score": result["samples_per_s"]}

    def setting(self, properties: dict[str, str], batch: int) -> dict[str, Any]:
        compiled, resolved = self.compile(properties, batch)
        return {"resolved": resolved, **self.run(compiled, batch)}


def candidates(base: dict[str, str], params: dict[str, Any], capabilities: list[str]) -> list[dict[str, Any]]:
    """Every (properties, batch) to try; precision None keeps the build's own setting."""
    precisions = params["inference_precisions"] or default_inference_precisions(params["precision"], capabilities)
    # The objective's own hint first: of two settings that resolve alike, the first is measured and
    # shipped, and the matching hint is the one that adapts sensibly on another machine.
    hints = sorted(params["hints"], key=lambda hint: hint != params["objective"].upper())
    out = []
    for precision in precisions:
        for hint in hints:
            for streams in params["streams"]:
                for batch in params["batches"]:
                    properties = {**base, "PERFORMANCE_HINT": hint}
                    if streams:
                        properties["NUM_STREAMS"] = str(streams)
                    if precision:
                        properties["INFERENCE_PRECISION_HINT"] = precision
                    out.append({"properties": properties, "batch": batch})
    return out


def _identity(resolved: dict[str, Any], batch: int) -> tuple[Any, ...]:
    """Two settings the device resolved alike run alike."""
    return (batch, *(resolved[k] for k in ("NUM_STREAMS", "INFERENCE_NUM_THREADS", "INFERENCE_PRECISION_HINT",
                                           "OPTIMAL_NUMBER_OF_INFER_REQUESTS")))


def best(measured: list[dict[str, Any]]) -> int:
    """Index of the highest-scoring measured candidate (the first among equals)."""
    scored = [i for i, c in enumerate(measured) if "score" in c]
    return max(scored, key=lambda i: measured[i]["score"])


def tune(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    runtime = read_runtime(inputs["runtime.json"])
    device = runtime["device"]
    measure = _Measure(inputs["model.xml"], device, params)
    facts = device_facts(measure.core, device)
    base = {k: v for k, v in runtime.get("properties", {}).items() if k not in PERFORMANCE_KEYS}
    default = {"properties": base, "batch": 1, **measure.setting(base, 1)}

    measured: list[dict[str, Any]] = []
    seen: dict[tuple[Any, ...], int | str] = {_identity(default["resolved"], 1): "default"}
    for candidate in candidates(base, params, facts["optimization_capabilities"]):
        compiled, resolved = measure.compile(candidate["properties"], candidate["batch"])
        same = seen.get(_identity(resolved, candidate["batch"]))
        if same is not None:  # resolved like one already measured: same numbers, no second run
            measured.append({**candidate, "resolved": resolved, "same_as": same})
            continue
        seen[_identity(resolved, candidate["batch"])] = len(measured)
        measured.append({**candidate, "resolved": resolved, **measure.run(compiled, candidate["batch"])})
        del compiled
    scored = [c for c in measured if "score" in c]
    winner = best(measured) if scored and max(c["score"] for c in scored) > default["score"] else None

    gain, confirmation = 1.0, None
    if winner is not None:
        chosen = measured[winner]
        confirmation = _confirm(measure, default, chosen)
        gain = confirmation["gain"]
        if gain <= 1.0:  # the search's lead was noise: keep the defaults
            winner = None
    chosen = measured[winner] if winner is not None else default
    tuned = {**runtime, "properties": chosen["properties"], "batch": chosen["batch"],
             "objective": params["objective"]}
    write_runtime(out_dir, tuned)
    strip = lambda c: {k: v for k, v in c.items() if k != "score"}  # noqa: E731
    return {"files": [RUNTIME_FILE], "data": {"tuning": {
        "objective": params["objective"],
        "unit": "ms (batch-1 median)" if params["objective"] == "latency" else "samples/s",
        "seconds_per_candidate": params["seconds"],
        "candidates": [strip(c) for c in measured],
        "chosen": {"index": winner, "default": winner is None, **strip(chosen)},
        "default": strip(default),
        "confirmation": confirmation,
        "gain_vs_default": gain,
        "runtime": tuned,
        "cpu": facts,
    }}}


def _confirm(measure: _Measure, default: dict[str, Any], chosen: dict[str, Any]) -> dict[str, Any]:
    """Winner and default re-measured alternately; gain = the winner's advantage in the
    objective over the summed rounds (higher is better for both units)."""
    runs: dict[str, list[float]] = {"default": [], "chosen": []}
    settings = {"default": default, "chosen": chosen}
    compiled = {name: measure.compile(s["properties"], s["batch"])[0] for name, s in settings.items()}
    for _ in range(CONFIRM_ROUNDS):
        for name in ("default", "chosen"):
            runs[name].append(abs(measure.run(compiled[name], settings[name]["batch"])["score"]))
    mean = {name: sum(values) / len(values) for name, values in runs.items()}
    latency = measure.objective == "latency"
    gain = mean["default"] / mean["chosen"] if latency else mean["chosen"] / mean["default"]
    return {"rounds": CONFIRM_ROUNDS, "default": mean["default"], "chosen": mean["chosen"], "gain": gain}
