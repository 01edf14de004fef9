"""Check a TensorRT engine built from this kit against the FP32 model, on the GPU machine.

    python check_engine.py [ENGINE]     (default: build/model.plan)

Runs the engine (through Polygraphy's TensorRT runner: `pip install polygraphy` next to
tensorrt) on the kit's sample inputs (samples.json) and compares each output with the FP32
reference outputs optbuild computed (reference.json): mean cosine similarity per output against
`min_cosine` (the recipe's cosine gate, else the CPU proxy's cosine on these samples less
`margin`), plus top-1 agreement where an output has classes. Writes build/check.json, adds it as
`engine_check` to the engine's build_report.json (when build_engine.py wrote one), and exits 1
when an output misses. The same samples work with Polygraphy's CLI:
`polygraphy run build/model.plan --trt --load-inputs samples.json`.

Standalone on purpose: it is copied into the kit and imports nothing from optbuild.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def cosine(reference: np.ndarray, actual: np.ndarray) -> float:
    """Cosine similarity of one sample's output (flattened), 1.0 when both are zero."""
    a, b = reference.astype(np.float64).ravel(), actual.astype(np.float64).ravel()
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / norms) if norms else float(np.array_equal(a, b))


def compare(references: list[dict[str, Any]], actuals: list[dict[str, Any]], min_cosine: float) -> dict[str, Any]:
    """Per output: mean and worst cosine over the samples, top-1 agreement (outputs whose last
    axis holds several classes), max abs error; `passed` when every mean cosine >= min_cosine."""
    outputs: dict[str, Any] = {}
    for name in references[0]:
        pairs = [(np.asarray(ref[name]), np.asarray(out[name])) for ref, out in zip(references, actuals)]
        if any(ref.shape != out.shape for ref, out in pairs):
            shapes = sorted({f"{ref.shape} vs {out.shape}" for ref, out in pairs if ref.shape != out.shape})
            outputs[name] = {"passed": False, "error": f"shape mismatch: {', '.join(shapes)}"}
            continue
        cosines = [cosine(ref, out) for ref, out in pairs]
        record: dict[str, Any] = {"cosine_mean": float(np.mean(cosines)), "cosine_min": float(np.min(cosines)),
                                  "max_abs_error": float(max(np.abs(ref - out).max() for ref, out in pairs))}
        if pairs[0][0].ndim >= 1 and pairs[0][0].shape[-1] > 1:
            hits = [np.mean(ref.argmax(-1) == out.argmax(-1)) for ref, out in pairs]
            record["top1_agreement"] = float(np.mean(hits))
        record["passed"] = record["cosine_mean"] >= min_cosine
        outputs[name] = record
    return {"samples": len(references), "min_cosine": min_cosine, "outputs": outputs,
            "passed": all(o["passed"] for o in outputs.values())}


def record_in_report(report_path: Path, result: dict[str, Any]) -> bool:
    """The check's result as `engine_check` in the build_report.json build_engine.py wrote next
    to the engine (replaced whole, through a temporary file, so a crash leaves the old report).
    False when there is no report (an engine built by trtexec.sh)."""
    if not report_path.is_file():
        return False
    report = json.loads(report_path.read_text())
    report["engine_check"] = result
    partial = report_path.with_suffix(".json.tmp")
    partial.write_text(json.dumps(report, indent=2) + "\n")
    partial.replace(report_path)
    return True


def _run(engine_path: Path, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    with TrtRunner(EngineFromBytes(engine_path.read_bytes())) as runner:
        return [{name: np.array(value) for name, value in runner.infer(feed).items()} for feed in samples]


def main(argv: list[str]) -> int:
    engine_path = Path(argv[0]) if argv else HERE / "build" / "model.plan"
    if not engine_path.is_file():
        print(f"check_engine.py: error: no engine at {engine_path}: build it first (build_engine.py or "
              "trtexec.sh)", file=sys.stderr)
        return 2
    try:
        from polygraphy.json import load_json
    except ImportError:
        print("check_engine.py: error: needs Polygraphy next to TensorRT: pip install polygraphy", file=sys.stderr)
        return 2
    samples = load_json(str(HERE / "samples.json"))
    reference = load_json(str(HERE / "reference.json"))
    try:
        actuals = _run(engine_path, samples)
    except Exception as err:  # noqa: BLE001 - any runtime failure is one line
        print(f"check_engine.py: error: running {engine_path.name} failed: {type(err).__name__}: "
              f"{str(err).splitlines()[0] if str(err) else ''}", file=sys.stderr)
        return 1
    result = {"engine": engine_path.name, **compare(reference["outputs"], actuals, reference["min_cosine"])}
    out = HERE / "build" / "check.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    record_in_report(engine_path.parent / "build_report.json", result)
    for name, record in result["outputs"].items():
        detail = record.get("error") or (f"cosine {record['cosine_mean']:.4f} (worst {record['cosine_min']:.4f})"
                                         + (f", top-1 agreement {record['top1_agreement']:.3f}"
                                            if "top1_agreement" in record else ""))
        print(f"{'ok  ' if record['passed'] else 'MISS'} {name}: {detail}")
    print(f"check: {'passed' if result['passed'] else 'FAILED'} (min cosine {result['min_cosine']:.4f} over "
          f"{result['samples']} samples); written to {out.relative_to(HERE)}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
