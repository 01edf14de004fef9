"""Hydra callback (registered in conf/config.yaml): the sweep report at the end of a multirun.

It runs in the launching process whatever the launcher (joblib, Ray, Slurm), after all jobs
returned, and reads only what the jobs left on disk. The CLI takes the exit code from the
report it leaves in `STATE`; when the sweep is cut short (Ctrl-C, a launcher error), Hydra
skips on_multirun_end and the CLI calls `finish()` itself, so the jobs that did run are
still reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from optbuild.sweep.report import Report, show, write_report

log = logging.getLogger("optbuild.report")


@dataclass
class SweepState:
    sweep_dir: Path | None = None
    report: Report | None = None


STATE = SweepState()


def reset() -> None:
    STATE.sweep_dir, STATE.report = None, None


def finish() -> Report | None:
    """Write the report of the sweep this process launched, once."""
    if STATE.sweep_dir is not None and STATE.report is None and STATE.sweep_dir.is_dir():
        STATE.report = write_report(STATE.sweep_dir)
        show(STATE.report)
    return STATE.report


class SweepReport(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # The same config object as the sweeper's: `${now:...}` resolves to the same directory.
        STATE.sweep_dir, STATE.report = Path(str(config.hydra.sweep.dir)), None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        STATE.sweep_dir = Path(str(config.hydra.sweep.dir))
        finish()
