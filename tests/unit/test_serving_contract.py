"""The artifact's input contract: what a client sends, the round trip between pixels and the
model's input, the checks on every call, and how the plan derives it from a recipe."""

from __future__ import annotations

import numpy as np
import pytest

from optbuild.config.compose import compose
from optbuild.data import DatasetRequest, load
from optbuild.errors import OptbuildError
from optbuild.planning.common import client_inputs
from optbuild.planning.nvidia import build_spec
from optbuild.serving.contract import check_feeds, describe, normalize, to_pixels
from optbuild.serving.images import centre_cut, image_pixels


def pixels_contract(layout: str = "NHWC", color: str = "RGB", resize_inside: bool = False) -> list[dict]:
    shape = [1, 224, 224, 3] if layout == "NHWC" else [1, 3, 224, 224]
    return [{"name": "input", "dtype": "uint8", "shape": shape, "dynamic": {}, "layout": layout, "color": color,
             "preprocess": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "model_dtype": "float32",
                            "model_layout": "NCHW", "resize_inside": resize_inside,
                            "geometry": {"resize": 256, "crop": 224, "fit": "crop"}}}]


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    """Real photos through the recipe-style preprocessing: the model's float input."""
    return load(DatasetRequest(kind="sample_photos", path=None, num_samples=6, seed=0))


@pytest.mark.parametrize("layout, color", [("NHWC", "RGB"), ("NHWC", "BGR"), ("NCHW", "RGB")])
def test_pixels_round_trip_gives_the_models_input_back_bit_for_bit(photos, layout: str, color: str) -> None:
    contract = pixels_contract(layout, color)
    pixels = to_pixels(photos, contract)["input"]
    assert pixels.dtype == np.uint8
    assert list(pixels.shape[1:]) == contract[0]["shape"][1:]
    assert np.array_equal(normalize({"input": pixels}, contract)["input"], photos["input"])


def test_pixels_are_in_the_clients_colour_order(photos) -> None:
    rgb = to_pixels(photos, pixels_contract("NHWC", "RGB"))["input"]
    bgr = to_pixels(photos, pixels_contract("NHWC", "BGR"))["input"]
    assert np.array_equal(rgb[..., ::-1], bgr)
    assert not np.array_equal(rgb, bgr)


def test_a_model_input_without_preprocessing_passes_through(photos) -> None:
    plain = [{"name": "input", "dtype": "float32", "shape": [1, 3, 224, 224], "dynamic": {}, "layout": None,
              "color": None, "preprocess": None}]
    assert to_pixels(photos, plain)["input"] is photos["input"]
    assert normalize(photos, plain)["input"] is photos["input"]


@pytest.mark.parametrize("feeds, says", [
    ({"input": np.zeros((1, 224, 224, 3), np.float32)}, "is float32, the artifact takes uint8"),
    ({"input": np.zeros((1, 3, 224, 224), np.uint8)}, "has shape [1, 3, 224, 224]: expected input: uint8 "
                                                      "[1, 224, 224, 3] NHWC RGB"),
    ({"input": np.zeros((224, 224, 3), np.uint8)}, "has shape [224, 224, 3]"),
    ({"image": np.zeros((1, 224, 224, 3), np.uint8)}, "inputs ['image'] do not match"),
    ({"input": [[0]]}, "is a list: give a numpy array"),
])
def test_feeds_that_break_the_contract_get_one_clear_line(feeds: dict, says: str) -> None:
    with pytest.raises(OptbuildError) as err:
        check_feeds(feeds, pixels_contract())
    assert says in str(err.value)
    assert "\n" not in str(err.value)


def test_dynamic_dimensions_accept_their_range_only() -> None:
    contract = [{"name": "ids", "dtype": "int64", "shape": [1, 16], "dynamic": {"1": [4, 32]}, "layout": None,
                 "color": None, "preprocess": None}]
    assert check_feeds({"ids": np.zeros((1, 32), np.int64)}, contract)["ids"].shape == (1, 32)
    with pytest.raises(OptbuildError, match=r"\[1, 33\]: expected ids: int64 \[1, 4..32\]"):
        check_feeds({"ids": np.zeros((1, 33), np.int64)}, contract)
    assert describe(contract[0]) == "ids: int64 [1, 4..32]"


def test_a_decoded_image_becomes_the_recipes_crop_or_a_centre_cut() -> None:
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    fixed = image_pixels(image, pixels_contract()[0])
    assert fixed.shape == (1, 224, 224, 3) and fixed.dtype == np.uint8
    # the recipe's resize + crop, computed as one resize of the kept region: the same pixels
    from PIL import Image

    from optbuild.data.images import fit_to_input
    recipe = np.asarray(fit_to_input(Image.fromarray(image), {"resize": 256, "crop": 224, "mean": [0.5] * 3,
                                                              "fit": "crop"}, 224, 224))
    assert np.abs(fixed[0].astype(int) - recipe).max() <= 1 and (fixed[0] == recipe).mean() > 0.99
    bgr = image_pixels(image, pixels_contract(color="BGR")[0])
    assert np.array_equal(bgr, fixed[..., ::-1])
    # the artifact resizes inside: only the centre the recipe keeps (224/256 of the short side) is cut
    cut = image_pixels(image, pixels_contract(resize_inside=True)[0])
    assert cut.shape == (1, 420, 420, 3)
    assert np.array_equal(cut[0], centre_cut(image, {"resize": 256, "crop": 224, "fit": "crop"}, 224, 224))
    assert np.shares_memory(centre_cut(image, {"resize": 256, "crop": 224, "fit": "crop"}, 224, 224), image)
    with pytest.raises(OptbuildError, match="8-bit"):
        image_pixels(image.astype(np.float32), pixels_contract()[0])


def _config(*overrides: str):
    config, _ = compose("efficientnet_lite0_int8", overrides)
    return config


def test_image_recipes_take_pixels_by_default_and_can_opt_out() -> None:
    [spec] = client_inputs(_config())
    assert (spec["dtype"], spec["shape"], spec["layout"], spec["color"]) == ("uint8", [1, 224, 224, 3], "NHWC", "RGB")
    assert spec["preprocess"]["mean"] == [0.498, 0.498, 0.498]
    [plain] = client_inputs(_config("serve.embed_preprocess=false"))
    assert (plain["dtype"], plain["shape"], plain["preprocess"]) == ("float32", [1, 3, 224, 224], None)


def test_a_text_model_keeps_its_inputs() -> None:
    config, _ = compose("minilm_l6_int8", ())
    assert not config.embeds_preprocess()
    assert all(spec["preprocess"] is None for spec in client_inputs(config))


def test_dynamic_dims_and_tensorrt_profiles_follow_the_client_layout() -> None:
    config = _config("target=nvidia", "target.engine=kit",
                     "model.inputs=[{name: input, shape: [batch, 3, 224, 224], dims: {batch: {min: 1, opt: 2, max: 8}}}]",
                     "target.tensorrt.profiles=[{shapes: [{input: input, min: [1,3,224,224], opt: [2,3,224,224], "
                     "max: [8,3,224,224]}]}]")
    [spec] = client_inputs(config)
    assert spec["shape"] == [2, 224, 224, 3] and spec["dynamic"] == {"0": [1, 8]}
    built = build_spec(config)
    assert built["inputs"][0]["shape"] == ["batch", 224, 224, 3] and built["inputs"][0]["dtype"] == "uint8"
    shapes = built["tensorrt"]["profiles"][0]["shapes"][0]
    assert (shapes["min"], shapes["max"]) == ([1, 224, 224, 3], [8, 224, 224, 3])


def test_a_recipe_that_embeds_by_pass_is_not_embedded_twice() -> None:
    config = _config("passes=[fold_constants, embed_preprocess]")
    assert not config.embeds_preprocess()
    with pytest.raises(Exception, match="embed_preprocess pass already makes the graph take pixels"):
        _config("passes=[embed_preprocess]", "serve.embed_preprocess=true")


def test_a_gray_image_keeps_its_one_channel() -> None:
    spec = {"name": "input", "dtype": "uint8", "shape": [1, 28, 28, 1], "layout": "NHWC", "color": "GRAY",
            "preprocess": {"mean": [0.286], "std": [0.353], "resize_inside": False, "model_dtype": "float32",
                           "model_layout": "NCHW", "geometry": {"resize": 28, "crop": 28, "fit": "crop"}}}
    image = np.random.default_rng(0).integers(0, 256, (28, 28, 1), dtype=np.uint8)
    assert np.array_equal(image_pixels(image, spec)[0], image)  # H×W×1, as the datasets keep it
    assert np.array_equal(image_pixels(image[..., 0], spec)[0], image)  # H×W
    with pytest.raises(OptbuildError, match="H×W×3"):
        image_pixels(np.zeros((28, 28, 2), np.uint8), spec)
