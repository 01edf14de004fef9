"""Run a stage function in a fresh Python process.

Exporters and converters name graph nodes from process-global counters, so byte-identical
output needs a fresh interpreter per stage. It also keeps torch/openvino/nncf out of the main
process (a fully cached build never imports them) and sends their chatter to the run's log.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from optbuild.errors import OptbuildError, file_problem, first_line


def _die_with_parent() -> None:
    """A worker must not outlive a killed build (it would keep writing into the scratch dir)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _init_worker(log_path: str | None) -> None:
    _die_with_parent()
    if not log_path:
        return
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def run_isolated(stage: str, fn: Callable[..., Any], *args: Any, log_path: str | None = None) -> Any:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=1, mp_context=context, initializer=_init_worker, initargs=(log_path,)
    ) as pool:
        try:
            return pool.submit(fn, *args).result()
        except OptbuildError:
            raise
        except OSError as err:
            raise OptbuildError(f"stage '{stage}': {file_problem(err)}") from err
        except BrokenProcessPool as err:
            raise OptbuildError(
                f"stage '{stage}' worker process died (out of memory or killed); "
                f"see the log{' ' + log_path if log_path else ''}"
            ) from err
        except Exception as err:  # noqa: BLE001 - a toolkit's own exception, summarised
            raise OptbuildError(
                f"stage '{stage}' failed: {type(err).__name__}: {first_line(err)} (full trace in the run's "
                "log; debug=true prints it)"
            ) from err
