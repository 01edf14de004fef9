"""Progress on the terminal: a spinner while a stage works, then one line with its outcome."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from optbuild.pipeline.stage import StageResult, StageSpec


class StageProgress:
    """Runner observer."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self.console = console
        self.enabled = enabled
        self._status: Any = None

    def started(self, spec: StageSpec) -> None:
        if self.enabled:
            self._status = self.console.status(f"[bold]{spec.name}[/]: {spec.describe or spec.name}…")
            self._status.start()

    def finished(self, result: StageResult) -> None:
        self.stop()
        if self.enabled:
            how = "[dim]cached[/]" if result.cache_hit else f"{result.seconds:.1f}s"
            self.console.print(f"[green]✓[/] {result.name:<10} {how}")

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
