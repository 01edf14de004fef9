"""The Hydra task: one job of a run or of a multirun sweep.

Errors are caught here, per job, so that a failing job in a sweep never stops the others (an
exception escaping a job would also make Hydra skip its end-of-sweep callbacks); the exit code
is decided once all jobs ran.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from optbuild.errors import OptbuildError
from optbuild.recipe_index import RecipeFile

log = logging.getLogger("optbuild")


def _log_to(path: Path) -> list[logging.Handler]:
    """Everything to the run's log file; warnings (e.g. a corrupt cache object) also to stderr."""
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(path)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    to_terminal = logging.StreamHandler(sys.stderr)
    to_terminal.setLevel(logging.WARNING)
    to_terminal.setFormatter(logging.Formatter("optbuild: warning: %(message)s"))
    root = logging.getLogger("optbuild")
    root.setLevel(logging.INFO)
    root.propagate = False
    for handler in (to_file, to_terminal):
        root.addHandler(handler)
    return [to_file, to_terminal]


class BuildJob:
    def __init__(self, recipes: dict[str, RecipeFile]) -> None:
        self.recipes = recipes
        self.failures: list[str] = []
        self.console = Console(stderr=True, highlight=False)

    def exit_code(self) -> int:
        return 1 if self.failures else 0

    def __call__(self, cfg: DictConfig) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra = HydraConfig.get()
        overrides = list(hydra.overrides.task)
        sweep = hydra.mode == RunMode.MULTIRUN
        label = " ".join(overrides) if sweep else ""
        log_path = Path(hydra.runtime.output_dir) / "optbuild.log"
        handlers = _log_to(log_path)
        debug = bool(cfg.get("debug", False))
        try:
            if sweep:
                self.console.rule(f"[bold]job {hydra.job.num}[/]: {label}")
            self._build(cfg, hydra.runtime.choices["recipe"], overrides, str(log_path))
        except Exception as err:  # noqa: BLE001 - every failure becomes this job's one line
            log.info("build failed:\n%s", traceback.format_exc())
            if debug:
                traceback.print_exc()
            from optbuild.config_errors import explain

            message = err.message if isinstance(err, OptbuildError) else explain(err)
            if not isinstance(err, OptbuildError) and not debug:
                message += f" (unexpected {type(err).__name__}; full trace in {log_path})"
            prefix = f"[{label}] " if sweep else ""
            sys.stderr.write(f"optbuild: error: {prefix}{' '.join(message.split())}\n")
            self.failures.append(message)
        finally:
            for handler in handlers:
                logging.getLogger("optbuild").removeHandler(handler)
                handler.close()

    def _build(self, cfg: DictConfig, recipe_name: str, overrides: list[str], log_path: str) -> None:
        from optbuild.build import build
        from optbuild.config_check import check

        resolved = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
        config = check(resolved)
        build(config, self.recipes[recipe_name], overrides, resolved, log_path, self.console)
