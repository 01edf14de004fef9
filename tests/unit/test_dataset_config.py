"""The rules on dataset settings, checked on the composed config (optbuild.config.schema) before
any data is read: the kinds, which fields each kind takes, num_samples and seed, label_map values,
and the preprocessing and input shape image kinds decode to. The checks on the data itself (missing
files, classes the data lacks, too few samples) are in test_datasets.py / test_fashion_mnist.py."""

from __future__ import annotations

import copy

import pytest
from omegaconf import OmegaConf

from optbuild.config.schema import Config
from optbuild.config.validate import check
from optbuild.errors import OptbuildError

BASE = OmegaConf.to_container(OmegaConf.structured(Config), resolve=True, enum_to_str=True)
SECTIONS = ("calibration", "validate")


def merged(base: dict, changes: dict) -> dict:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and value:
            merged(base[key], value)
        else:
            base[key] = value
    return base


def config(**sections) -> dict:
    """A full composed config: the schema's defaults, an fp32 intel build of an ONNX file, and
    the given sections merged in."""
    base = copy.deepcopy(BASE)
    base["model"].update(source="onnx", name="m", path="/x.onnx")
    base["target"]["name"] = "intel"
    base["precision"]["name"] = "fp32"
    return merged(base, sections)


def rejected(message: str, **sections) -> str:
    with pytest.raises(OptbuildError, match=message) as err:
        check(config(**sections))
    assert "\n" not in str(err.value)
    return str(err.value)


def test_the_defaults_and_every_kind_pass():
    check(config())
    for section in SECTIONS:
        for dataset in ({"dataset": "sample_photos"}, {"dataset": "image_folder", "path": "/d"},
                        {"dataset": "npz", "path": "/x.npz", "key": "x"},
                        {"dataset": "fashion_mnist", "split": "train",
                         "label_map": {"Bag": [1, 2]}}):
            checked = check(config(**{section: dataset}))
            assert getattr(checked, section).dataset.value == dataset["dataset"]


@pytest.mark.parametrize("section", SECTIONS)
def test_unknown_kind_lists_valid_kinds(section):
    rejected(rf"invalid value for config key '{section}.dataset': Input should be 'sample_photos', "
             "'image_folder', 'npz', 'fashion_mnist', 'text' or 'synthetic'", **{section: {"dataset": "coco"}})


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("n", [0, -3])
def test_num_samples_must_be_positive(section, n):
    rejected(rf"^{section}.num_samples={n} must be at least 1$",
             **{section: {"dataset": "sample_photos", "num_samples": n}})


@pytest.mark.parametrize("section", SECTIONS)
def test_seed_must_not_be_negative(section):
    rejected(rf"^{section}.seed=-1 must be at least 0$",
             **{section: {"dataset": "sample_photos", "seed": -1}})


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("path, key", [("/tmp", None), (None, "x")])
def test_sample_photos_rejects_path_and_key(section, path, key):
    rejected("dataset 'sample_photos' does not use 'path' or 'key': remove them",
             **{section: {"dataset": "sample_photos", "path": path, "key": key}})


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("kind", ["image_folder", "npz"])
def test_own_data_needs_a_path(section, kind):
    rejected(f"dataset '{kind}' needs a 'path': set it to your data",
             **{section: {"dataset": kind, "path": None}})


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("kind, path", [("image_folder", "/d"), ("fashion_mnist", None)])
def test_key_is_only_for_npz(section, kind, path):
    rejected(f"dataset '{kind}' does not use 'key': remove it",
             **{section: {"dataset": kind, "path": path, "key": "x"}})


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("kind, path", [("sample_photos", None), ("image_folder", "/d"),
                                        ("npz", "/x.npz")])
def test_split_is_only_for_fashion_mnist(section, kind, path):
    rejected(f"dataset '{kind}' has no splits: remove 'split'",
             **{section: {"dataset": kind, "path": path, "split": "test"}})


@pytest.mark.parametrize("section", SECTIONS)
def test_fashion_mnist_split_must_exist(section):
    rejected("fashion_mnist split 'val' does not exist: use test or train",
             **{section: {"dataset": "fashion_mnist", "split": "val"}})


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("kind, path", [("sample_photos", None), ("npz", "/x.npz")])
def test_label_map_needs_labeled_data(section, kind, path):
    rejected(f"dataset '{kind}' has no labels, so 'label_map' means nothing: remove it",
             **{section: {"dataset": kind, "path": path, "label_map": {"a": 0}}})


@pytest.mark.parametrize("label_map, message", [
    ({"cat": -1}, (r"label_map\['cat'\] is -1: give a model output index \(integer >= 0\) or "
                   "a non-empty list of them")),
    ({"cat": "281"}, r"label_map\['cat'\] is '281'"),
    ({"cat": []}, r"label_map\['cat'\] is \[\]"),
    ({"cat": [1, 2.0]}, r"label_map\['cat'\] is \[1, 2.0\]"),
    ({"cat": True}, r"label_map\['cat'\] is True"),
    (["cat"], ("invalid value for config key 'validate.label_map': Input should be a valid "
               "dictionary")),
])
@pytest.mark.parametrize("kind, path", [("image_folder", "/d"), ("fashion_mnist", None)])
def test_bad_label_map(kind, path, label_map, message):
    rejected(message, validate={"dataset": kind, "path": path, "label_map": label_map})


def test_empty_label_map_means_the_default():
    """{} is the schema's 'unset' (Hydra cannot override a None dict), not an error."""
    checked = check(config(validate={"dataset": "image_folder", "path": "/d", "label_map": {}}))
    assert checked.validate.label_map == {}


@pytest.mark.parametrize("section", SECTIONS)
def test_bad_preprocess_or_shape(section):
    images: dict = {section: {"dataset": "sample_photos"}}
    if section == "calibration":  # int8 reads it; the validate section must not be the one that trips
        images.update(validate={"dataset": "npz", "path": "/x.npz"}, precision={"name": "int8"})

    def inputs(shape):
        return {"inputs": [{"name": "input", "shape": shape}]}

    check(config(model=inputs([1, 3, 224, 320]), **images))  # a non-square input takes images by model.preprocess.fit
    no_image = "decodes images, but no model input is \\[N, 1\\|3, H, W\\] floats"
    rejected(no_image, model=inputs([1, 4, 224, 224]), **images)
    rejected(no_image, model=inputs([1, 3, 224]), **images)
    rejected("feeds only the image input 'input', but the model also takes mask",
             model={"inputs": [{"name": "input", "shape": [1, 3, 224, 224]},
                               {"name": "mask", "dtype": "int64", "shape": [1, 224]}]}, **images)
    rejected(r"preprocess mean \[0.5, 0.5\] needs 3 values",
             model={"preprocess": {"mean": [0.5, 0.5]}}, **images)
    rejected(r"preprocess std \[0.2, 0.2\] needs 1 values",
             model={"preprocess": {"std": [0.2, 0.2]}, **inputs([1, 1, 224, 224])}, **images)


def test_npz_needs_no_image_shape():
    """npz data is used as it is: the image rules do not apply to it."""
    npz = {"dataset": "npz", "path": "/x.npz"}
    checked = check(config(calibration=npz, validate=npz,
                           model={"inputs": [{"name": "input", "shape": [1, 4, 7, 9]}]}))
    assert checked.model.inputs[0].shape == [1, 4, 7, 9]


def test_preprocess_values():
    rejected("crop 300 must be between 1 and resize 256", model={"preprocess": {"crop": 300}})
    rejected("crop 0 must be between 1 and resize 256", model={"preprocess": {"crop": 0}})
    rejected(r"std \[0.2, 0.0, 0.2\] must be positive",
             model={"preprocess": {"std": [0.2, 0.0, 0.2]}})
    rejected("invalid value for config key 'model.preprocess.crop': Input should be a valid "
             "integer", model={"preprocess": {"crop": "big"}})
    rejected(r"invalid value for config key 'model.preprocess.mean.1': Input should be a valid "
             "number", model={"preprocess": {"mean": [0.5, "x", 0.5]}})
