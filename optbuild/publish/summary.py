"""The build summary on the terminal: stages, accuracy, speed, where the artifact is."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def summary(console: Console, manifest: dict[str, Any], path: str, reused: bool,
            measured: tuple[tuple[str, str], ...] = (("validation", ""),)) -> None:
    """`measured`: the manifest's accuracy records to show, each with the words that say what
    was measured (a target's plan gives them)."""
    title = f"{manifest['recipe']['name']} {manifest['target']}-{manifest['precision']}"
    table = Table(title=title, min_width=len(title) + 4)
    table.add_column("stage")
    table.add_column("cache")
    table.add_column("seconds", justify="right")
    for stage in manifest["stages"]:
        table.add_row(stage["name"], "hit" if stage["cache_hit"] else "ran", f"{stage['seconds']:.1f}")
    console.print(table)
    for note in manifest.get("notes") or []:
        console.print(f"[yellow]note[/]: {note}", highlight=False)
    if manifest.get("unverified_passes"):
        console.print(f"[yellow]not verified[/] (verify: false): pass {', '.join(manifest['unverified_passes'])}; "
                      "the artifact was validated against the model before surgery", highlight=False)
    for field, prefix in measured:
        for line in accuracy_lines(manifest[field], prefix) if manifest.get(field) else []:
            console.print(line, highlight=False)
    bench = manifest.get("benchmark")
    if bench:
        for line in benchmark_lines(bench):
            console.print(line, highlight=False)
    if manifest.get("tuning"):
        console.print(tuning_line(manifest["tuning"]), highlight=False)
    what = "artifact" if manifest.get("status") != "failed" else "[red]failed[/] version (not latest)"
    console.print(f"{what}: [bold]{path}[/]" + (" (unchanged: reused)" if reused else ""))
    if manifest.get("statement"):  # what the artifact is not (e.g. a build kit without an engine)
        console.print(manifest["statement"])


def labeled_line(record: dict[str, Any]) -> str | None:
    """Top-1 (and top-5) against the labels, FP32 → artifact, when the set had labels."""
    if not record.get("labeled") or "reference_top1" not in record:  # masks as labels: see its metrics
        return None
    top5 = (f"   top-5: {record['reference_top5']:.2%} → {record['artifact_top5']:.2%}"
            if "artifact_top5" in record else "")
    return (f"accuracy on {record['labeled_samples']} labeled samples: top-1 FP32 {record['reference_top1']:.2%} → "
            f"{record['artifact_top1']:.2%} (drop {record['top1_drop'] * 100:.2f} points){top5}")


def accuracy_lines(record: dict[str, Any], prefix: str = "") -> list[str]:
    """A validation (or CPU proxy) record: its metrics (else agreement and cosine with FP32),
    then accuracy on labels."""
    if record.get("metrics"):
        lines = [(prefix or "metrics: ") + "   ".join(metric_text(m) for m in record["metrics"])]
    else:
        lines = [f"{prefix}agreement (top-1 vs FP32): {record['top1_agreement']:.1%}   "
                 f"cosine: {record['cosine_mean']:.4f}   max-abs: {record['max_abs_error']:.3g}"]
    labeled = labeled_line(record)
    return lines + ([f"{prefix}{labeled}"] if labeled else [])


def metric_text(measured: dict[str, Any]) -> str:
    """`cosine(logits) 0.9863 (min 0.95)`; an agreement on a degenerate reference says so."""
    bounds = ", ".join(f"{b} {measured[b]:g}" for b in ("min", "max") if measured.get(b) is not None)
    value = f"{measured['value']:.4g}" + ("" if measured.get("meaningful", True) else " [not meaningful]")
    return f"{measured['name']}({measured['output']}) {value}" + (f" ({bounds})" if bounds else "")


def benchmark_lines(bench: dict[str, Any]) -> list[str]:
    """Latency and throughput against the baselines, ratios first-class."""
    art, ort = bench["artifact"], bench["baseline_onnxruntime_fp32"]
    latency = (f"latency (batch {bench['batch']}, median): {art['median_ms']:.2f} ms (p90 {art['p90_ms']:.2f})   "
               f"ONNX Runtime FP32: {ort['median_ms']:.2f} ms ({bench['speedup_median']:.2f}x)")
    if bench.get("baseline_torch_eager"):
        latency += (f"   torch eager: {bench['baseline_torch_eager']['median_ms']:.2f} ms "
                    f"({bench['speedup_latency_vs_torch']:.2f}x)")
    lines = [latency]
    throughput = bench.get("throughput")
    if throughput:
        tp = throughput["artifact"]
        lines.append(f"throughput (batch {tp['batch']}, {tp['requests']} requests): {tp['samples_per_s']:.1f}/s   "
                     f"ONNX Runtime FP32: {throughput['onnxruntime_fp32']['inferences_per_s']:.1f}/s "
                     f"({bench['speedup_throughput_vs_onnxruntime']:.2f}x)")
    e2e = bench.get("end_to_end")
    if e2e:
        height, width, _ = e2e["image"]
        lines.append(f"end to end ({width}x{height} image -> outputs, median): {e2e['artifact']['median_ms']:.2f} ms   "
                     f"hand-written preprocessing + same network: {e2e['hand_written']['median_ms']:.2f} ms "
                     f"({e2e['ratio_vs_hand_written']:.2f}x the time)   ONNX Runtime FP32: "
                     f"{e2e['onnxruntime_fp32']['median_ms']:.2f} ms")
    return lines


def tuning_line(tuning: dict[str, Any]) -> str:
    chosen = tuning["chosen"]
    measured = sum(1 for c in tuning["candidates"] if "same_as" not in c)
    if chosen["default"]:
        what = "kept OpenVINO's defaults"
    else:
        settings = {k: v for k, v in chosen["properties"].items() if k != "INFERENCE_PRECISION_HINT"}
        what = " ".join(f"{k}={v}" for k, v in sorted(settings.items())) + f" batch={chosen['batch']}"
        what += f" precision={chosen['resolved']['INFERENCE_PRECISION_HINT']}"
    return (f"tuned for {tuning['objective']} ({measured} distinct of {len(tuning['candidates'])} candidates): "
            f"{what}   {tuning['gain_vs_default']:.2f}x vs default")
