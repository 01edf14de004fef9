"""Bad input never gets a traceback: one line saying what is wrong, non-zero exit, no artifact.

One case per row: (id, command-line arguments, text the error line must contain). Paths in
braces are files the `bad` fixture prepares.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import error_line

CASES = [
    ("unknown key", ["recipe=tiny", "calibration.num_sampels=3"], "unknown config key 'calibration.num_sampels'"),
    ("unknown key via +", ["recipe=tiny", "+validate.min_cosin=0.9"], "unknown config key 'validate.min_cosin'"),
    ("unknown top-level key", ["recipe=tiny", "+speed=fast"], "unknown config key 'speed'"),
    ("_target_ is not a key", ["recipe=tiny", "+model._target_=os.system"], "unknown config key 'model._target_'"),
    ("wrong type int", ["recipe=tiny", "calibration.num_samples=lots"], "calibration.num_samples"),
    ("wrong type float", ["recipe=tiny", "validate.min_cosine=high"], "validate.min_cosine"),
    ("wrong enum", ["recipe=tiny", "target.engine=maybe"], "expected one of [auto, build, kit]"),
    ("unknown recipe", ["recipe=nope"], "unknown recipe 'nope'"),
    ("unknown target", ["recipe=tiny", "target=amd"], "unknown target 'amd'"),
    ("unknown precision", ["recipe=tiny", "precision=int4"], "unknown precision 'int4'"),
    ("unknown pass", ["recipe=tiny", "passes=[fold_constant]"], "unknown pass 'fold_constant'"),
    ("bad pass parameter", ["recipe=tiny", "passes=[{{name:fold_constants,size:1}}]"], "parameter 'size'"),
    ("recipe escapes its dir", ["recipe=../../etc/passwd"], "not a plain name"),
    ("recipe by absolute path", ["recipe=/etc/passwd"], "not a plain name"),
    ("recipe with _target_", ["recipe=evil"], "unknown config key 'model._target_'"),
    ("broken recipe YAML", ["recipe=broken"], "cannot be read as YAML"),
    ("recipe configuring Hydra", ["recipe=hydra_callback"], "sets 'hydra' settings"),
    ("missing model file", ["recipe=tiny", "model.path={tmp}/missing.onnx"], "is not a file"),
    ("corrupt model file", ["recipe=tiny", "model.path={corrupt_onnx}"], "not a valid ONNX model"),
    ("non-ONNX file", ["recipe=tiny", "model.path={text_onnx}"], "not a valid ONNX model"),
    ("onnx source without path", ["recipe=tiny", "model.path=null"], "needs model.path"),
    ("input name mismatch", ["recipe=tiny", "model.inputs=[{{name:image,shape:[1,3,32,32]}}]"], "has no input 'image'"),
    ("input shape mismatch", ["recipe=tiny", "model.inputs=[{{name:input,shape:[1,3,64,64]}}]"], "shape [1, 3, 64, 64]"),
    ("non-positive shape", ["recipe=tiny", "model.inputs=[{{name:input,shape:[0,3,32,32]}}]"], "positive size"),
    ("int8 without calibration", ["recipe=tiny_int8", "calibration.dataset=null"], "needs a calibration dataset"),
    ("zero samples", ["recipe=tiny_int8", "calibration.num_samples=0"], "at least 1"),
    ("gate given in percent", ["recipe=tiny", "validate.min_top1_agreement=95"], "validate.min_top1_agreement=95.0 is out of range"),
    ("labeled gate on photos", ["recipe=tiny", "validate.max_top1_drop=0.01"], "validate.max_top1_drop needs labels"),
    ("top1 control on photos", ["recipe=tiny_int8", "quantize.accuracy_control.enabled=true",
                                "quantize.accuracy_control.metric=top1"], "metric=top1 needs labels"),
    ("control drop in percent", ["recipe=tiny_int8", "quantize.accuracy_control.max_drop=5"], "max_drop=5.0 must be a fraction"),
    ("unknown label class", ["recipe=tiny", "validate.dataset=fashion_mnist", "validate.label_map={{Hat:1}}"], "Hat"),
    ("empty calibration folder", ["recipe=tiny_int8", "calibration.dataset=image_folder", "calibration.path={empty_dir}"], "{empty_dir}"),
    ("calibration folder missing", ["recipe=tiny_int8", "calibration.dataset=image_folder", "calibration.path={tmp}/nowhere"], "nowhere"),
    ("calibration path is a file", ["recipe=tiny_int8", "calibration.dataset=image_folder", "calibration.path={text_onnx}"], "not a directory"),
    ("undecodable image", ["recipe=tiny_int8", "calibration.dataset=image_folder", "calibration.path={bad_images}", "calibration.num_samples=2"], "broken.jpg"),
    ("too few images", ["recipe=tiny_int8", "calibration.dataset=image_folder", "calibration.path={few_images}", "calibration.num_samples=50"], "num_samples"),
    ("npz of the wrong size", ["recipe=tiny_int8", "calibration.dataset=npz", "calibration.path={wrong_npz}", "calibration.num_samples=4"], "shape"),
    ("npz with pickled objects", ["recipe=tiny_int8", "calibration.dataset=npz", "calibration.path={object_npz}", "calibration.num_samples=2"], "pickle"),
    ("npz key missing", ["recipe=tiny_int8", "calibration.dataset=npz", "calibration.path={wrong_npz}", "calibration.key=nope"], "nope"),
    ("weights need pickle code", ["recipe=resnet50", "model.name=resnet18", "model.weights={evil_pt}"], "weights_only=True"),
    ("weights file missing", ["recipe=resnet50", "model.name=resnet18", "model.weights={tmp}/none.pt"], "is not a file"),
    ("unknown torchvision model", ["recipe=resnet50", "model.name=resnet5000", "model.weights=null"], "not a torchvision classification model"),
    ("unknown torchvision weights", ["recipe=resnet50", "model.name=resnet18", "model.weights=IMAGENET9K"], "does not exist for resnet18"),
    ("efficientnet weights", ["recipe=efficientnet_lite0_int8", "model.weights=other"], "not available for efficientnet_lite0"),
    ("unwritable output dir", ["recipe=tiny", "out_dir={a_file}/outputs"], "choose a writable"),
    ("unknown command", ["frobnicate"], "unknown command 'frobnicate'"),
]


@pytest.fixture()
def bad(tmp_path: Path, tiny_onnx: Path, recipe_dir: Path) -> dict[str, str]:
    from PIL import Image

    files = {"tmp": tmp_path}
    files["corrupt_onnx"] = tmp_path / "corrupt.onnx"
    files["corrupt_onnx"].write_bytes(tiny_onnx.read_bytes()[:500])
    files["text_onnx"] = tmp_path / "notes.onnx"
    files["text_onnx"].write_text("not a model\n")
    files["empty_dir"] = tmp_path / "empty"
    files["empty_dir"].mkdir()
    files["bad_images"] = tmp_path / "bad_images"
    files["bad_images"].mkdir()
    Image.new("RGB", (40, 40), "red").save(files["bad_images"] / "good.png")
    (files["bad_images"] / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    files["few_images"] = tmp_path / "few"
    files["few_images"].mkdir()
    Image.new("L", (40, 40), 128).save(files["few_images"] / "gray.png")
    files["wrong_npz"] = tmp_path / "wrong.npz"
    np.savez(files["wrong_npz"], x=np.zeros((4, 3, 16, 16), np.float32))
    files["object_npz"] = tmp_path / "objects.npz"
    np.savez(files["object_npz"], x=np.array([{"a": 1}, None], dtype=object))
    files["evil_pt"] = tmp_path / "evil.pt"
    files["evil_pt"].write_bytes(_pickle_that_runs_code())
    files["a_file"] = tmp_path / "a_file"
    files["a_file"].write_text("")
    (recipe_dir / "evil.yaml").write_text("# @package _global_\nmodel: {_target_: os.system}\n")
    (recipe_dir / "broken.yaml").write_text("model: {source: [\n")
    (recipe_dir / "hydra_callback.yaml").write_text(
        "# @package _global_\nhydra:\n  callbacks:\n    run:\n      _target_: os.system\n"
        "      command: touch /tmp/optbuild-pwned\n")
    return {k: str(v) for k, v in files.items()}


def _pickle_that_runs_code() -> bytes:
    import io
    import pickle

    class RunsCode:
        def __reduce__(self):
            return (os.system, ("touch /tmp/optbuild-pwned",))

    buffer = io.BytesIO()
    pickle.dump({"weight": RunsCode()}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(("args", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_and_no_artifact(cli, bad: dict[str, str], tmp_path: Path,
                                                  args: list[str], expected: str):
    result = cli(*[a.format(**bad) for a in args])
    line = error_line(result)
    assert expected.format(**bad) in line
    assert result.returncode == 1
    published = [p for p in (tmp_path / "outputs").glob("*/*/v*")] if (tmp_path / "outputs").exists() else []
    assert published == []
    assert not Path("/tmp/optbuild-pwned").exists()


def test_a_full_disk_is_one_line(cli, tmp_path: Path):
    """A 64 KB filesystem fills up mid-build (needs root to mount a tmpfs)."""
    disk = tmp_path / "small-disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (not root)")
    try:
        result = cli("recipe=tiny", f"out_dir={disk}", "benchmark.enabled=false")
        line = error_line(result)
        assert "space" in line
        assert not list(disk.glob("tiny/*/v*"))
    finally:
        subprocess.run(["umount", str(disk)], check=False)
