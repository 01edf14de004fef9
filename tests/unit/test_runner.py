"""The stage runner over a real store: cache keys, hits, reruns, isolation and errors.

The stage functions live in tests/stage_fns.py because each one runs in a freshly spawned
interpreter (optbuild/pipeline/isolate.py), which unpickles the function by module and name:
the spawned child receives the parent's sys.path, with tests/ on it, and imports `stage_fns`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import stage_fns  # tests/ is on sys.path (pyproject: pytest pythonpath)

from optbuild.errors import OptbuildError
from optbuild.pipeline.runner import Runner
from optbuild.pipeline.stage import Dependency, KeyMaterial, Output, StageResult, StageSpec
from optbuild.publish.manifest import stage_entry
from optbuild.publish.verify import check_chain
from optbuild.store import Store


class Recorder:
    """A trivial observer: remembers every call in order."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def started(self, spec: StageSpec) -> None:
        self.calls.append(("started", spec.name))

    def finished(self, result: StageResult) -> None:
        self.calls.append(("finished", result.name, result.cache_hit))


def executions(log: Path) -> list[str]:
    """Stage names that really ran (each stage function appends to the log)."""
    return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []


def logged(log: Path) -> dict[str, Dependency]:
    """The execution log as a dependency with a location only: never part of a key."""
    return {"log": Dependency(None, str(log))}


def pipeline(log: Path, text: str = "hello", suffix: str = "!", **produce_extra) -> list[StageSpec]:
    produce = StageSpec(
        "produce", 1, stage_fns.produce,
        params={"text": text, **produce_extra},
        deps=logged(log),
    )
    transform = StageSpec(
        "transform", 1, stage_fns.transform,
        inputs={"a.txt": Output("produce", "a.txt")},
        params={"suffix": suffix},
        deps=logged(log),
    )
    return [produce, transform]


def run(store_root: Path, stages: list[StageSpec]) -> tuple[Runner, Recorder, list[StageResult]]:
    observer = Recorder()
    runner = Runner(Store(store_root), observer)
    return runner, observer, runner.run(stages)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "executions.log"


@pytest.fixture
def first(cache: Path, log: Path) -> tuple[Runner, Recorder, list[StageResult]]:
    """A first, cold run of the two-stage pipeline."""
    return run(cache, pipeline(log))


def test_first_run_executes_and_stores(first, log: Path) -> None:
    runner, observer, (a, b) = first
    assert (a.name, a.cache_hit) == ("produce", False)
    assert (b.name, b.cache_hit) == ("transform", False)
    assert executions(log) == ["produce", "transform"]
    assert observer.calls == [
        ("started", "produce"), ("finished", "produce", False),
        ("started", "transform"), ("finished", "transform", False),
    ]
    assert runner.output_path("produce", "a.txt").read_text() == "hello"
    assert runner.output_path("transform", "b.txt").read_text() == "HELLO!"
    assert a.data == {"length": 5}
    assert b.data == {"input": "hello"}  # stage 2 read stage 1's output through its input link
    assert b.inputs == {"a.txt": a.outputs["a.txt"].sha256}
    assert set(a.outputs) == {"a.txt"} and set(b.outputs) == {"b.txt"}
    # Outputs are blobs in the store, and each result is recorded under its key.
    for result in (a, b):
        record = runner.store.get_action(result.key)
        assert record is not None
        assert record.outputs == result.outputs and record.data == result.data
    assert runner.results == {"produce": a, "transform": b}
    # The scratch directories are gone.
    assert list((runner.store.root / "tmp").iterdir()) == []


def test_second_run_hits_both(first, cache: Path, log: Path) -> None:
    _, _, cold = first
    runner, observer, warm = run(cache, pipeline(log))
    assert [r.cache_hit for r in warm] == [True, True]
    assert executions(log) == ["produce", "transform"]  # nothing ran again
    assert observer.calls == [
        ("started", "produce"), ("finished", "produce", True),
        ("started", "transform"), ("finished", "transform", True),
    ]
    for c, w in zip(cold, warm):
        assert (w.key, w.outputs, w.data, w.inputs, w.seconds) == (c.key, c.outputs, c.data, c.inputs, c.seconds)
    assert runner.output_path("transform", "b.txt").read_text() == "HELLO!"


def test_timeline_says_when_each_stage_ran_and_which_measured(first, cache: Path, log: Path) -> None:
    runner, _, _ = first
    ran = runner.timeline
    assert [(e["stage"], e["cache_hit"], e["measuring"], e["ok"]) for e in ran] == [
        ("produce", False, False, True), ("transform", False, False, True)]
    assert ran[0]["started"] <= ran[0]["ended"] <= ran[1]["started"] <= ran[1]["ended"]
    # A stage named like a measuring one takes the measuring turn, in the same process as the build
    # stages before it (no self-deadlock); cache hits take no turn and have no times.
    timed = StageSpec("benchmark", 1, stage_fns.transform, inputs={"a.txt": Output("produce", "a.txt")},
                      params={"suffix": "?"}, deps=logged(log))
    warm: list[dict] = []
    Runner(Store(cache), Recorder(), timeline=warm).run([*pipeline(log), timed])
    assert [(e["stage"], e["cache_hit"], e["measuring"]) for e in warm] == [
        ("produce", True, False), ("transform", True, False), ("benchmark", False, True)]
    assert "started" not in warm[0] and warm[2]["started"] <= warm[2]["ended"]


def test_stage2_param_change_reruns_only_stage2(first, cache: Path, log: Path) -> None:
    _, _, (a0, b0) = first
    runner, _, (a, b) = run(cache, pipeline(log, suffix="?"))
    assert (a.cache_hit, b.cache_hit) == (True, False)
    assert a.key == a0.key and b.key != b0.key
    assert executions(log) == ["produce", "transform", "transform"]
    assert runner.output_path("transform", "b.txt").read_text() == "HELLO?"
    # The old result is still recorded: switching back is a hit.
    _, _, back = run(cache, pipeline(log))
    assert [r.cache_hit for r in back] == [True, True]


def test_changed_input_digest_propagates(first, cache: Path, log: Path) -> None:
    _, _, (a0, b0) = first
    runner, _, (a, b) = run(cache, pipeline(log, text="world"))
    assert (a.cache_hit, b.cache_hit) == (False, False)
    assert a.outputs["a.txt"].sha256 != a0.outputs["a.txt"].sha256
    assert b.inputs == {"a.txt": a.outputs["a.txt"].sha256} != b0.inputs
    assert b.key != b0.key  # stage 2's own params did not change: the input digest did
    assert runner.output_path("transform", "b.txt").read_text() == "WORLD!"


def test_upstream_rerun_with_identical_output_keeps_downstream_hit(first, cache: Path, log: Path) -> None:
    # Stage 1's key changes (an extra param) but it writes the same bytes: stage 2's key is
    # built from input *digests*, so it still hits.
    _, _, (a0, b0) = first
    _, _, (a, b) = run(cache, pipeline(log, unused="x"))
    assert (a.cache_hit, b.cache_hit) == (False, True)
    assert a.key != a0.key and a.outputs == a0.outputs
    assert b.key == b0.key
    assert executions(log) == ["produce", "transform", "produce"]


def test_corrupt_output_blob_reruns_stage(first, cache: Path, log: Path) -> None:
    runner0, _, (a0, b0) = first
    blob_path = runner0.store.blob_path(b0.outputs["b.txt"].sha256)
    blob_path.write_text("HELLO?")  # same size, wrong bytes
    runner, _, (a, b) = run(cache, pipeline(log))
    assert (a.cache_hit, b.cache_hit) == (True, False)
    assert b.key == b0.key and b.outputs == b0.outputs
    assert executions(log) == ["produce", "transform", "transform"]
    assert blob_path.read_text() == "HELLO!"  # repaired
    assert runner.output_path("transform", "b.txt").read_text() == "HELLO!"


def test_missing_upstream_blob_reruns_upstream_only(first, cache: Path, log: Path) -> None:
    runner0, _, (a0, _) = first
    runner0.store.blob_path(a0.outputs["a.txt"].sha256).unlink()
    _, _, (a, b) = run(cache, pipeline(log))
    assert (a.cache_hit, b.cache_hit) == (False, True)
    assert a.outputs == a0.outputs
    assert executions(log) == ["produce", "transform", "produce"]


def test_stage_error_reaches_caller(cache: Path, log: Path) -> None:
    message = "no calibration images under /data/cal: set dataset.path=..."
    spec = StageSpec("boom", 1, stage_fns.fail, params={"message": message}, deps=logged(log))
    observer = Recorder()
    runner = Runner(Store(cache), observer)
    with pytest.raises(OptbuildError) as info:
        runner.run([spec])
    assert info.value.message == message
    assert str(info.value) == message
    assert executions(log) == ["fail"]  # it did run, in the child
    assert observer.calls == [("started", "boom")]
    assert runner.store.get_action(spec.material({}).key()) is None  # nothing recorded
    assert "boom" not in runner.results
    # The lock was released and nothing was cached: running again runs (and fails) again.
    with pytest.raises(OptbuildError, match="no calibration images"):
        Runner(Store(cache), Recorder()).run([spec])
    assert executions(log) == ["fail", "fail"]


def test_error_stops_pipeline(cache: Path, log: Path) -> None:
    produce, transform = pipeline(log)
    failing = dataclasses.replace(produce, fn=stage_fns.fail, params={"message": "bad"})
    observer = Recorder()
    with pytest.raises(OptbuildError, match="bad"):
        Runner(Store(cache), observer).run([failing, transform])
    assert observer.calls == [("started", "produce")]
    assert executions(log) == ["fail"]


# -- keys ------------------------------------------------------------------------------------


def key(spec: StageSpec, inputs: dict[str, str] | None = None) -> str:
    return spec.material(inputs or {}).key()


def test_key_ignores_locations_but_not_fingerprints(tmp_path: Path) -> None:
    base = StageSpec("load", 1, stage_fns.produce, params={"text": "t"},
                     deps={"weights": Dependency("aa" * 32, "/models/a.pt")})
    moved = dataclasses.replace(base, deps={"weights": Dependency("aa" * 32, "/elsewhere/copy-of-a.pt")})
    assert key(moved) == key(base)
    changed = dataclasses.replace(base, deps={"weights": Dependency("bb" * 32, "/models/a.pt")})
    assert key(changed) != key(base)
    # Everything else that defines the result is in the key too.
    assert key(dataclasses.replace(base, version=2)) != key(base)
    assert key(dataclasses.replace(base, name="other")) != key(base)
    assert key(dataclasses.replace(base, params={"text": "u"})) != key(base)
    assert key(base, {"x": "1" * 64}) != key(base, {"x": "2" * 64})
    assert key(base, {"x": "1" * 64}) != key(base, {"y": "1" * 64})
    # Keys are deterministic and independent of dict order.
    reordered = dataclasses.replace(base, params={"b": 1, "a": 2})
    assert key(reordered) == key(dataclasses.replace(base, params={"a": 2, "b": 1}))


def test_a_name_cannot_be_both_param_and_dependency() -> None:
    with pytest.raises(ValueError, match="both a param and a dependency"):
        StageSpec("load", 1, stage_fns.produce, params={"log": 1}, deps={"log": Dependency(None, "/x")})


def test_worker_sees_locations_and_params() -> None:
    spec = StageSpec("load", 1, stage_fns.produce, params={"text": "t"},
                     deps={"weights": Dependency("aa" * 32, "/models/a.pt"), "gpu": Dependency({"name": "x"})})
    assert spec.worker_params() == {"text": "t", "weights": "/models/a.pt"}  # no location: nothing to pass
    assert spec.material({}).external == {"weights": "aa" * 32, "gpu": {"name": "x"}}


def test_runner_locations_change_hits_fingerprint_change_misses(cache: Path, tmp_path: Path) -> None:
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    spec = StageSpec("produce", 1, stage_fns.produce, params={"text": "x"},
                     deps={"log": Dependency("11" * 32, str(log_a))})
    (r1,) = run(cache, [spec])[2]
    assert not r1.cache_hit and executions(log_a) == ["produce"]

    # Same file contents at another place: a hit, the function does not run.
    (r2,) = run(cache, [dataclasses.replace(spec, deps={"log": Dependency("11" * 32, str(log_b))})])[2]
    assert r2.cache_hit and r2.key == r1.key
    assert executions(log_b) == []

    # Different contents: a miss, the function runs (and sees the new location).
    (r3,) = run(cache, [dataclasses.replace(spec, deps={"log": Dependency("22" * 32, str(log_b))})])[2]
    assert not r3.cache_hit and r3.key != r1.key
    assert executions(log_b) == ["produce"]


def test_rerun_over_same_size_corrupt_blob(first, cache: Path, log: Path) -> None:
    runner0, _, (a0, _) = first
    runner0.store.blob_path(a0.outputs["a.txt"].sha256).write_text("HELLO")  # same size, wrong bytes
    # Both keys change (stage 1 gains an unused param, stage 2 a new suffix); stage 1 writes the
    # same bytes as before, so its output lands on the corrupt blob's name.
    runner, _, (a, b) = run(cache, pipeline(log, suffix="?", unused="x"))
    assert (a.cache_hit, b.cache_hit) == (False, False)
    assert runner.output_path("transform", "b.txt").read_text() == "HELLO?"


# -- one key type ----------------------------------------------------------------------------


def test_runner_manifest_and_verify_compute_the_same_keys(first) -> None:
    """The runner keys a stage, the manifest records its material, verify recomputes the key
    from that record: all three go through KeyMaterial, so they agree, field for field."""
    runner, _, results = first
    entries = [stage_entry(result) for result in results]
    for result, entry in zip(results, entries):
        assert KeyMaterial.from_record(entry) == result.material
        assert KeyMaterial.from_record(json.loads(json.dumps(entry))).key() == entry["key"] == result.key
    manifest = {"stages": entries,
                "artifacts": [{"path": "b.txt", "sha256": results[1].outputs["b.txt"].sha256}]}
    assert all(finding.ok for finding in check_chain(manifest))
    # Every field of the material is recorded: a field added to the key but not to the record
    # would make verify's recomputation differ.
    recorded = set(KeyMaterial.RECORDED) | {"stage", "inputs"}
    assert recorded == {f.name for f in dataclasses.fields(KeyMaterial)}
    entries[1]["params"]["suffix"] = "?"  # an edited record no longer recomputes to its key
    assert [f.message for f in check_chain(manifest) if not f.ok] == [
        "transform: recorded key does not recompute from its inputs, config slice and toolchain"]
