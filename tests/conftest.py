"""Shared fixtures: a tiny real CNN as an ONNX file, a recipe directory, and a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "openvino", "nncf")


def pytest_configure(config: pytest.Config) -> None:
    """Each xdist worker gets its own temp directory, and with it its own measuring turns
    (optbuild/pipeline/measuring.py): the two workers are independent test runs whose benchmarks
    check behaviour, not speed, so one worker's benchmark must not pause the other's builds.
    Tests of the turns across processes give their lock directory explicitly."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        folder = Path(tempfile.gettempdir()) / f"optbuild-tests-{os.getuid()}-{worker}"
        folder.mkdir(exist_ok=True)
        os.environ["TMPDIR"] = str(folder)  # CLI subprocesses inherit it
        tempfile.tempdir = None  # this process: recomputed from TMPDIR


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


def small_model(path: Path, shape: tuple[int | str, ...] = (1, 3, 32, 32), seed: int = 0) -> Path:
    """A small real conv net (conv-relu ×2, global pool, gemm) written with onnx.helper: no torch,
    for the fast tier. Input `input` `shape` (N, 3, H, W; any dim may be symbolic), output
    `logits` [N, 10]."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)

    def weight(name: str, *dims: int) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(dims) * 0.1).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], "conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], "relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], "conv2", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"], "relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["pool"], "pool"),
        helper.make_node("Flatten", ["pool"], ["flat"], "flatten"),
        helper.make_node("Gemm", ["flat", "w3", "b3"], ["logits"], "fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "small", [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [shape[0], 10])],
        [weight("w1", 8, 3, 3, 3), weight("b1", 8), weight("w2", 16, 8, 3, 3), weight("b2", 16),
         weight("w3", 10, 16), weight("b3", 10)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="optbuild-tests")
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def small_recipe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recipe directory with `small` (fp32) and `small_int8` over the onnx.helper model."""
    folder = tmp_path_factory.mktemp("small")
    model = small_model(folder / "small.onnx")
    (folder / "recipes").mkdir()
    (folder / "recipes" / "small.yaml").write_text(tiny_recipe(model, name="small"))
    (folder / "recipes" / "small_int8.yaml").write_text(tiny_recipe(model, precision="int8", name="small"))
    return folder / "recipes"


class InProcessCli:
    """`optbuild` called as a function in this process (no interpreter start-up): for errors
    that happen before any stage runs. Stage workers still start as in a real build."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        from optbuild.cli import main

        is_verb = bool(args) and "=" not in args[0] and not args[0].startswith("-")
        self.capsys.readouterr()
        code = main([*args, *([] if is_verb else ["progress=false"])])
        captured = self.capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, captured.out, captured.err)


@pytest.fixture()
def run(tmp_path: Path, small_recipe_dir: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    """optbuild in-process, from a scratch working directory, with the `small` recipes."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPTBUILD_RECIPE_PATH", str(small_recipe_dir))
    return InProcessCli(capsys)
