"""`optbuild verify`: integrity, chain, provenance, toolchain notes and --rebuild."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import error_line, manifest_of

from optbuild.core.digest import sha256_file

FAST = ("benchmark.enabled=false",)


@pytest.fixture()
def built(cli, tmp_path: Path) -> Path:
    result = cli("recipe=tiny_int8", *FAST)
    assert result.returncode == 0, result.stderr
    return tmp_path / "outputs/tiny_int8/intel-int8/v1"


def test_a_fresh_artifact_verifies_and_rebuilds_byte_identically(cli, built: Path):
    result = cli("verify", str(built), "--rebuild")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✗" not in result.stdout
    assert "byte-identical outputs at every stage" in result.stdout
    assert "keys recompute" in result.stdout


def test_a_failed_version_verifies_says_it_failed_and_reproduces_its_failure(cli, tmp_path: Path):
    error_line(cli("recipe=tiny_int8", "validate.min_cosine=0.99999", *FAST))
    failed = tmp_path / "outputs/tiny_int8/intel-int8/v1"
    result = cli("verify", str(failed), "--rebuild")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED its gates and is not `latest`" in result.stdout and "validate.min_cosine" in result.stdout
    assert "byte-identical outputs at every stage" in result.stdout


def test_one_flipped_byte_is_named(cli, built: Path):
    data = bytearray((built / "model.bin").read_bytes())
    data[len(data) // 3] ^= 0x01
    (built / "model.bin").write_bytes(bytes(data))
    line = error_line(cli("verify", str(built)))
    assert "model.bin: changed" in line


def test_missing_and_extra_files_are_named(cli, built: Path):
    (built / "runtime.json").unlink()
    (built / "notes.txt").write_text("hello")
    result = cli("verify", str(built))
    assert result.returncode != 0
    assert "runtime.json: missing" in result.stdout
    assert "notes.txt: extra file" in result.stdout


def rebind(version: Path, manifest: dict) -> None:
    """Write `manifest` with a provenance statement that binds it, as a build would have."""
    from optbuild.publish.provenance import statement

    (version / "manifest.json").write_text(json.dumps(manifest))
    (version / "provenance.json").write_text(json.dumps(statement(manifest)))


def test_an_edited_config_slice_breaks_the_chain(cli, built: Path):
    manifest = manifest_of(built)
    quantize = next(s for s in manifest["stages"] if s["name"] == "quantize")
    quantize["external"]["calibration"]["num_samples"] = 999
    (built / "manifest.json").write_text(json.dumps(manifest))
    result = cli("verify", str(built))
    assert "claims were edited after the build" in error_line(result)
    rebind(built, manifest)  # even with a statement that binds the edit, the key does not recompute
    line = error_line(cli("verify", str(built)))
    assert "quantize: recorded key does not recompute" in line


def test_a_different_toolchain_is_reported_but_not_a_failure(cli, built: Path):
    manifest = manifest_of(built)
    manifest["toolchain"]["onnx"] = "0.0.1"
    rebind(built, manifest)
    result = cli("verify", str(built))
    assert result.returncode == 0, result.stderr
    assert "installed toolchain differs: onnx 0.0.1 ->" in result.stdout


def test_rebuild_names_the_first_stage_that_diverged(cli, built: Path, tiny_onnx: Path, tmp_path: Path):
    # Another file of the recorded name is given to the rebuild: its source stage read other data.
    import onnx

    (tmp_path / "elsewhere").mkdir()
    model = onnx.load(str(tiny_onnx))
    model.doc_string = "edited after the build"
    onnx.save(model, str(tmp_path / "elsewhere" / tiny_onnx.name))
    line = error_line(cli("verify", str(built), "--rebuild", "--data", str(tmp_path / "elsewhere")))
    assert "first diverged at stage 'source': it read different model than the build did" in line


def test_rebuild_without_the_recorded_files_says_where_to_look(cli, built: Path, tmp_path: Path):
    """The manifest names the model file without its directory; the rebuild finds it through the
    recipe (same sha256) or --data; a recipe that changed leaves only --data."""
    recipe = Path(cli.env["OPTBUILD_RECIPE_PATH"]) / "tiny_int8.yaml"
    recipe.write_text(recipe.read_text() + "# edited\n")
    line = error_line(cli("verify", str(built), "--rebuild"))
    assert "the rebuild needs model.path 'tiny.onnx'" in line and "--data DIR" in line


def test_provenance_is_an_in_toto_slsa_statement(built: Path, tiny_onnx: Path, recipe_dir: Path):
    statement = json.loads((built / "provenance.json").read_text())
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert subjects == {a["path"]: a["sha256"] for a in manifest_of(built)["artifacts"]}
    for name, digest in subjects.items():
        assert sha256_file(built / name) == digest
    definition = statement["predicate"]["buildDefinition"]
    assert definition["externalParameters"]["recipe"]["sha256"] == sha256_file(recipe_dir / "tiny_int8.yaml")
    deps = {d["name"]: d["digest"]["sha256"] for d in definition["resolvedDependencies"]}
    assert deps["recipe:tiny_int8"] == sha256_file(recipe_dir / "tiny_int8.yaml")
    assert deps["source:model"] == sha256_file(tiny_onnx)  # the ONNX file, by content
    assert set(deps) == {"recipe:tiny_int8", "source:model", "quantize:calibration", "validate:dataset"}


def test_verify_walks_an_outputs_tree(cli, built: Path, tmp_path: Path):
    assert cli("recipe=tiny", *FAST).returncode == 0
    result = cli("verify", str(tmp_path / "outputs"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tiny_int8/intel-int8/v1" in result.stdout and "tiny/intel-fp32/v1" in result.stdout


def test_verify_of_something_that_is_not_an_artifact(cli, tmp_path: Path):
    assert "does not exist" in error_line(cli("verify", str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    assert "no artifact" in error_line(cli("verify", str(tmp_path / "empty")))


def _engine_manifest(plan_digest: str, structure_hash: str, cosine: float, key: str = "structure_hash") -> dict:
    """The parts of an nvidia engine build's manifest that `--rebuild` compares."""
    return {
        "stages": [
            {"name": "precision", "outputs": [{"path": "model.onnx", "sha256": "a" * 64}]},
            {"name": "engine", "outputs": [{"path": "model.plan", "sha256": plan_digest},
                                           {"path": "model.onnx", "sha256": "a" * 64}],
             "unstable_outputs": ["model.plan", "engine.json", "timing.cache"]},
        ],
        "artifacts": [{"path": "model.plan", "sha256": plan_digest}, {"path": "model.onnx", "sha256": "a" * 64}],
        "engine": {key: structure_hash, "tactic_hash": plan_digest},
        "validation": {"cosine_mean": cosine},
    }


def test_engines_reproduce_by_structure_hash_and_tolerance_not_bytes_or_tactics():
    from optbuild.publish.compare import compare_stages

    recorded = _engine_manifest("1" * 64, "h" * 64, 0.9990)
    other_tactics = _engine_manifest("2" * 64, "h" * 64, 0.9992)  # other bytes and kernels, same structure
    [finding] = compare_stages(recorded, other_tactics)
    assert finding.ok and "structure hash" in finding.message
    [finding] = compare_stages(recorded, _engine_manifest("2" * 64, "x" * 64, 0.9990))
    assert not finding.ok and "stage 'engine': the engine's structure (layers, formats, precisions) differs" \
        in finding.message
    [finding] = compare_stages(recorded, _engine_manifest("2" * 64, "h" * 64, 0.95))
    assert not finding.ok and "beyond tolerance" in finding.message
    older = _engine_manifest("1" * 64, "h" * 64, 0.9990, key="layer_hash")  # a manifest from before the split
    assert compare_stages(older, _engine_manifest("2" * 64, "h" * 64, 0.9990, key="layer_hash"))[0].ok
