"""Hostile manifests and artifacts: a manifest is data, a version's manifest is the truth.

Each case asserts the exit code, one `optbuild: error:` line and no traceback; the cases that
would run code assert that the payload did not run. The recipe and command-line cases are in
tests/unit/test_hostile_inputs.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import error_line, manifest_of

from optbuild.publish.provenance import statement

FAST = ("benchmark.enabled=false",)
MARKER = "pwned"


@pytest.fixture()
def built(cli, tmp_path: Path) -> Path:
    result = cli("recipe=tiny_int8", *FAST)
    assert result.returncode == 0, result.stderr
    return tmp_path / "outputs/tiny_int8/intel-int8/v1"


def rebind(version: Path, manifest: dict) -> None:
    """A forger's consistent rewrite: the manifest, and a statement that binds it."""
    (version / "manifest.json").write_text(json.dumps(manifest))
    (version / "provenance.json").write_text(json.dumps(statement(manifest)))


CLAIMS = [
    ("status", lambda m: m.update(status="failed", failure="validation gate failed")),
    ("a validation number", lambda m: m["validation"].update(cosine_mean=1.0)),
    ("a gate", lambda m: m.update(gates=[{"rule": "validate.min_cosine", "passed": True}])),
    ("the config", lambda m: m["config"]["calibration"].update(num_samples=1)),
    ("the benchmark", lambda m: m.update(benchmark={"artifact": {"median_ms": 0.01}})),
    ("the recipe digest", lambda m: m["recipe"].update(sha256="0" * 64)),
]


@pytest.mark.parametrize("edit", [c[1] for c in CLAIMS], ids=[c[0] for c in CLAIMS])
def test_an_edited_claim_fails_verify(cli, built: Path, edit) -> None:
    manifest = manifest_of(built)
    edit(manifest)
    (built / "manifest.json").write_text(json.dumps(manifest))
    assert "claims were edited after the build" in error_line(cli("verify", str(built)))


def test_rebuild_replays_the_config_never_the_recorded_command_line(cli, built: Path, tmp_path: Path) -> None:
    """A crafted manifest whose overrides would run code: verify --rebuild ignores them."""
    manifest = manifest_of(built)
    manifest["overrides"] += [f"+hydra.job.env_set.PYTHONSTARTUP={tmp_path / 'payload.py'}",
                              "+hydra.callbacks.x._target_=builtins.exec"]
    (tmp_path / "payload.py").write_text(f"open({str(tmp_path / MARKER)!r}, 'w')\n")
    rebind(built, manifest)
    result = cli("verify", str(built), "--rebuild")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "byte-identical outputs at every stage" in result.stdout
    assert not (tmp_path / MARKER).exists()


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda m: m["config"]["model"].update(name="${oc.env:HOME}"), "calls the resolver 'oc.env'"),
    (lambda m: m["config"]["model"].update(_target_="os.system"), "is an instantiation key"),
    (lambda m: m["config"].update(hydra={"callbacks": {}}), "unknown config key 'hydra'"),
    (lambda m: m["config"]["benchmark"].update(throughput_seconds=1e9), "must be between 0 and 600"),
    (lambda m: m.update(config="not a config"), "records no config"),
], ids=["resolver", "instantiation", "hydra", "unbounded", "no config"])
def test_rebuild_validates_the_recorded_config_like_any_build(cli, built: Path, edit, expected: str) -> None:
    manifest = manifest_of(built)
    edit(manifest)
    rebind(built, manifest)
    assert expected in error_line(cli("verify", str(built), "--rebuild"))


def test_a_path_outside_the_version_is_never_read(cli, built: Path) -> None:
    manifest = manifest_of(built)
    manifest["artifacts"].append({"path": "../../../../../../etc/hostname", "sha256": "0" * 64, "bytes": 1})
    rebind(built, manifest)
    result = cli("verify", str(built))
    assert "'../../../../../../etc/hostname': a path outside the version directory" in result.stdout
    assert error_line(result)


def test_latest_must_point_at_an_existing_passing_version(cli, built: Path, tmp_path: Path) -> None:
    root = built.parent
    os.replace(root / "latest", root / "old")
    os.symlink("v9", root / "latest")
    assert "latest points at v9, which is not a version here" in error_line(cli("verify", str(tmp_path / "outputs")))
    assert cli("recipe=tiny_int8", "validate.min_cosine=0.99999", *FAST).returncode == 1  # v2 failed
    os.remove(root / "latest")
    os.symlink("v2", root / "latest")
    assert "points at v2, which failed its gates" in error_line(cli("verify", str(tmp_path / "outputs")))


def test_a_garbage_manifest_is_reported_and_the_walk_goes_on(cli, built: Path, tmp_path: Path) -> None:
    assert cli("recipe=tiny", *FAST).returncode == 0
    (built / "manifest.json").write_text("{not json")
    result = cli("verify", str(tmp_path / "outputs"))
    line = error_line(result)
    assert "manifest.json is unreadable or not JSON" in line
    assert "tiny/intel-fp32/v1" in result.stdout and "keys recompute" in result.stdout  # the other one


def test_manifests_carry_no_absolute_paths_and_no_environment(cli, tmp_path: Path, tiny_onnx: Path) -> None:
    out = tmp_path / "outputs"
    result = cli("recipe=tiny_int8", f"out_dir={out}", f"model.path={tiny_onnx}", *FAST,
                 env={"OPTBUILD_SECRET": "s3cr3t-value"})
    assert result.returncode == 0, result.stderr
    version = out / "tiny_int8/intel-int8/v1"
    for name in ("manifest.json", "provenance.json"):
        text = (version / name).read_text()
        assert str(tmp_path) not in text and str(tiny_onnx.parent) not in text and "s3cr3t" not in text
    manifest = manifest_of(version)
    assert manifest["config"]["model"]["path"] == "tiny.onnx" and manifest["config"]["out_dir"] == "outputs"
    assert "model.path=tiny.onnx" in manifest["overrides"]
    assert manifest["recipe"]["path"] == "tiny_int8.yaml"


def test_a_corrupt_version_is_not_reused(cli, built: Path, caplog) -> None:
    data = bytearray((built / "model.bin").read_bytes())
    data[100] ^= 0xFF
    (built / "model.bin").write_bytes(bytes(data))
    result = cli("recipe=tiny_int8", *FAST)
    assert result.returncode == 0, result.stderr
    assert "is damaged (model.bin changed): publishing a new version" in result.stderr
    assert (built.parent / "latest").resolve().name == "v2"
    assert cli("verify", str(built.parent / "v2")).returncode == 0


def test_new_evidence_on_the_same_files_is_a_new_version(cli, built: Path) -> None:
    """Another validation set, the same artifact: the new numbers are published, not hidden
    behind the old manifest."""
    result = cli("recipe=tiny_int8", "validate.seed=7", *FAST)
    assert result.returncode == 0, result.stderr
    second = manifest_of(built.parent / "v2")
    assert [a["sha256"] for a in second["artifacts"]] == [a["sha256"] for a in manifest_of(built)["artifacts"]]
    assert second["validation_dataset"]["seed"] == 7 and manifest_of(built)["validation_dataset"]["seed"] == 1


def test_a_reader_that_closes_the_pipe_is_not_an_error(cli, built: Path) -> None:
    """`optbuild inspect ... | head -1`: the rest of the output has nowhere to go; that is fine."""
    import subprocess
    import sys

    for verb in (["inspect", str(built)], ["passes"]):
        shell = subprocess.run(f"{sys.executable} -m optbuild.cli {' '.join(verb)} | head -1", shell=True,
                               cwd=cli.cwd, env=cli.env, capture_output=True, text=True)
        assert shell.stdout.strip() and "error" not in shell.stderr.lower(), shell.stderr
        assert "Traceback" not in shell.stderr and "Exception ignored" not in shell.stderr


def test_a_model_without_nodes_is_one_line_with_its_cause(cli, tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    empty = tmp_path / "empty.onnx"
    graph = helper.make_graph([], "empty", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(empty))
    line = error_line(cli("recipe=tiny", f"model.path={empty}", "model.output_names=[input]", *FAST))
    assert "Exception from" not in line and len(line) < 400
    assert not (tmp_path / "outputs/tiny").exists()
