"""Models taking turns on the machine, so that noise hits all of them alike."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from optbuild.stages.metrics import latency_spread, latency_stats

BLOCK = 5  # timed runs of one model per turn (after one untimed run) before the next takes its turn


def interleaved(models: dict[str, Callable[[], Any]], iterations: int, warmup: int) -> dict[str, dict[str, float]]:
    """Per-model latency stats: warm-up, then turns of an untimed run and BLOCK timed ones
    (the untimed run absorbs the switch: caches, the previous runtime's threads), the order rotating."""
    for run in models.values():
        for _ in range(warmup):
            run()
    names = list(models)
    times: dict[str, list[float]] = {name: [] for name in models}
    turn = 0
    while any(len(t) < iterations for t in times.values()):
        order = names[turn % len(names):] + names[: turn % len(names)]
        for name in order:
            if len(times[name]) < iterations:
                models[name]()
            for _ in range(min(BLOCK, iterations - len(times[name]))):
                start = time.perf_counter()
                models[name]()
                times[name].append(time.perf_counter() - start)
        turn += 1
    return {name: {**latency_stats(t), **latency_spread(t)} for name, t in times.items()}
