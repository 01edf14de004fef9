"""Bad input found while stages run (a model or data file that is not what it claims) never
gets a traceback: one line saying what is wrong, non-zero exit, no artifact. Errors found before
any stage runs are in tests/unit/test_config_errors.py.

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
    ("corrupt model file", ["recipe=small", "model.path={corrupt_onnx}"], "not a valid ONNX model"),
    ("non-ONNX file", ["recipe=small", "model.path={text_onnx}"], "not a valid ONNX model"),
    ("input name mismatch", ["recipe=small", "model.inputs=[{{name:image,shape:[1,3,32,32]}}]"], "has no input 'image'"),
    ("input shape mismatch", ["recipe=small", "model.inputs=[{{name:input,shape:[1,3,64,64]}}]"], "shape [1, 3, 64, 64]"),
    ("undecodable image", ["recipe=small_int8", "calibration.dataset=image_folder", "calibration.path={bad_images}",
                           "calibration.num_samples=2"], "broken.jpg"),
    ("npz of the wrong size", ["recipe=small_int8", "calibration.dataset=npz", "calibration.path={wrong_npz}",
                               "calibration.num_samples=4"], "shape"),
    ("npz with pickled objects", ["recipe=small_int8", "calibration.dataset=npz", "calibration.path={object_npz}",
                                  "calibration.num_samples=2"], "pickle"),
    ("npz key missing", ["recipe=small_int8", "calibration.dataset=npz", "calibration.path={wrong_npz}",
                         "calibration.key=nope"], "nope"),
    ("weights need pickle code", ["recipe=resnet50", "model.name=resnet18", "model.weights={evil_pt}"], "weights_only=True"),
    ("weights file missing", ["recipe=resnet50", "model.name=resnet18", "model.weights={tmp}/none.pt"], "is not a file"),
    ("unknown torchvision model", ["recipe=resnet50", "model.name=resnet5000", "model.weights=null"],
     "not a torchvision classification model"),
    ("unknown torchvision weights", ["recipe=resnet50", "model.name=resnet18", "model.weights=IMAGENET9K"],
     "does not exist for resnet18"),
    ("efficientnet weights", ["recipe=efficientnet_lite0_int8", "model.weights=other"], "not available for efficientnet_lite0"),
]


@pytest.fixture()
def bad(tmp_path: Path, small_recipe_dir: Path) -> dict[str, str]:
    from PIL import Image

    files = {"tmp": tmp_path}
    files["corrupt_onnx"] = tmp_path / "corrupt.onnx"
    files["corrupt_onnx"].write_bytes((small_recipe_dir.parent / "small.onnx").read_bytes()[:500])
    files["text_onnx"] = tmp_path / "notes.onnx"
    files["text_onnx"].write_text("not a model\n")
    files["bad_images"] = tmp_path / "bad_images"
    files["bad_images"].mkdir()
    Image.new("RGB", (40, 40), "red").save(files["bad_images"] / "good.png")
    (files["bad_images"] / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    files["wrong_npz"] = tmp_path / "wrong.npz"
    np.savez(files["wrong_npz"], x=np.zeros((4, 3, 16, 16), np.float32))
    files["object_npz"] = tmp_path / "objects.npz"
    np.savez(files["object_npz"], x=np.array([{"a": 1}, None], dtype=object))
    files["evil_pt"] = tmp_path / "evil.pt"
    files["evil_pt"].write_bytes(_pickle_that_runs_code())
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
def test_bad_input_gives_one_line_and_no_artifact(run, bad: dict[str, str], tmp_path: Path,
                                                  args: list[str], expected: str):
    result = run(*[a.format(**bad) for a in args])
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
