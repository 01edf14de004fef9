"""Shared fixtures: a tiny real CNN as an ONNX file, a recipe directory, and a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "openvino", "nncf")


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small conv net (conv-bn-relu ×2, pool, linear) exported by torch, seeded."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.1), nn.Linear(32, 10),
    ).eval()
    path = tmp_path_factory.mktemp("models") / "tiny.onnx"
    torch.onnx.export(net, (torch.zeros(1, 3, 32, 32),), str(path), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["logits"], do_constant_folding=False)
    return path


TINY_RECIPE = """\
# @package _global_
defaults:
  - override /precision: {precision}
  - _self_
model:
  source: onnx
  name: {name}
  path: {path}
  inputs: [{{name: input, shape: [1, 3, 32, 32]}}]
  preprocess: {{resize: 36, crop: 32}}
passes: {passes}
calibration: {{dataset: sample_photos, num_samples: 16}}
validate: {{num_samples: 8}}
benchmark: {benchmark}
"""


def tiny_recipe(path: Path, precision: str = "fp32", name: str = "tiny",
                passes: str = "[fold_constants, cleanup]",
                benchmark: str = "{iterations: 5, warmup: 1, throughput_seconds: 0.3}") -> str:
    """A recipe building the ONNX file at `path`: plain data, as a user would write it."""
    return TINY_RECIPE.format(precision=precision, name=name, path=path, passes=passes, benchmark=benchmark)


@pytest.fixture()
def recipe_dir(tmp_path: Path, tiny_onnx: Path) -> Path:
    """A directory for OPTBUILD_RECIPE_PATH with `tiny` (fp32) and `tiny_int8` recipes."""
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "tiny.yaml").write_text(tiny_recipe(tiny_onnx))
    (folder / "tiny_int8.yaml").write_text(tiny_recipe(tiny_onnx, precision="int8"))
    return folder


class Cli:
    """Runs `optbuild` in a fresh process, as a user would, from a scratch working directory."""

    def __init__(self, cwd: Path, recipe_dir: Path | None) -> None:
        self.cwd = cwd
        self.env = {**os.environ, "PYTHONPATH": str(REPO)}
        if recipe_dir is not None:
            self.env["OPTBUILD_RECIPE_PATH"] = str(recipe_dir)

    def __call__(self, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 900) -> subprocess.CompletedProcess:
        is_verb = bool(args) and "=" not in args[0] and not args[0].startswith("-")
        extra = [] if is_verb else ["progress=false"]
        return subprocess.run(
            [sys.executable, "-m", "optbuild.cli", *args, *extra], cwd=self.cwd, env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=timeout,
        )


@pytest.fixture()
def cli(tmp_path: Path, recipe_dir: Path) -> Cli:
    return Cli(tmp_path, recipe_dir)


def error_line(result: subprocess.CompletedProcess) -> str:
    """The single `optbuild: error:` line; fails the test if there is a traceback or more lines."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("optbuild: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def manifest_of(version_dir: Path) -> dict:
    return json.loads((version_dir / "manifest.json").read_text())
