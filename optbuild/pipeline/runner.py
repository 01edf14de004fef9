"""The stage runner: computes each stage's cache key, reuses a recorded result or runs the
stage (in a fresh process) and stores its outputs by content.

A stage that runs first takes its machine-wide turn (pipeline/measuring.py: measuring stages
alone, build stages side by side), and the runner notes in its timeline when it really ran
(wall clock, inside the turn), so a sweep can show that no measurement overlapped a build."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Protocol

from optbuild.errors import OptbuildError
from optbuild.pipeline.isolate import run_isolated
from optbuild.pipeline.measuring import measures, turn
from optbuild.pipeline.stage import StageResult, StageSpec
from optbuild.store import ActionRecord, Store

log = logging.getLogger("optbuild.runner")
FAILED_STAGE = "optbuild_failed_stage"


def failed_stage(err: BaseException) -> str | None:
    """The stage during which `err` was raised by Runner.run, if it was."""
    return getattr(err, FAILED_STAGE, None)


class Observer(Protocol):
    def started(self, spec: StageSpec) -> None: ...
    def finished(self, result: StageResult) -> None: ...


class Runner:
    def __init__(self, store: Store, observer: Observer, log_path: str | None = None,
                 timeline: list[dict[str, Any]] | None = None) -> None:
        self.store = store
        self.observer = observer
        self.log_path = log_path
        self.results: dict[str, StageResult] = {}
        # One entry per stage, in order: cache hit or not, and when it ran (epoch seconds).
        self.timeline: list[dict[str, Any]] = timeline if timeline is not None else []

    def run(self, stages: list[StageSpec]) -> list[StageResult]:
        for spec in stages:
            try:
                self.results[spec.name] = self._run_one(spec)
            except Exception as err:
                # A sweep's failure record names the stage (see failed_stage); the message is unchanged.
                if not hasattr(err, FAILED_STAGE):
                    setattr(err, FAILED_STAGE, spec.name)
                raise
        return [self.results[spec.name] for spec in stages]

    def output_path(self, stage: str, output: str) -> Path:
        blob = self.results[stage].outputs[output]
        path = self.store.verified(blob)
        if path is None:
            raise OptbuildError(f"cache object for {stage}/{output} vanished during the build; run again")
        return path

    def _run_one(self, spec: StageSpec) -> StageResult:
        self.observer.started(spec)
        digests = {name: self.results[s].outputs[o].sha256 for name, (s, o) in spec.inputs.items()}
        material = spec.material(digests)
        key = material.key()
        with self.store.lock(key):
            record = self.store.get_action(key)
            hit = record is not None
            if record is None:
                record = self._execute(spec, key)
            else:
                self.timeline.append({"stage": spec.name, "cache_hit": True, "measuring": measures(spec.name)})
        result = StageResult(spec.name, key, hit, record.seconds, digests, record.outputs, record.data,
                             material, dict(spec.inputs))
        self.observer.finished(result)
        return result

    def _execute(self, spec: StageSpec, key: str) -> ActionRecord:
        entry: dict[str, Any] = {"stage": spec.name, "cache_hit": False, "measuring": measures(spec.name),
                                 "pid": os.getpid(), "started": None, "ended": None, "ok": False}
        self.timeline.append(entry)
        with turn(spec.name):
            entry["started"] = round(time.time(), 3)
            try:
                record = self._run_stage(spec, key)
            finally:
                entry["ended"] = round(time.time(), 3)
        entry["ok"] = True
        self.store.put_action(record)
        log.info("stage %s ran in %.1fs (key %s)", spec.name, record.seconds, key)
        return record

    def _run_stage(self, spec: StageSpec, key: str) -> ActionRecord:
        started = time.perf_counter()
        with self.store.scratch() as scratch:
            in_dir, out_dir = Path(scratch, "in"), Path(scratch, "out")
            in_dir.mkdir()
            out_dir.mkdir()
            # Inputs keep their file names (an IR's .xml finds its .bin next to it).
            for name, (stage, output) in spec.inputs.items():
                os.symlink(self.output_path(stage, output), in_dir / name)
            paths = {name: str(in_dir / name) for name in spec.inputs}
            produced = run_isolated(spec.name, spec.fn, paths, spec.worker_params(), str(out_dir),
                                    log_path=self.log_path)
            outputs = {
                name: self.store.put_file(out_dir / name) for name in sorted(produced.get("files", []))
            }
        return ActionRecord(spec.name, key, outputs, produced.get("data", {}), round(time.perf_counter() - started, 3))
