"""Runs each job of a Hydra sweep as a Ray task: on a local Ray instance, or on a cluster.

`init` goes to `ray.init` (address: null starts a local instance unless RAY_ADDRESS names a
cluster; "auto" joins the cluster this machine belongs to; "ray://head:10001" connects from
outside). `remote` goes to `ray.remote` for each job (e.g. num_cpus, memory, resources).
Jobs write their own records (result.json), so the launcher only waits for them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)


def _given(section: Any) -> dict[str, Any]:
    """A config section as keyword arguments, without the keys left at null (Ray's defaults)."""
    values: Any = OmegaConf.to_container(section, resolve=True) if isinstance(section, DictConfig) else section
    return {str(key): value for key, value in dict(values or {}).items() if value is not None}


def _run_job(hydra_context: HydraContext, sweep_config: DictConfig, task_function: TaskFunction,
             singleton_state: dict[Any, Any]) -> JobReturn:
    """Inside a Ray worker: restore Hydra's process-wide state, then run the job as Hydra would."""
    setup_globals()
    Singleton.set_state(singleton_state)
    HydraConfig.instance().set_config(sweep_config)
    return run_job(hydra_context=hydra_context, task_function=task_function, config=sweep_config,
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")


class RayLauncher(Launcher):
    def __init__(self, init: Any = None, remote: Any = None, **_: Any) -> None:
        self.init = _given(init)
        self.remote = _given(remote)
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        # Ray is imported only when this launcher is chosen: it is heavy and optional.
        import ray

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        started_here = not ray.is_initialized()
        if started_here:
            # A Ray instance started here must not report usage statistics over the network.
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            ray.init(**self.init)
        try:
            run = ray.remote(**self.remote)(_run_job) if self.remote else ray.remote(_run_job)
            pending = []
            for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
                log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
                sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
                with open_dict(sweep_config):
                    sweep_config.hydra.job.id = f"ray_{idx}"
                    sweep_config.hydra.job.num = idx
                pending.append(run.remote(self.hydra_context, sweep_config, self.task_function,
                                          Singleton.get_state()))
            return ray.get(pending)
        finally:
            if started_here:
                ray.shutdown()


def register() -> None:
    """Make the launcher known to Hydra even where its plugin scan cannot list this package
    (an editable install's import hook is invisible to pkgutil)."""
    from hydra.core.plugins import Plugins

    Plugins.instance().register(RayLauncher)
