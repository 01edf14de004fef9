"""The stage runner: computes each stage's cache key, reuses a recorded result or runs the
stage (in a fresh process) and stores its outputs by content."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from optbuild.digest import sha256_json
from optbuild.errors import OptbuildError
from optbuild.isolate import run_isolated
from optbuild.store import ActionRecord, Blob, Store
from optbuild.toolchain import platform_info, versions

log = logging.getLogger("optbuild.runner")
FAILED_STAGE = "optbuild_failed_stage"


def failed_stage(err: BaseException) -> str | None:
    """The stage during which `err` was raised by Runner.run, if it was."""
    return getattr(err, FAILED_STAGE, None)


@dataclass(frozen=True)
class StageSpec:
    """A stage declared as data: what it reads, which config slice and tools shape its result."""

    name: str
    version: int  # bump when the implementation changes its outputs
    fn: Callable[[dict[str, str], dict[str, Any], str], dict[str, Any]]
    inputs: dict[str, tuple[str, str]] = field(default_factory=dict)  # file name -> (stage, output)
    params: dict[str, Any] = field(default_factory=dict)  # config slice: part of the key
    external: dict[str, Any] = field(default_factory=dict)  # digests of files read from outside
    locations: dict[str, Any] = field(default_factory=dict)  # where those files are: not in the key
    tools: tuple[str, ...] = ()
    platform: bool = False  # results depend on the machine (numbers, timings)

    def key_material(self, input_digests: dict[str, str]) -> dict[str, Any]:
        """Everything the stage's result depends on; recorded in the manifest so that anyone
        can recompute the key (`optbuild verify`)."""
        return {
            "stage": self.name,
            "version": self.version,
            "inputs": input_digests,
            "params": self.params,
            "external": self.external,
            "tools": versions(self.tools),
            "platform": platform_info() if self.platform else None,
        }

    def key(self, input_digests: dict[str, str]) -> str:
        return sha256_json(self.key_material(input_digests))


@dataclass
class StageResult:
    name: str
    key: str
    cache_hit: bool
    seconds: float
    inputs: dict[str, str]
    outputs: dict[str, Blob]
    data: dict[str, Any]
    material: dict[str, Any]
    sources: dict[str, str]  # input file name -> "stage/output" it came from


class Observer(Protocol):
    def started(self, stage: str) -> None: ...
    def finished(self, result: StageResult) -> None: ...


class Runner:
    def __init__(self, store: Store, observer: Observer, log_path: str | None = None) -> None:
        self.store = store
        self.observer = observer
        self.log_path = log_path
        self.results: dict[str, StageResult] = {}

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
        self.observer.started(spec.name)
        digests = {name: self.results[s].outputs[o].sha256 for name, (s, o) in spec.inputs.items()}
        material = spec.key_material(digests)
        key = sha256_json(material)  # == spec.key(digests), keeping the material for the manifest
        with self.store.lock(key):
            record = self.store.get_action(key)
            hit = record is not None
            if record is None:
                record = self._execute(spec, key)
        sources = {name: f"{s}/{o}" for name, (s, o) in spec.inputs.items()}
        result = StageResult(spec.name, key, hit, record.seconds, digests, record.outputs, record.data,
                             material, sources)
        self.observer.finished(result)
        return result

    def _execute(self, spec: StageSpec, key: str) -> ActionRecord:
        started = time.perf_counter()
        with self.store.scratch() as scratch:
            in_dir, out_dir = Path(scratch, "in"), Path(scratch, "out")
            in_dir.mkdir()
            out_dir.mkdir()
            # Inputs keep their file names (an IR's .xml finds its .bin next to it).
            for name, (stage, output) in spec.inputs.items():
                os.symlink(self.output_path(stage, output), in_dir / name)
            paths = {name: str(in_dir / name) for name in spec.inputs}
            params = {**spec.params, **spec.locations}
            produced = run_isolated(spec.name, spec.fn, paths, params, str(out_dir), log_path=self.log_path)
            outputs = {
                name: self.store.put_file(out_dir / name) for name in sorted(produced.get("files", []))
            }
        record = ActionRecord(spec.name, key, outputs, produced.get("data", {}),
                              round(time.perf_counter() - started, 3))
        self.store.put_action(record)
        log.info("stage %s ran in %.1fs (key %s)", spec.name, record.seconds, key)
        return record
