"""Batch-1 latency: optbuild's INT8 ResNet-50 IR against the flow a user would write by hand.

The claim under test: `optbuild recipe=resnet50_int8 target=intel model.weights=null` builds an
INT8 OpenVINO IR that is no slower at batch 1 than this hand-written flow:

    torch.manual_seed(0); torchvision resnet50 (random init)
    -> torch.onnx.export(..., dynamo=False, opset_version=17)
    -> ov.convert_model(onnx_path)
    -> nncf.quantize(model, nncf.Dataset(items), subset_size=300)   # 300 calibration samples
    -> ov.save_model(model, path)                                   # default arguments
    -> core.compile_model(path, "CPU", {"PERFORMANCE_HINT": "LATENCY"})

The optbuild artifact is compiled with the properties from its `runtime.json` plus
PERFORMANCE_HINT=LATENCY. Both IRs are calibrated on the same data (optbuild's `sample_photos`,
seed 0) and timed interleaved in one process, so machine noise hits both alike.

Run from the repository root:

    .venv/bin/python benchmarks/handwritten_flow.py                 # 300 samples, 300 iterations
    .venv/bin/python benchmarks/handwritten_flow.py --quick         # smoke run: 30 samples, 50 iterations
    .venv/bin/python benchmarks/handwritten_flow.py --json results.json --out-dir /tmp/hw

A ratio (hand-written median / optbuild median) >= 1.0 means optbuild is at least as fast.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

INPUT_SHAPE = [1, 3, 224, 224]
PREPROCESS = {"resize": 256, "crop": 224, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
RECIPE_SAMPLES = 300  # calibration.num_samples of the resnet50 recipe
ARTIFACT = Path("resnet50_int8", "intel-int8", "latest", "model.xml")
LATENCY = {"PERFORMANCE_HINT": "LATENCY"}
REPORTED_PROPERTIES = ("INFERENCE_PRECISION_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS",
                       "PERFORMANCE_HINT", "EXECUTION_MODE_HINT")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--samples", type=int, default=300, help="calibration samples (default 300)")
    parser.add_argument("--iterations", type=int, default=300, help="measured iterations (default 300)")
    parser.add_argument("--warmup", type=int, default=30, help="warm-up iterations (default 30)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 30 samples, 50 iterations, 10 warm-up")
    parser.add_argument("--out-dir", type=Path, help="where to build (default: a temporary directory)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.iterations, args.warmup = 30, 50, 10
    if args.samples < 1 or args.iterations < 1 or args.warmup < 0:
        parser.error("--samples and --iterations must be >= 1, --warmup >= 0")
    return args


# --- building the two IRs ---------------------------------------------------------------------


def optbuild_command(out_dir: Path, samples: int) -> list[str]:
    exe = Path(sys.executable).parent / "optbuild"
    command = [str(exe), "recipe=resnet50_int8", "target=intel", "model.weights=null",
               f"out_dir={out_dir}", "progress=false", "benchmark.enabled=false", "validate.enabled=false"]
    if samples != RECIPE_SAMPLES:  # keep the default run on the recipe's own calibration size
        command.append(f"calibration.num_samples={samples}")
    return command


def build_optbuild(out_dir: Path, samples: int) -> tuple[Path, dict[str, Any], float]:
    """Runs the optbuild CLI; returns the artifact's model.xml, its runtime.json and the build time."""
    command = optbuild_command(out_dir, samples)
    print(f"[optbuild] {shlex.join(command)}", flush=True)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"optbuild failed with exit code {result.returncode}")
    xml = out_dir / ARTIFACT
    runtime = json.loads((xml.parent / "runtime.json").read_text())
    return xml.resolve(), runtime, seconds


def calibration_items(samples: int) -> list[np.ndarray]:
    """The same data optbuild calibrates on (`sample_photos`, seed 0), as [1, 3, 224, 224] items."""
    from optbuild.data import DatasetRequest, load

    data = load(DatasetRequest("sample_photos", None, samples, 0, preprocess=PREPROCESS, input_shape=INPUT_SHAPE))
    return [data[i : i + 1] for i in range(len(data))]


def build_handwritten(work_dir: Path, samples: int) -> tuple[Path, float]:
    """The flow a user writes by hand, with default arguments wherever the flow allows them."""
    import nncf
    import openvino as ov
    import torch
    import torchvision

    start = time.perf_counter()
    work_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval()
    onnx_path = work_dir / "resnet50.onnx"
    with torch.no_grad():
        torch.onnx.export(model, torch.randn(INPUT_SHAPE), str(onnx_path), dynamo=False, opset_version=17)
    ov_model = ov.convert_model(str(onnx_path))
    quantized = nncf.quantize(ov_model, nncf.Dataset(calibration_items(samples)), subset_size=samples)
    xml = work_dir / "model.xml"
    ov.save_model(quantized, str(xml))
    return xml, time.perf_counter() - start


# --- measuring --------------------------------------------------------------------------------


def compile_ir(core: Any, xml: Path, properties: dict[str, str]) -> Any:
    return core.compile_model(str(xml), "CPU", properties)


def plain(value: Any) -> str:
    """An OpenVINO property value as text: 'bf16' rather than "<Type: 'bfloat16'>"."""
    return value.to_string() if hasattr(value, "to_string") else str(value)


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def describe(compiled: Any, xml: Path, properties: dict[str, str]) -> dict[str, Any]:
    """What each compiled model actually runs with, and what its IR contains."""
    import openvino as ov

    ir = ov.Core().read_model(str(xml))
    ops = Counter(op.get_type_name() for op in ir.get_ops())
    const_types = Counter(plain(op.get_output_element_type(0)) for op in ir.get_ops()
                          if op.get_type_name() == "Constant")
    return {
        "ir": str(xml),
        "compile_properties": properties,
        "resolved": {name: plain(compiled.get_property(name)) for name in REPORTED_PROPERTIES},
        "fake_quantize_ops": ops.get("FakeQuantize", 0),
        "convert_ops": ops.get("Convert", 0),
        "constant_types": dict(sorted(const_types.items())),
        "op_counts": dict(sorted(ops.items())),
        "bin_bytes": xml.with_suffix(".bin").stat().st_size,
        "bin_sha256": sha256(xml.with_suffix(".bin")),
    }


def latency_stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)),
            "mean_ms": float(ms.mean()), "min_ms": float(ms.min()), "runs": int(len(ms))}


def measure(models: dict[str, Any], warmup: int, iterations: int) -> dict[str, dict[str, float]]:
    """One inference of each model per iteration, the order swapped every iteration."""
    x = np.random.default_rng(0).standard_normal(INPUT_SHAPE).astype(np.float32)
    requests = {name: compiled.create_infer_request() for name, compiled in models.items()}
    names = list(requests)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(warmup + iterations):
        for name in (names if i % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            requests[name].infer({0: x})
            elapsed = time.perf_counter() - t0
            if i >= warmup:
                times[name].append(elapsed)
    return {name: latency_stats(seconds) for name, seconds in times.items()}


def output_agreement(models: dict[str, Any]) -> dict[str, float]:
    """Both IRs come from the same seeded weights: their outputs should be close."""
    x = np.random.default_rng(1).standard_normal(INPUT_SHAPE).astype(np.float32)
    a, b = (np.asarray(compiled(x)[0], dtype=np.float64).ravel() for compiled in models.values())
    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return {"cosine": cosine, "max_abs_diff": float(np.abs(a - b).max())}


# --- reporting --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import openvino as ov

    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "openvino": ov.get_version(),
            "python": platform.python_version()}


def print_table(results: dict[str, Any]) -> None:
    stats, info = results["latency"], results["models"]
    print()
    print(f"{'model':<12} {'median ms':>10} {'p90 ms':>8} {'mean ms':>8} {'precision':>10} {'FQ ops':>7}")
    for name in stats:
        s, m = stats[name], info[name]
        print(f"{name:<12} {s['median_ms']:>10.2f} {s['p90_ms']:>8.2f} {s['mean_ms']:>8.2f} "
              f"{m['resolved']['INFERENCE_PRECISION_HINT']:>10} {m['fake_quantize_ops']:>7}")
    print(f"\nratio handwritten_median / optbuild_median = {results['ratio_median']:.3f}"
          "  (>= 1.0: optbuild at least as fast)")
    same = results["ir_comparison"]
    print(f"outputs agree: cosine {results['agreement']['cosine']:.5f}; "
          f"model.bin identical: {same['bin_identical']}; same op counts: {same['op_counts_identical']}")
    print(f"machine: {results['machine']['cpu']}, {results['machine']['logical_cpus']} logical CPUs, "
          f"OpenVINO {results['machine']['openvino']}")
    print(f"command: {results['command']}")


def run(args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    import openvino as ov

    opt_xml, runtime, opt_build_s = build_optbuild(out_dir, args.samples)
    print(f"[optbuild] built in {opt_build_s:.0f}s: {opt_xml}", flush=True)
    print("[handwritten] torch -> ONNX -> OpenVINO -> NNCF -> save_model", flush=True)
    hw_xml, hw_build_s = build_handwritten(out_dir / "handwritten", args.samples)
    print(f"[handwritten] built in {hw_build_s:.0f}s: {hw_xml}", flush=True)

    if runtime["device"] != "CPU":
        raise SystemExit(f"runtime.json names device {runtime['device']}, this benchmark is for CPU")
    properties = {
        "optbuild": {**runtime["properties"], **LATENCY},
        "handwritten": dict(LATENCY),
    }
    core = ov.Core()
    models = {
        "optbuild": compile_ir(core, opt_xml, properties["optbuild"]),
        "handwritten": compile_ir(core, hw_xml, properties["handwritten"]),
    }
    xmls = {"optbuild": opt_xml, "handwritten": hw_xml}
    print(f"[measure] {args.warmup} warm-up + {args.iterations} measured iterations, interleaved", flush=True)
    latency = measure(models, args.warmup, args.iterations)
    described = {name: describe(models[name], xmls[name], properties[name]) for name in models}
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable, *sys.argv]),
        "optbuild_command": shlex.join(optbuild_command(out_dir, args.samples)),
        "samples": args.samples,
        "warmup": args.warmup,
        "iterations": args.iterations,
        "machine": machine(),
        "build_seconds": {"optbuild": opt_build_s, "handwritten": hw_build_s},
        "models": described,
        "ir_comparison": {
            "bin_identical": described["optbuild"]["bin_sha256"] == described["handwritten"]["bin_sha256"],
            "op_counts_identical": described["optbuild"]["op_counts"] == described["handwritten"]["op_counts"],
        },
        "latency": latency,
        "ratio_median": latency["handwritten"]["median_ms"] / latency["optbuild"]["median_ms"],
        "agreement": output_agreement(models),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.out_dir is not None:
        results = run(args, args.out_dir.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="optbuild-handwritten-") as tmp:
            results = run(args, Path(tmp))
    print_table(results)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
