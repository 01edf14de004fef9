"""The machine-wide turns of optbuild/pipeline/measuring.py, with real processes: a measuring
stage waits for running build stages, build stages that arrive while it waits do not start
before it finishes, build stages share, and a process never waits for itself."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest
import turn_roles  # tests/ is on sys.path (pyproject: pytest pythonpath)

from optbuild.errors import OptbuildError
from optbuild.pipeline.measuring import MEASURING_STAGES, MachineTurns

CONTEXT = multiprocessing.get_context("spawn")  # fresh interpreters, as stage workers and loky workers are


class Player:
    """One process holding one turn: `entered` once it has it, `let_go()` to end it."""

    def __init__(self, directory: Path, stage: str, events: Any) -> None:
        self.entered, self.release = CONTEXT.Event(), CONTEXT.Event()
        self.process = CONTEXT.Process(target=turn_roles.hold_turn,
                                       args=(str(directory), stage, self.entered, self.release, events))
        self.process.start()

    def let_go(self) -> None:
        self.release.set()
        self.process.join(30)
        assert self.process.exitcode == 0


def drained(events: Any, count: int) -> list[tuple[str, str, float]]:
    return sorted((events.get(timeout=30) for _ in range(count)), key=lambda event: event[2])


def test_a_measurer_waits_for_builders_and_blocks_new_ones(tmp_path: Path) -> None:
    events = CONTEXT.Queue()
    quantize = Player(tmp_path, "quantize", events)
    assert quantize.entered.wait(30)
    export = Player(tmp_path, "export", events)  # build stages share the machine
    assert export.entered.wait(30)

    benchmark = Player(tmp_path, "benchmark", events)
    assert not benchmark.entered.wait(1.0)  # two build stages still run
    surgery = Player(tmp_path, "surgery", events)  # arrives while the measurer waits
    assert not surgery.entered.wait(1.0)

    quantize.let_go()
    assert not benchmark.entered.wait(0.5)  # export still runs
    export.let_go()
    assert benchmark.entered.wait(30)
    assert not surgery.entered.wait(1.0)  # the measurer has the machine to itself
    benchmark.let_go()
    assert surgery.entered.wait(30)
    surgery.let_go()

    order = [(stage, what) for stage, what, _ in drained(events, 8)]
    assert order.index(("benchmark", "in")) > order.index(("quantize", "out"))
    assert order.index(("benchmark", "in")) > order.index(("export", "out"))
    assert order.index(("surgery", "in")) > order.index(("benchmark", "out"))


def test_measurers_take_turns_one_at_a_time(tmp_path: Path) -> None:
    events = CONTEXT.Queue()
    benchmark = Player(tmp_path, "benchmark", events)
    assert benchmark.entered.wait(30)
    tune = Player(tmp_path, "tune", events)
    assert not tune.entered.wait(1.0)
    benchmark.let_go()
    assert tune.entered.wait(30)
    tune.let_go()
    assert MEASURING_STAGES == {"benchmark", "tune"}


def test_a_process_takes_its_own_turns_in_sequence(tmp_path: Path) -> None:
    turns = MachineTurns(tmp_path, wait=2)
    for stage in ("source", "export", "benchmark", "quantize", "tune", "validate"):
        with turns.turn(stage):  # a job's stages run one after another: no waiting for itself
            pass


def test_waiting_too_long_names_the_holder(tmp_path: Path) -> None:
    events = CONTEXT.Queue()
    quantize = Player(tmp_path, "quantize", events)
    assert quantize.entered.wait(30)
    try:
        with pytest.raises(OptbuildError) as raised:
            with MachineTurns(tmp_path, wait=0.3).measuring("benchmark"):
                pass
    finally:
        quantize.let_go()
    message = raised.value.message
    assert message.startswith("waited 0s for the machine's measuring lock")
    assert f"process {quantize.process.pid} on" in message and "(quantize, building since" in message
    assert "let it finish, or stop it if it hangs" in message
    with MachineTurns(tmp_path, wait=2).measuring("benchmark"):  # released with the holder, who is no longer named
        holders = tmp_path / f"optbuild-measuring-{os.getuid()}.holders"
        assert [path.name for path in holders.glob("*.json")] == [f"{os.getpid()}.json"]
