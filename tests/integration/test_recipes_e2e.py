"""The shipped recipes, built for real: the quickstart, offline torchvision weights, a sweep."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Cli, error_line, manifest_of

from optbuild.core.digest import sha256_file

QUICK = ("calibration.num_samples=32", "validate.num_samples=16", "benchmark.iterations=10")


@pytest.fixture()
def shipped(tmp_path: Path) -> Cli:
    return Cli(tmp_path, recipe_dir=None)


def test_quickstart_is_byte_reproducible_and_cached(shipped: Cli, tmp_path: Path):
    result = shipped("recipe=efficientnet_lite0_int8", f"out_dir={tmp_path / 'a'}", *QUICK)
    assert result.returncode == 0, result.stderr
    versions = [tmp_path / "a/efficientnet_lite0_int8/intel-int8/v1"]
    manifest = manifest_of(versions[0])
    for artifact in manifest["artifacts"]:
        assert sha256_file(versions[0] / artifact["path"]) == artifact["sha256"]
    assert manifest["quantization"]["fake_quantize_ops"] > 50
    # Real ImageNet weights on real photos: INT8 agrees with FP32 on most crops.
    assert manifest["validation"]["top1_agreement"] >= 0.8
    # Anyone can check it: integrity, chain, provenance, and a rebuild from its recorded config
    # without the cache, in fresh stage processes, byte for byte.
    verify = shipped("verify", str(versions[0]), "--rebuild")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "byte-identical outputs at every stage" in verify.stdout

    # Again, cached: every stage a hit and still v1 (tests/integration/test_build.py checks that a cached
    # build imports no toolkit; timing belongs in benchmarks, not in a test).
    result = shipped("recipe=efficientnet_lite0_int8", f"out_dir={tmp_path / 'a'}", *QUICK)
    assert result.returncode == 0, result.stderr
    assert "reused" in result.stderr
    assert sorted(p.name for p in versions[0].parent.glob("v*")) == ["v1"]
    assert manifest_of(versions[0].parent / "latest")["version"] == 1


def test_offline_torchvision_weights_fail_with_the_override_to_use(shipped: Cli, tmp_path: Path):
    # An empty torch hub cache and an unroutable proxy: the download must fail, fast.
    env = {"TORCH_HOME": str(tmp_path / "torch-home"), "https_proxy": "http://127.0.0.1:9",
           "HTTPS_PROXY": "http://127.0.0.1:9"}
    line = error_line(shipped("recipe=resnet50_int8", "target=intel", env=env, timeout=300))
    assert "resnet50.IMAGENET1K_V2" in line
    assert "model.weights=null" in line
    assert not (tmp_path / "outputs/resnet50_int8").exists()


def test_sweep_over_precisions_gives_three_artifacts(shipped: Cli, tmp_path: Path):
    # resnet50's recipe with a smaller torchvision model keeps the sweep quick on 2 cores.
    result = shipped("-m", "recipe=resnet50", "target=intel", "precision=fp32,fp16,int8",
                     "model.weights=null", "model.name=resnet18", *QUICK, timeout=1200)
    assert result.returncode == 0, result.stderr
    exports = []
    for precision in ("fp32", "fp16", "int8"):
        manifest = manifest_of(tmp_path / f"outputs/resnet50/intel-{precision}/v1")
        assert manifest["precision"] == precision
        exports.append({s["name"]: s for s in manifest["stages"]}["export"])
    # The torch export ran once; the other jobs took it from the cache.
    assert [e["cache_hit"] for e in exports] == [False, True, True]
    assert len({e["key"] for e in exports}) == 1
