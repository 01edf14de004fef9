"""The Hydra task: one job of a run or of a multirun sweep.

Errors are caught here, per job, so that a failing job in a sweep never stops the others (an
exception escaping a job would also make Hydra skip its end-of-sweep callbacks). With a parallel
or cluster launcher a job runs in another process or machine, so each job leaves its outcome on
disk, `result.json` in its output directory (optbuild/sweep_record.py); the sweep's report and
exit code are made from those records once all jobs ran.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from rich.console import Console

from optbuild.config.recipes import RecipeFile
from optbuild.core.logs import log_to_file
from optbuild.errors import OptbuildError
from optbuild.sweep.record import JobRecord, write_record

log = logging.getLogger("optbuild")


def _stdlib_start_method() -> None:
    """A joblib (loky) worker sets the process-wide start method to 'loky', which a stage
    worker spawned from it (optbuild/isolate.py) cannot start with: back to the default."""
    import multiprocessing

    if multiprocessing.get_start_method(allow_none=True) not in (None, *multiprocessing.get_all_start_methods()):
        multiprocessing.set_start_method(None, force=True)


class BuildJob:
    def __init__(self, recipes: dict[str, RecipeFile]) -> None:
        self.recipes = recipes
        self.failures: list[str] = []

    @property
    def console(self) -> Console:
        return Console(stderr=True, highlight=False)

    def exit_code(self) -> int:
        return 1 if self.failures else 0

    def __call__(self, cfg: DictConfig) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        _stdlib_start_method()
        from optbuild.core.machine import mark_process

        mark_process()  # its stage workers count as optbuild processes (a benchmark's contention check)
        hydra = HydraConfig.get()
        overrides = list(hydra.overrides.task)
        sweep = hydra.mode == RunMode.MULTIRUN
        label = " ".join(overrides) if sweep else ""
        job_dir = Path(hydra.runtime.output_dir)
        log_path = job_dir / "optbuild.log"
        handlers = [log_to_file(log_path)]
        debug = bool(cfg.get("debug", False))
        record = JobRecord(job=int(hydra.job.num) if sweep else None, overrides=overrides,
                           recipe=hydra.runtime.choices.get("recipe"), log=str(log_path.absolute()))
        started = time.perf_counter()
        try:
            write_record(job_dir, record)  # "running": a job that dies leaves this behind
            if sweep:
                self.console.rule(f"[bold]job {hydra.job.num}[/]: {label}")
            outcome = self._build(cfg, hydra.runtime.choices["recipe"], overrides, str(log_path), sweep,
                                  record.stages)
            if outcome is not None:  # None: a passes_only dry run, nothing published
                record.succeeded(str(outcome.packaged.path.absolute()), outcome.packaged.reused)
            else:
                record.status = "ok"
        except Exception as err:  # noqa: BLE001 - every failure becomes this job's one line
            log.info("build failed:\n%s", traceback.format_exc())
            if debug:
                traceback.print_exc()
            from optbuild.config.explain import explain

            message = err.message if isinstance(err, OptbuildError) else explain(err)
            if not isinstance(err, OptbuildError) and not debug:
                message += f" (unexpected {type(err).__name__}; full trace in {log_path})"
            prefix = f"[{label}] " if sweep else ""
            sys.stderr.write(f"optbuild: error: {prefix}{' '.join(message.split())}\n")
            self.failures.append(message)
            from optbuild.pipeline.runner import failed_stage

            record.failed(" ".join(message.split()), failed_stage(err))
        finally:
            if record.status == "running":  # Ctrl-C or a signal: not an error of the build itself
                record.failed("interrupted before it finished", None)
            record.seconds = round(time.perf_counter() - started, 3)
            _save(job_dir, record)
            for handler in handlers:
                logging.getLogger("optbuild").removeHandler(handler)
                handler.close()

    def _build(self, cfg: DictConfig, recipe_name: str, overrides: list[str], log_path: str,
               sweep: bool, timeline: list[dict[str, Any]]) -> Any:
        from optbuild.build import build, passes_dry_run
        from optbuild.config.compose import plain_config
        from optbuild.config.validate import check

        resolved = plain_config(cfg)
        config = check(resolved)
        if config.passes_only:
            if sweep:
                raise OptbuildError("passes_only=true is a dry run of one build: run it without -m")
            return passes_dry_run(config, log_path, self.console, timeline)
        return build(config, self.recipes[recipe_name], overrides, resolved, log_path, self.console, timeline)


def _save(job_dir: Path, record: JobRecord) -> None:
    """The final record; a full disk must not turn a finished job into a crashed sweep."""
    try:
        write_record(job_dir, record)
    except OSError as err:
        log.warning("could not write the job record in %s (%s): the sweep report will count this job as failed",
                    job_dir, err.strerror)
