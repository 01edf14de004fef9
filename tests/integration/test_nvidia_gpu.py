"""The real TensorRT engine: only where TensorRT and an NVIDIA GPU exist (skipped elsewhere, with
the reason). Same tiny recipes as tests/integration/test_build.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import manifest_of

from optbuild.planning.host import LocalHost

MISSING = LocalHost().missing_for_engine()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(bool(MISSING), reason="; ".join(MISSING) or "ready")]


def test_engine_is_built_validated_and_benchmarked_on_the_gpu(cli, tmp_path: Path):
    result = cli("recipe=tiny_int8", "target=nvidia", "target.engine=build")
    assert result.returncode == 0, result.stderr
    version = tmp_path / "outputs/tiny_int8/nvidia-int8/v1"
    assert {"model.plan", "engine.json", "timing.cache", "model.onnx", "build_spec.json"} <= {p.name for p in version.iterdir()}
    manifest = manifest_of(version)
    engine = manifest["engine"]
    assert manifest["engine_built"] is True
    assert engine["tensorrt"] and engine["gpu"]["name"] and engine["gpu"]["compute_capability"]
    assert len(engine["structure_hash"]) == len(engine["tactic_hash"]) == 64 and engine["precisions"]
    assert manifest["validation"]["top1_agreement"] >= 0.9
    assert manifest["benchmark"]["timer"] == "CUDA events (GPU time)"


def test_kit_builds_the_same_engine_with_only_tensorrt(cli, tmp_path: Path):
    assert cli("recipe=tiny_int8", "target=nvidia", "target.engine=kit").returncode == 0
    kit = tmp_path / "outputs/tiny_int8/nvidia-int8/v1"
    out = tmp_path / "built"
    out.mkdir()
    result = subprocess.run([sys.executable, str(kit / "build_engine.py"), "--out-dir", str(out)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "build_report.json").read_text())
    assert (out / "model.plan").stat().st_size > 0 and report["engine_built"] is True
