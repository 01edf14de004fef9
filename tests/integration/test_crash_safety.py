"""Killed, interrupted and concurrent builds never leave a wrong artifact or cache entry."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import manifest_of

from optbuild.core.digest import sha256_file
from optbuild.store import Store

FAST = ("benchmark.enabled=false", "validate.num_samples=4", "progress=false")


def _interruptible() -> None:
    """A test runner's worker may ignore SIGINT (pytest-xdist does), and a child inherits that:
    give the build the default disposition, as a shell in a terminal would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(cli, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "optbuild.cli", "recipe=tiny_int8", *FAST, *args],
                            cwd=cli.cwd, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_interruptible)


def assert_consistent(out: Path) -> None:
    """Every readable cache record has intact outputs; every version is complete and correct."""
    cache = out / ".cache"
    if (cache / "actions").is_dir():
        store = Store(cache)
        for record in (cache / "actions").glob("*.json"):
            raw = json.loads(record.read_text())  # never half-written: written then renamed
            action = store.get_action(raw["key"])
            assert action is None or all(store.verified(b) for b in action.outputs.values())
    root = out / "tiny_int8/intel-int8"
    if not root.exists():
        return
    versions = [p for p in root.iterdir() if p.name.startswith("v")]
    for version in versions:
        manifest = manifest_of(version)  # a version directory always has its manifest
        for artifact in manifest["artifacts"]:
            assert sha256_file(version / artifact["path"]) == artifact["sha256"]
    if (root / "latest").is_symlink():
        assert (root / "latest").resolve().is_dir()


def test_sigkill_at_random_moments_leaves_everything_consistent(cli, tmp_path: Path):
    rng = random.Random(7)
    out = tmp_path / "outputs"
    for attempt in range(22):
        # Different calibration seeds make new artifacts, so packaging gets killed too.
        process = start(cli, f"calibration.seed={attempt % 3}")
        time.sleep(rng.uniform(0.05, 7.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert_consistent(out)
    for seed in range(3):
        result = subprocess.run([sys.executable, "-m", "optbuild.cli", "recipe=tiny_int8", *FAST,
                                 f"calibration.seed={seed}"], cwd=cli.cwd, env=cli.env,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    assert_consistent(out)
    verify = cli("verify", str(out))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    root = out / "tiny_int8/intel-int8"
    assert not list(root.glob(".v*"))  # staging leftovers removed
    # One version per distinct build, whenever the kills came: none published twice.
    builds = {json.dumps(manifest_of(v)["artifacts"], sort_keys=True) for v in root.glob("v*")}
    assert len(builds) == len(list(root.glob("v*"))) == 3
    assert not [p for p in (out / ".cache/tmp").iterdir() if not p.name.startswith(".")]  # no stale scratch


def test_identical_builds_started_together_do_the_work_once(cli, tmp_path: Path):
    processes = [start(cli) for _ in range(3)]
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
    root = tmp_path / "outputs/tiny_int8/intel-int8"
    assert sorted(p.name for p in root.glob("v*")) == ["v1"]
    # Each stage ran in exactly one of the builds; the others waited and took its result.
    logs = [p.read_text() for p in (tmp_path / "outputs/.runs").glob("*/optbuild.log")]
    assert len(logs) == 3
    for stage in manifest_of(root / "v1")["stages"]:
        assert sum(log.count(f"stage {stage['name']} ran in") for log in logs) == 1, stage["name"]


def test_ctrl_c_stops_with_one_line(cli, tmp_path: Path):
    process = start(cli)
    time.sleep(3.0)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert [line for line in stderr.splitlines() if line.startswith("optbuild: error:")] == [
        "optbuild: error: interrupted; finished stages stay cached, the next run resumes from them"]
    assert not (tmp_path / "outputs/tiny_int8").exists()
