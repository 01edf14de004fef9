"""Serving a published artifact: optbuild.load checks it and runs client inputs, the benchmark
measures the path users call from a decoded image, and the nvidia kit takes the same pixels."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import manifest_of

import optbuild
from optbuild.errors import OptbuildError
from optbuild.passes.onnx_io import cpu_session

BUILD = ("recipe=small", "validate.num_samples=4")


@pytest.fixture()
def artifact(run, tmp_path: Path) -> Path:
    result = run(*BUILD, "serve.color=BGR")
    assert result.returncode == 0, result.stderr
    return tmp_path / "outputs/small/intel-fp32/latest"


def test_the_artifact_takes_pixels_and_says_so(artifact: Path, run) -> None:
    manifest = manifest_of(artifact)
    [takes] = manifest["interface"]["inputs"]
    assert (takes["dtype"], takes["shape"], takes["layout"], takes["color"]) == ("uint8", [1, 32, 32, 3], "NHWC",
                                                                                 "BGR")
    assert manifest["interface"]["outputs"][0]["dtype"] == "float32"
    # validation ran each decoded image through optbuild.load's own path
    assert manifest["validation"]["fed"] == ["input: uint8 [1, 32, 32, 3] NHWC BGR: 4 decoded images through "
                                             "optbuild.load's image path"]
    shown = run("inspect", str(artifact))
    assert "takes:" in shown.stdout and "input: uint8 [1, 32, 32, 3] NHWC BGR" in shown.stdout
    # the benchmark timed the user's path from a decoded image beside the hand-written one
    e2e = manifest["benchmark"]["end_to_end"]
    assert e2e["image"] == [480, 640, 3] and e2e["artifact"]["runs"] == 5
    assert e2e["ratio_vs_hand_written"] == pytest.approx(e2e["artifact"]["median_ms"] / e2e["hand_written"]["median_ms"])


def test_load_runs_pixels_like_the_fp32_model_fed_the_recipes_preprocessing(artifact: Path, small_recipe_dir) -> None:
    from PIL import Image

    model = optbuild.load(artifact)
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)  # RGB, any size: the recipe resizes and crops
    from_image = model(Image.fromarray(photo))["logits"]
    # by hand: resize 36 + centre crop 32 (PIL), normalise, NCHW, into the FP32 model
    from optbuild.data.images import preprocess_image
    x = preprocess_image(Image.fromarray(photo), {"resize": 36, "crop": 32, "mean": [0.485, 0.456, 0.406],
                                                   "std": [0.229, 0.224, 0.225]}, [1, 3, 32, 32])[None]
    expected = cpu_session(str(small_recipe_dir.parent / "small.onnx")).run(None, {"input": x})[0]
    # the load API cuts the centre the recipe keeps, then resizes once: the same view of the image
    cosine = float(np.dot(from_image.ravel(), expected.ravel()) / np.linalg.norm(from_image) / np.linalg.norm(expected))
    assert cosine > 0.99
    # the same pixels at the input's size go straight in: exactly the FP32 model on their normalisation
    pixels = np.asarray(Image.fromarray(photo).resize((32, 32)))[None, :, :, ::-1]  # BGR, as the artifact takes
    x = ((pixels[..., ::-1].transpose(0, 3, 1, 2) / 255.0 - np.reshape([0.485, 0.456, 0.406], (1, 3, 1, 1)))
         / np.reshape([0.229, 0.224, 0.225], (1, 3, 1, 1))).astype(np.float32)
    reference = cpu_session(str(small_recipe_dir.parent / "small.onnx")).run(None, {"input": x})[0]
    assert np.allclose(model(np.ascontiguousarray(pixels))["logits"], reference, atol=1e-4)
    # raw BGR pixels at the input size, with or without the batch axis, one by one or many at once
    pixels = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    one_by_one = np.concatenate([model(p)["logits"] for p in pixels])
    many = np.concatenate([out["logits"] for out in model.map([p[None] for p in pixels])])
    assert np.allclose(one_by_one, many, atol=1e-5)


@pytest.mark.parametrize("feeds, says", [
    (np.zeros((1, 32, 32, 3), np.float32), "is float32, the artifact takes uint8"),
    (np.zeros((1, 3, 32, 32), np.uint8), "has shape [1, 3, 32, 32]: expected input: uint8 [1, 32, 32, 3] NHWC BGR"),
    ({"pixels": np.zeros((1, 32, 32, 3), np.uint8)}, "inputs ['pixels'] do not match"),
])
def test_load_refuses_inputs_outside_the_contract(artifact: Path, feeds, says: str) -> None:
    model = optbuild.load(artifact)
    with pytest.raises(OptbuildError) as err:
        model(feeds)
    assert says in str(err.value)


def test_load_refuses_a_tampered_or_foreign_folder(artifact: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(artifact.resolve(), copy)
    assert optbuild.load(copy).contract[0]["dtype"] == "uint8"
    with (copy / "model.bin").open("r+b") as weights:
        weights.seek(100)
        weights.write(b"\x00\x01\x02\x03")
    with pytest.raises(OptbuildError, match=r"does not match its manifest \(model.bin: changed"):
        optbuild.load(copy)
    (copy / "model.bin").unlink()
    with pytest.raises(OptbuildError, match="model.bin: missing"):
        optbuild.load(copy)
    with pytest.raises(OptbuildError, match="no manifest.json"):
        optbuild.load(tmp_path)


def test_opting_out_keeps_the_models_float_input(run, tmp_path: Path) -> None:
    assert run(*BUILD, "serve.embed_preprocess=false", "benchmark.enabled=false").returncode == 0
    manifest = manifest_of(tmp_path / "outputs/small/intel-fp32/latest")
    [takes] = manifest["interface"]["inputs"]
    assert (takes["dtype"], takes["shape"], takes["preprocess"]) == ("float32", [1, 3, 32, 32], None)
    model = optbuild.load(tmp_path / "outputs/small/intel-fp32")  # the target-precision folder: its latest
    assert model(np.zeros((1, 3, 32, 32), np.float32))["logits"].shape[0] == 1
    with pytest.raises(OptbuildError, match="does not take images"):
        model.image(np.zeros((40, 40, 3), np.uint8))


def test_the_nvidia_kit_takes_the_same_pixels(run, tmp_path: Path) -> None:
    result = run("recipe=small_int8", "target=nvidia", "target.engine=kit", "validate.num_samples=4",
                 "calibration.num_samples=8")
    assert result.returncode == 0, result.stderr
    kit = tmp_path / "outputs/small_int8/nvidia-int8/latest"
    manifest = manifest_of(kit)
    assert manifest["interface"]["inputs"][0]["graph_shape"] == [1, 32, 32, 3]
    import onnx

    graph = onnx.load(str(kit / "model.onnx")).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    chain, tensor = [], graph.input[0].name
    for _ in range(4):  # follow the input through its consumers
        node = next(n for n in graph.node if tensor in n.input)
        chain.append(node)
        tensor = node.output[0]
    # the pixels step, in float32, in front of what the quantizer made of the model's input
    assert [n.op_type for n in chain] == ["Transpose", "Cast", "Sub", "Mul"]
    assert chain[1].attribute[0].i == onnx.TensorProto.FLOAT
    constants = {t.name: t for t in graph.initializer}
    assert all(constants[n.input[1]].data_type == onnx.TensorProto.FLOAT for n in chain[2:])
    samples = json.loads((kit / "samples.json").read_text())
    assert samples and "input" in samples[0]
    assert manifest["cpu_proxy"]["cosine_mean"] > 0.95
    with pytest.raises(OptbuildError, match="is a TensorRT build kit, not an engine"):
        optbuild.load(kit)
