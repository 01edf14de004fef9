"""Latency parity: optbuild's benchmark stage against OpenVINO's own `benchmark_app` on one IR.

The claim under test: the artifact latency that optbuild's benchmark stage records (batch 1,
sync, timed in turns with the ONNX Runtime and torch baselines) is the latency OpenVINO's
reference tool measures for the same IR in latency mode:

    benchmark_app -m model.xml -d CPU -hint latency -api sync -b 1 -t SECONDS

Both run in the same invocation of this script, alternately for a few rounds (machine load
drifts; alternating spreads it over both). The ratio of the medians (median over rounds of each
tool's median latency) must be within 10 % of 1.

By default the IR is ResNet-50 INT8 with random weights, built with the optbuild CLI:

    optbuild recipe=resnet50_int8 model.weights=null validate.enabled=false benchmark.enabled=false out_dir=<tmp>

Run from the repository root:

    .venv/bin/python benchmarks/benchmark_app_parity.py                  # build, then 3 rounds
    .venv/bin/python benchmarks/benchmark_app_parity.py --out-dir /tmp/p  # keep (and reuse) the build
    .venv/bin/python benchmarks/benchmark_app_parity.py --json parity.json --rounds 5 --seconds 15
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cli_build import build_ir  # benchmarks/ is on sys.path when a script here runs

REPO = Path(__file__).resolve().parents[1]
INPUTS = [{"name": "input", "shape": [1, 3, 224, 224]}]
TORCH = {"source": "torchvision", "name": "resnet50", "seed": 0}  # model.weights=null: seeded init
TOLERANCE = 0.10
_PROPERTY = re.compile(r"^\[ INFO \]\s+(NUM_STREAMS|INFERENCE_NUM_THREADS|INFERENCE_PRECISION_HINT|"
                       r"PERFORMANCE_HINT|ENABLE_CPU_PINNING): (.+)$")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out-dir", type=Path, help="build here (default: a temporary directory)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of each tool (default 3)")
    parser.add_argument("--seconds", type=float, default=10.0, help="benchmark_app -t per round (default 10)")
    parser.add_argument("--iterations", type=int, default=200,
                        help="optbuild benchmark.iterations per round (default 200)")
    parser.add_argument("--no-torch", action="store_true", help="leave the torch eager baseline out of the stage")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0 or args.iterations < 1:
        parser.error("--rounds and --iterations must be >= 1, --seconds > 0")
    return args


def stage_inputs(version: Path, out_dir: Path) -> dict[str, str]:
    """What the benchmark stage reads: the IR, its runtime.json, and the FP32 reference ONNX
    (the surgery stage's output, from the build's cache)."""
    from optbuild.store import Store

    manifest = json.loads((version / "manifest.json").read_text())
    surgery = next(s for s in manifest["stages"] if s["name"] == "surgery")
    digest = next(o["sha256"] for o in surgery["outputs"] if o["path"] == "model.onnx")
    reference = Store(out_dir / ".cache").blob_path(digest)
    if not reference.is_file():
        raise SystemExit(f"the reference ONNX {digest[:12]} is not in {out_dir / '.cache'}: rebuild there")
    return {"model.xml": str(version / "model.xml"), "model.bin": str(version / "model.bin"),
            "runtime.json": str(version / "runtime.json"), "reference.onnx": str(reference)}


def benchmark_app(xml: str, seconds: float) -> dict[str, Any]:
    command = [str(Path(sys.executable).parent / "benchmark_app"), "-m", xml, "-d", "CPU", "-hint", "latency",
               "-api", "sync", "-b", "1", "-t", f"{seconds:g}"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"benchmark_app failed with exit code {result.returncode}")
    lines = result.stdout.splitlines()
    latency = lines.index(next(line for line in lines if line.strip().endswith("Latency:")))
    stats = {}
    for line in lines[latency + 1 : latency + 5]:  # Median, Average, Min, Max
        name, _, value = line.split("]", 1)[1].strip().partition(":")
        stats[name.lower()] = float(value.split()[0])
    count = next(line for line in lines if "Count:" in line)
    settings = {m[1]: m[2].strip() for line in lines if (m := _PROPERTY.match(line))}
    return {"command": shlex.join(command), "median_ms": stats["median"], "mean_ms": stats["average"],
            "min_ms": stats["min"], "max_ms": stats["max"], "iterations": int(count.split()[-2]),
            "settings": settings}


def optbuild_stage(inputs: dict[str, str], iterations: int, torch: bool) -> dict[str, Any]:
    from optbuild.stages.intel.benchmark import benchmark

    params = {"inputs": INPUTS, "iterations": iterations, "warmup": 10, "throughput_seconds": 1.0,
              "torch": TORCH if torch else None}
    with tempfile.TemporaryDirectory() as scratch:
        bench = benchmark(inputs, params, scratch)["data"]["benchmark"]
    return {**bench["artifact"], "resolved": bench["runtime"]["latency"]["resolved"],
            "onnxruntime_median_ms": bench["baseline_onnxruntime_fp32"]["median_ms"],
            "torch_median_ms": (bench["baseline_torch_eager"] or {}).get("median_ms")}


def run(args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    version, build_command = build_ir(out_dir)
    inputs = stage_inputs(version, out_dir)
    rounds = []
    for i in range(args.rounds):
        app = benchmark_app(inputs["model.xml"], args.seconds)
        ours = optbuild_stage(inputs, args.iterations, not args.no_torch)
        print(f"[round {i + 1}/{args.rounds}] benchmark_app median {app['median_ms']:.2f} ms "
              f"({app['iterations']} it.)   optbuild stage median {ours['median_ms']:.2f} ms "
              f"({ours['runs']} it.)   ratio {ours['median_ms'] / app['median_ms']:.3f}", flush=True)
        rounds.append({"benchmark_app": app, "optbuild": ours})
    app_median = statistics.median(r["benchmark_app"]["median_ms"] for r in rounds)
    ours_median = statistics.median(r["optbuild"]["median_ms"] for r in rounds)
    import openvino as ov

    from optbuild.core.platform import platform_info

    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable, *sys.argv]),
        "build_command": shlex.join(build_command),
        "ir": inputs["model.xml"],
        "machine": {**platform_info(), "openvino": ov.get_version(), "load_average": os.getloadavg()},
        "rounds": rounds,
        "benchmark_app_median_ms": app_median,
        "optbuild_median_ms": ours_median,
        "ratio": ours_median / app_median,
        "within_tolerance": abs(ours_median / app_median - 1) <= TOLERANCE,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    if args.out_dir is not None:
        results = run(args, args.out_dir.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="optbuild-parity-") as tmp:
            results = run(args, Path(tmp))
    print(f"\nmedian of round medians: benchmark_app {results['benchmark_app_median_ms']:.2f} ms, "
          f"optbuild benchmark stage {results['optbuild_median_ms']:.2f} ms")
    print(f"ratio optbuild / benchmark_app = {results['ratio']:.3f} "
          f"({'within' if results['within_tolerance'] else 'OUTSIDE'} ±{TOLERANCE:.0%}); "
          f"load average at the end {results['machine']['load_average'][0]:.2f}; "
          f"{time.perf_counter() - start:.0f}s in all")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 0 if results["within_tolerance"] else 1


if __name__ == "__main__":
    sys.exit(main())
