"""Terminal output: a live line per stage while it runs, and the final summary table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from optbuild.runner import StageResult

_DESCRIPTIONS = {
    "source": "loading model source",
    "export": "exporting to ONNX",
    "surgery": "graph surgery passes",
    "quantize": "converting / quantizing",
    "build": "building artifact",
    "validate": "validating against FP32 reference",
    "benchmark": "benchmarking against ONNX Runtime FP32",
    "precision": "setting precision in the graph (Q/DQ or float16/bfloat16)",
    "cpu_proxy": "checking the prepared graph on CPU against FP32",
    "kit": "writing the TensorRT build kit",
    "engine": "building the TensorRT engine",
}


class StageProgress:
    """Runner observer: a spinner while a stage works, then one line with its outcome."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self.console = console
        self.enabled = enabled
        self._status: Any = None

    def started(self, stage: str) -> None:
        if self.enabled:
            self._status = self.console.status(f"[bold]{stage}[/]: {_DESCRIPTIONS.get(stage, stage)}…")
            self._status.start()

    def finished(self, result: StageResult) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        if self.enabled:
            how = "[dim]cached[/]" if result.cache_hit else f"{result.seconds:.1f}s"
            self.console.print(f"[green]✓[/] {result.name:<10} {how}")

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


def summary(console: Console, manifest: dict[str, Any], path: str, reused: bool) -> None:
    title = f"{manifest['recipe']['name']} {manifest['target']}-{manifest['precision']}"
    table = Table(title=title, min_width=len(title) + 4)
    table.add_column("stage")
    table.add_column("cache")
    table.add_column("seconds", justify="right")
    for stage in manifest["stages"]:
        table.add_row(stage["name"], "hit" if stage["cache_hit"] else "ran", f"{stage['seconds']:.1f}")
    console.print(table)
    validation, bench = manifest.get("validation"), manifest.get("benchmark")
    if validation:
        console.print(
            f"agreement (top-1 vs FP32): {validation['top1_agreement']:.1%}   "
            f"cosine: {validation['cosine_mean']:.4f}   max-abs: {validation['max_abs_error']:.3g}"
        )
    if bench:
        console.print(
            f"latency (batch {bench['batch']}, median): {bench['artifact']['median_ms']:.2f} ms   "
            f"ONNX Runtime FP32: {bench['baseline_onnxruntime_fp32']['median_ms']:.2f} ms   "
            f"speed-up: {bench['speedup_median']:.2f}x"
        )
    console.print(f"artifact: [bold]{path}[/]" + (" (unchanged: reused)" if reused else ""))
