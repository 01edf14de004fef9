"""A process that takes one machine-wide turn (optbuild/pipeline/measuring.py) and holds it until
told to let go: the lock tests start several, as separate interpreters, to play build jobs and
measuring jobs. Lives in tests/ (on sys.path) so spawned children can import it."""

from __future__ import annotations

import time
from typing import Any


def hold_turn(directory: str, stage: str, entered: Any, release: Any, events: Any) -> None:
    from optbuild.pipeline.measuring import MachineTurns

    with MachineTurns(directory, wait=60).turn(stage):
        events.put((stage, "in", time.time()))
        entered.set()
        release.wait(60)
        events.put((stage, "out", time.time()))
