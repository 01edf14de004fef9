"""End-to-end builds of a tiny real CNN: layout, manifest, cache, versions, gates, sweeps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import HEAVY, error_line, manifest_of

from optbuild.core.digest import sha256_file

FAST = ("benchmark.enabled=false",)
IMPOSSIBLE = "validate.min_cosine=0.99999"  # INT8 of the tiny model stays below it


def stages_by_name(manifest: dict) -> dict[str, dict]:
    return {stage["name"]: stage for stage in manifest["stages"]}


def test_fp32_build_layout_and_manifest(cli, tmp_path: Path, recipe_dir: Path):
    result = cli("recipe=tiny")
    assert result.returncode == 0, result.stderr
    root = tmp_path / "outputs/tiny/intel-fp32"
    assert (root / "latest").resolve() == (root / "v1").resolve()
    version = root / "v1"
    manifest = manifest_of(version)
    assert manifest["schema"] == "optbuild.manifest/v1"
    assert manifest["recipe"]["name"] == "tiny"
    assert manifest["recipe"]["sha256"] == sha256_file(recipe_dir / "tiny.yaml")
    assert (manifest["target"], manifest["precision"]) == ("intel", "fp32")
    assert [s["name"] for s in manifest["stages"]] == [
        "source", "surgery", "quantize", "build", "validate", "benchmark"]
    # Every recorded digest matches its file, and every file of the version is recorded.
    recorded = {a["path"]: a for a in manifest["artifacts"]}
    assert set(recorded) == {"model.xml", "model.bin", "runtime.json"}
    assert {p.name for p in version.iterdir()} == set(recorded) | {"manifest.json", "provenance.json"}
    for name, entry in recorded.items():
        assert sha256_file(version / name) == entry["sha256"]
        assert (version / name).stat().st_size == entry["bytes"]
    # FP32 means f32 compute: the hint travels with the artifact and the manifest.
    runtime = json.loads((version / "runtime.json").read_text())
    assert runtime["properties"]["INFERENCE_PRECISION_HINT"] == "f32"
    assert manifest["resolved_inference_precision"] == "f32"
    assert manifest["validation"]["top1_agreement"] >= 0.99
    assert manifest["validation"]["cosine_mean"] > 0.9999
    assert manifest["benchmark"]["artifact"]["median_ms"] > 0
    assert manifest["benchmark"]["speedup_median"] > 0
    assert manifest["toolchain"]["openvino"] and manifest["platform"]["cpu"]
    assert manifest["surgery"][0]["pass"] == "fold_constants"
    assert manifest["surgery"][0]["verified"] is True


def test_rebuild_is_all_cache_hits_same_version_and_imports_no_toolkit(cli, tmp_path: Path):
    assert cli("recipe=tiny", *FAST).returncode == 0
    # Run in-process to see which modules a fully cached build imports.
    probe = (
        "import sys; from optbuild.cli import main; rc = main(['recipe=tiny', 'benchmark.enabled=false',"
        " 'progress=false']); print('HEAVY', [m for m in %r if m in sys.modules]); sys.exit(rc)" % (HEAVY,)
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=cli.env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    root = tmp_path / "outputs/tiny/intel-fp32"
    assert sorted(p.name for p in root.iterdir() if p.name.startswith("v")) == ["v1"]
    assert "reused" in result.stderr


def test_changed_calibration_reruns_only_what_depends_on_it(cli, tmp_path: Path):
    assert cli("recipe=tiny_int8", *FAST).returncode == 0
    assert cli("recipe=tiny_int8", "calibration.num_samples=12", *FAST).returncode == 0
    root = tmp_path / "outputs/tiny_int8/intel-int8"
    manifest = manifest_of(root / "v2")
    hits = {name: stage["cache_hit"] for name, stage in stages_by_name(manifest).items()}
    assert hits == {"source": True, "surgery": True, "quantize": False, "build": False, "validate": False}
    assert manifest["quantization"]["quantized"] is True
    assert manifest["quantization"]["calibration_samples"] == 12
    assert manifest["quantization"]["fake_quantize_ops"] > 0
    assert (root / "latest").resolve().name == "v2"


def test_failed_gate_is_kept_as_a_failed_version_and_never_becomes_latest(cli, tmp_path: Path):
    root = tmp_path / "outputs/tiny_int8/intel-int8"
    assert cli("recipe=tiny_int8", *FAST).returncode == 0
    line = error_line(cli("recipe=tiny_int8", IMPOSSIBLE, *FAST))
    assert "validate.min_cosine 0.99999" in line and "not promoted to latest" in line and "v2/manifest.json" in line
    failed = manifest_of(root / "v2")
    assert failed["status"] == "failed" and "validate.min_cosine" in failed["failure"]
    assert [g["rule"] for g in failed["gates"] if not g["passed"]] == ["validate.min_cosine"]
    assert (root / "latest").resolve().name == "v1"
    assert manifest_of(root / "v1")["status"] == "passed"
    # Failing the same way again reuses the failed version; passing again reuses v1.
    assert "v2/manifest.json" in error_line(cli("recipe=tiny_int8", IMPOSSIBLE, *FAST))
    assert cli("recipe=tiny_int8", *FAST).returncode == 0
    assert (root / "latest").resolve().name == "v1"
    assert sorted(p.name for p in root.iterdir() if p.name.startswith("v")) == ["v1", "v2"]


def test_labeled_gate_on_unlabeled_data_fails_before_any_work(cli, tmp_path: Path):
    line = error_line(cli("recipe=tiny", "validate.max_top1_drop=0.01", *FAST))
    assert "validate.max_top1_drop needs labels" in line and "sample_photos" in line
    assert not (tmp_path / "outputs/tiny").exists()


def test_int8_builds_are_byte_identical_across_fresh_caches(cli, tmp_path: Path):
    digests = []
    for run in ("a", "b"):
        result = cli("recipe=tiny_int8", f"out_dir={tmp_path / run}", *FAST)
        assert result.returncode == 0, result.stderr
        version = tmp_path / run / "tiny_int8/intel-int8/v1"
        digests.append({name: sha256_file(version / name) for name in ("model.xml", "model.bin")})
    assert digests[0] == digests[1]


def test_corrupted_cache_object_is_detected_and_rebuilt(cli, tmp_path: Path):
    assert cli("recipe=tiny", *FAST).returncode == 0
    manifest = manifest_of(tmp_path / "outputs/tiny/intel-fp32/v1")
    digest = stages_by_name(manifest)["surgery"]["outputs"][0]["sha256"]
    blob = tmp_path / "outputs/.cache/cas/sha256" / digest[:2] / digest
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    result = cli("recipe=tiny", *FAST)
    assert result.returncode == 0, result.stderr
    assert sha256_file(blob) == digest  # rebuilt with the right bytes
    # The artifact did not change, so the version is reused.
    assert not (tmp_path / "outputs/tiny/intel-fp32/v2").exists()


def test_multirun_sweep_over_precisions(cli, tmp_path: Path):
    result = cli("-m", "recipe=tiny", "precision=fp32,fp16,int8", *FAST)
    assert result.returncode == 0, result.stderr
    for precision in ("fp32", "fp16", "int8"):
        manifest = manifest_of(tmp_path / f"outputs/tiny/intel-{precision}/v1")
        assert manifest["precision"] == precision
    fp16 = json.loads((tmp_path / "outputs/tiny/intel-fp16/v1/runtime.json").read_text())
    assert fp16["properties"]["INFERENCE_PRECISION_HINT"] == "f16"


def test_a_failing_job_does_not_stop_the_sweep(cli, tmp_path: Path):
    # int8 without calibration data is invalid; fp32 must still be built.
    result = cli("-m", "recipe=tiny", "precision=int8,fp32", "calibration.dataset=null", *FAST)
    assert result.returncode != 0
    assert "calibration dataset" in result.stderr
    assert (tmp_path / "outputs/tiny/intel-fp32/v1/manifest.json").is_file()
    assert not (tmp_path / "outputs/tiny/intel-int8").exists()


def test_int8_calibrated_from_npz_and_image_folder(cli, tmp_path: Path):
    import numpy as np
    from PIL import Image
    from skimage import data

    npz = tmp_path / "calib.npz"
    np.savez(npz, images=np.random.default_rng(0).standard_normal((12, 3, 32, 32)).astype(np.float32))
    result = cli("recipe=tiny_int8", "calibration.dataset=npz", f"calibration.path={npz}",
                 "calibration.num_samples=12", *FAST)
    assert result.returncode == 0, result.stderr

    folder = tmp_path / "images" / "cat"
    folder.mkdir(parents=True)
    photo = data.chelsea()
    for i in range(6):
        Image.fromarray(photo[i * 10 : i * 10 + 200, i * 20 : i * 20 + 200]).save(folder / f"{i}.jpg")
    result = cli("recipe=tiny_int8", "calibration.dataset=image_folder",
                 f"calibration.path={folder.parent}", "calibration.num_samples=6", *FAST)
    assert result.returncode == 0, result.stderr
    root = tmp_path / "outputs/tiny_int8/intel-int8"
    assert {p.name for p in root.glob("v*")} == {"v1", "v2"}  # different data, different artifacts


def test_recipe_default_precision_and_command_line_wins(cli, tmp_path: Path):
    result = cli("recipe=tiny_int8", "precision=fp32", "benchmark.enabled=false", "validate.enabled=false")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "outputs/tiny_int8/intel-fp32/v1").is_dir()
    assert not (tmp_path / "outputs/tiny_int8/intel-int8").exists()
    manifest = manifest_of(tmp_path / "outputs/tiny_int8/intel-fp32/v1")
    assert manifest["precision"] == "fp32"
    assert "precision=fp32" in manifest["overrides"]
