"""Where ResNet-50 INT8's batch-1 speed-up over FP32 ONNX Runtime comes from.

Times, interleaved in one process with the benchmark stage's own loop (optbuild.stages.benchmark):
FP32 ONNX Runtime (intra-op threads = cores, spinning off, as the stage runs it), the FP32
OpenVINO IR computing in f32 (the runtime alone), the INT8 IR with its non-quantized ops in f32
and in bf16 (the device default on CPUs with AVX512-BF16/AMX), and torch eager; then ONNX
Runtime with its default spinning workers, alone (interleaved, its spinning threads would slow
whatever runs next). Builds both IRs with the optbuild CLI (random weights) into --out-dir.

    .venv/bin/python benchmarks/int8_speedup_breakdown.py --out-dir /tmp/parity --json breakdown.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from cli_build import build_ir  # benchmarks/ is on sys.path when a script here runs

INPUTS = [{"name": "input", "shape": [1, 3, 224, 224]}]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    out_dir = args.out_dir.resolve()
    int8, fp32 = build_ir(out_dir, "resnet50_int8")[0], build_ir(out_dir, "resnet50")[0]

    import onnxruntime as ort
    import openvino as ov
    from benchmark_app_parity import stage_inputs

    from optbuild.core.platform import platform_info
    from optbuild.stages.intel.benchmark import feeds, interleaved, onnxruntime_session, resolved, torch_model

    data = feeds(INPUTS)
    reference = stage_inputs(int8, out_dir)["reference.onnx"]
    threads = len(os.sched_getaffinity(0))
    spinning_options = ort.SessionOptions()
    spinning_options.intra_op_num_threads = threads
    spinning = ort.InferenceSession(reference, spinning_options, providers=["CPUExecutionProvider"])
    quiet = onnxruntime_session(reference, threads)
    core = ov.Core()
    compiled = {
        "openvino_fp32_ir_f32": core.compile_model(str(fp32 / "model.xml"), "CPU",
                                                   {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}),
        "openvino_int8_f32": core.compile_model(str(int8 / "model.xml"), "CPU",
                                                {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}),
        "openvino_int8_default": core.compile_model(str(int8 / "model.xml"), "CPU", {"PERFORMANCE_HINT": "LATENCY"}),
    }
    requests = {name: c.create_infer_request() for name, c in compiled.items()}
    for request in requests.values():
        request.infer(data)
    models: dict[str, Any] = {"onnxruntime_fp32": lambda: quiet.run(None, data),
                              **{name: request.infer for name, request in requests.items()},
                              "torch_eager_fp32": torch_model({"source": "torchvision", "name": "resnet50", "seed": 0},
                                                               None, threads, data)}
    stats = interleaved(models, args.iterations, 10)
    stats.update(interleaved({"onnxruntime_fp32_spinning_alone": lambda: spinning.run(None, data)},
                             args.iterations, 10))
    base = stats["onnxruntime_fp32"]["median_ms"]
    print(f"\n{'model':<28} {'median ms':>10} {'p90 ms':>8}  {'ORT FP32 / model':>16}")
    for name, s in stats.items():
        print(f"{name:<28} {s['median_ms']:>10.2f} {s['p90_ms']:>8.2f}  {base / s['median_ms']:>15.2f}x")
    results: dict[str, Any] = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
               "command": shlex.join([sys.executable, *sys.argv]), "machine": platform_info(),
               "load_average": os.getloadavg(), "latency": stats,
               "resolved": {name: resolved(c) for name, c in compiled.items()},
               "speedup_vs_onnxruntime_fp32": {n: base / s["median_ms"] for n, s in stats.items()}}
    print(f"precision: { {n: r['INFERENCE_PRECISION_HINT'] for n, r in results['resolved'].items()} }; "
          f"load average {results['load_average'][0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
