"""optbuild's own log: warnings on the terminal as `optbuild: warning: ...`, everything in a
run's log file."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

LOGGER = "optbuild"


class _Stderr(logging.StreamHandler):
    """Warnings to whatever sys.stderr is now (a test may have replaced it since)."""

    def __init__(self) -> None:
        super().__init__()
        self.setLevel(logging.WARNING)
        self.setFormatter(logging.Formatter("optbuild: warning: %(message)s"))

    @property
    def stream(self):  # noqa: ANN201 - the handler's stream attribute
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # noqa: ANN001
        pass


def warnings_to_stderr() -> None:
    """Once per process (a sweep's job may run in a process of its own)."""
    root = logging.getLogger(LOGGER)
    root.setLevel(logging.INFO)
    root.propagate = False
    if not any(isinstance(h, _Stderr) for h in root.handlers):
        root.addHandler(_Stderr())


def log_to_file(path: Path) -> logging.Handler:
    """Everything optbuild logs, into `path` (the run's log); remove it when the run ends."""
    warnings_to_stderr()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger(LOGGER).addHandler(handler)
    return handler
