"""Config errors, in-process: one line that names the full key (and the valid choices), a
non-zero exit, no traceback, nothing published. Everything here fails before any stage runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import error_line

CASES = [
    # id, arguments, texts the error line must contain
    ("typo in a key", ["recipe=small_int8", "calibration.num_sample=10"],
     ["unknown config key 'calibration.num_sample'", "did you mean 'calibration.num_samples'"]),
    ("unknown key via +", ["recipe=small", "+validate.min_cosin=0.9"], ["unknown config key 'validate.min_cosin'"]),
    ("+ key inside a list", ["recipe=small", "+model.inputs.0.nam=x"], ["model.inputs.0.nam"]),
    ("unknown top-level key", ["recipe=small", "+speed=fast"], ["unknown config key 'speed'"]),
    ("_target_ is not a key", ["recipe=small", "+model._target_=os.system"], ["sets an instantiation key"]),
    ("wrong type int", ["recipe=small", "calibration.num_samples=lots"], ["calibration.num_samples", "Integer"]),
    ("wrong type float", ["recipe=small", "validate.min_cosine=high"], ["validate.min_cosine"]),
    ("wrong enum", ["recipe=small", "target.engine=maybe"], ["expected one of [auto, build, kit]"]),
    ("unknown dataset kind", ["recipe=small", "calibration.dataset=imagenet"], ["sample_photos, image_folder, npz"]),
    ("unknown recipe", ["recipe=nope"], ["unknown recipe 'nope'", "efficientnet_lite0_int8", "small"]),
    ("unknown target", ["recipe=small", "target=amd"], ["unknown target 'amd'", "intel, nvidia"]),
    ("unknown precision", ["recipe=small", "precision=int2"],
     ["unknown precision 'int2'", "bf16, fp16, fp32, fp8, int4, int8"]),
    ("unknown pass", ["recipe=small", "passes=[fold_constant]"], ["unknown pass 'fold_constant'", "fold_constants"]),
    ("bad pass parameter", ["recipe=small", "passes=[{name:fold_constants,size:1}]"], ["fold_constants", "'size'"]),
    ("recipe escapes its dir", ["recipe=../../etc/passwd"], ["not a plain name"]),
    ("recipe by absolute path", ["recipe=/etc/passwd"], ["not a plain name"]),
    ("recipe in a sub-directory", ["recipe=sub/dir"], ["not a plain name"]),
    ("no recipe", [], ["optbuild recipe=NAME"]),
    ("missing model file", ["recipe=small", "model.path=<tmp>/missing.onnx"], ["is not a file"]),
    ("onnx source without path", ["recipe=small", "model.path=null"], ["needs model.path"]),
    ("non-positive shape", ["recipe=small", "model.inputs=[{name:input,shape:[0,3,32,32]}]"], ["positive size"]),
    ("int8 without calibration", ["recipe=small_int8", "calibration.dataset=null"], ["needs a calibration dataset"]),
    ("zero samples", ["recipe=small_int8", "calibration.num_samples=0"], ["calibration.num_samples=0", "at least 1"]),
    ("negative seed", ["recipe=small", "validate.seed=-1"], ["validate.seed=-1"]),
    ("no benchmark iterations", ["recipe=small", "benchmark.iterations=0"], ["benchmark.iterations=0"]),
    ("no throughput time", ["recipe=small", "benchmark.throughput_seconds=0"], ["benchmark.throughput_seconds=0"]),
    ("remeasure token with a space", ["recipe=small", "benchmark.remeasure='next week'"],
     ["benchmark.remeasure='next week' must be a short token", "e.g. benchmark.remeasure=2026-11-25"]),
    ("remeasure token with a slash", ["recipe=small", "benchmark.remeasure=a/b"], ["benchmark.remeasure='a/b'"]),
    ("gate given in percent", ["recipe=small", "validate.min_top1_agreement=95"],
     ["validate.min_top1_agreement=95.0 is out of range"]),
    ("labeled gate on photos", ["recipe=small", "validate.max_top1_drop=0.01"], ["validate.max_top1_drop needs labels"]),
    ("top1 control on photos", ["recipe=small_int8", "quantize.accuracy_control.enabled=true",
                                "quantize.accuracy_control.metric=top1"], ["metric=top1 needs labels"]),
    ("control drop in percent", ["recipe=small_int8", "quantize.accuracy_control.max_drop=5"],
     ["max_drop=5.0 must be a fraction"]),
    ("unknown label class", ["recipe=small", "validate.dataset=fashion_mnist", "+validate.label_map.Hat=1"], ["label_map names classes ['Hat'] that fashion_mnist does not have"]),
    ("label_map on photos", ["recipe=small", "+validate.label_map.cat=1"], ["has no labels, so 'label_map'"]),
    ("negative label index", ["recipe=small", "validate.dataset=fashion_mnist", "+validate.label_map.Bag=-1"],
     ["label_map['Bag'] is -1"]),
    ("split on a folder", ["recipe=small", "validate.dataset=image_folder", "validate.path=<tmp>", "validate.split=test"],
     ["has no splits"]),
    ("npz without path", ["recipe=small_int8", "calibration.dataset=npz"], ["needs a 'path'"]),
    ("a shape the model does not have", ["recipe=small", "model.inputs=[{name:input,shape:[1,3,32,48]}]"],
     ["model.inputs gives 'input' shape [1, 3, 32, 48] but the model has input[1, 3, 32, 32]"]),
    ("an input the model does not have", ["recipe=small", "model.inputs=[{name:image,shape:[1,3,32,32]}]"],
     ["the model has no input 'image' (its inputs: input float32[1, 3, 32, 32])"]),
    ("a dtype the model does not take", ["recipe=small", "validate.dataset=synthetic",
                                         "model.inputs=[{name:input,dtype:int64,shape:[1,3,32,32]}]"],
     ["gives 'input' dtype int64 but the model takes float32"]),
    ("a dynamic range upside down", ["recipe=small",
                                     "model.inputs=[{name:input,shape:[-1,3,32,32],dims:{0:{min:4,opt:2,max:8}}}]"],
     ["model.inputs.0.dims.0 is min 4, opt 2, max 8"]),
    ("a dynamic dimension without range", ["recipe=small", "model.inputs=[{name:input,shape:[1,3,h,32]}]"],
     ["dimension 2 (h) is dynamic: give its range"]),
    ("a range the model does not allow", ["recipe=small",
                                          "model.inputs=[{name:input,shape:[-1,3,32,32],dims:{0:{min:1,opt:2,max:8}}}]"],
     ["dimension 0 ranges 1..8, but the model fixes it at 1"]),
    ("a metric on an output the model lacks", ["recipe=small", "validate.metrics=[{name:cosine,output:boxes}]"],
     ["names output 'boxes', which the model does not have (its outputs: logits)"]),
    ("IoU on logits of rank 2", ["recipe=small", "validate.metrics=[{name:mask_iou,output:logits}]"],
     ["mask_iou does not fit output 'logits' (rank 2; it needs rank 3 or 4)"]),
    ("a metric that fits no output", ["recipe=small", "validate.metrics=[{name:sequence_agreement}]"],
     ["sequence_agreement fits none of the outputs (logits: rank 2)"]),
    ("an unknown metric", ["recipe=small", "validate.metrics=[{name:f1}]"], ["unknown metric 'f1'"]),
    ("a labeled metric on unlabeled data", ["recipe=small", "validate.metrics=[{name:top1,min:0.5}]"],
     ["validate.metrics[0] top1 needs labels but validate.dataset=sample_photos has none"]),
    ("a labeled gate on synthetic data", ["recipe=small", "validate.dataset=synthetic", "validate.min_top1=0.5"],
     ["validate.min_top1 needs labels but validate.dataset=synthetic has none"]),
    ("a text dataset without a tokenizer", ["recipe=small", "validate.dataset=text", "validate.path=<a_file>"],
     ["a text dataset needs the model's tokenizer"]),
    ("masks from a dataset that has none", ["recipe=small", "validate.targets=masks"],
     ["dataset 'sample_photos' has no masks"]),
    ("accuracy control on a lower-is-better metric", ["recipe=small_int8", "quantize.accuracy_control.enabled=true",
                                                       "quantize.accuracy_control.metric=rel_l2"],
     ["quantize.accuracy_control.metric=rel_l2 cannot be optimized"]),
    ("smooth quant out of range", ["recipe=small_int8", "quantize.smooth_quant_alpha=2"],
     ["quantize.smooth_quant_alpha=2.0 must be in 0..1"]),
    ("a range for a static dimension", ["recipe=small",
                                        "model.inputs=[{name:input,shape:[1,3,32,32],dims:{h:{min:1,opt:2,max:3}}}]"],
     ["has a range for 'h', which is not one of its dynamic dimensions"]),
    ("crop larger than resize", ["recipe=small", "model.preprocess.crop=400"], ["crop 400 must be between 1 and resize"]),
    ("empty calibration folder", ["recipe=small_int8", "calibration.dataset=image_folder",
                                  "calibration.path=<empty_dir>"], ["<empty_dir>", "has no images"]),
    ("calibration folder missing", ["recipe=small_int8", "calibration.dataset=image_folder",
                                    "calibration.path=<tmp>/nowhere"], ["nowhere"]),
    ("calibration path is a file", ["recipe=small_int8", "calibration.dataset=image_folder",
                                    "calibration.path=<a_file>"], ["not a directory"]),
    ("too few images", ["recipe=small_int8", "calibration.dataset=image_folder", "calibration.path=<few_images>",
                        "calibration.num_samples=50"], ["num_samples"]),
    ("tune precision below the build", ["recipe=small", "tune.enabled=true", "tune.inference_precisions=[f16]"],
     ["tune.inference_precisions=['f16'] for precision=fp32"]),
    ("tune without batches", ["recipe=small", "tune.enabled=true", "tune.batches=[]"], ["tune.batches"]),
    ("trt optimization level", ["recipe=small", "target=nvidia", "target.engine=kit",
                                "target.tensorrt.optimization_level=9"], ["optimization_level is 9: use 0..5"]),
    ("profile names no input", ["recipe=small", "target=nvidia", "target.engine=kit",
                                "target.tensorrt.profiles=[{shapes:[{input:image,min:[1],opt:[1],max:[1]}]}]"],
     ["names input 'image', which is not in model.inputs"]),
    ("missing timing cache", ["recipe=small", "target=nvidia", "target.engine=kit",
                              "target.tensorrt.timing_cache=<tmp>/none.cache"], ["timing_cache", "is not a file"]),
    ("unwritable output dir", ["recipe=small", "out_dir=<a_file>/outputs"], ["choose a writable"]),
    ("unknown command", ["frobnicate"], ["unknown command 'frobnicate'"]),
    ("resize inside a TensorRT graph", ["recipe=small", "target=nvidia", "target.engine=kit", "serve.resize=true"],
     ["serve.resize=true is for target=intel"]),
    ("resize without pixels", ["recipe=small", "serve.embed_preprocess=false", "serve.resize=true"],
     ["serve.resize=true", "needs serve.embed_preprocess"]),
    ("pixels validated on arrays", ["recipe=small", "serve.embed_preprocess=true", "validate.dataset=npz",
                                    "validate.path=<wrong_npz>"], ["serve.embed_preprocess=true", "is not images"]),
    ("unknown pixel layout", ["recipe=small", "serve.layout=HWC"], ["serve.layout", "NHWC"]),
]


def fill(text: str, files: dict[str, str]) -> str:
    """`<name>` placeholders replaced by the files the fixture made."""
    for name, path in files.items():
        text = text.replace(f"<{name}>", path)
    return text


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, str]:
    import numpy as np
    from PIL import Image

    paths: dict[str, Path] = {"tmp": tmp_path}
    paths["empty_dir"] = tmp_path / "empty"
    paths["empty_dir"].mkdir()
    paths["few_images"] = tmp_path / "few"
    paths["few_images"].mkdir()
    Image.new("L", (40, 40), 128).save(paths["few_images"] / "gray.png")
    paths["wrong_npz"] = tmp_path / "wrong.npz"
    np.savez(paths["wrong_npz"], x=np.zeros((4, 3, 16, 16), np.float32))
    paths["a_file"] = tmp_path / "a_file"
    paths["a_file"].write_text("")
    return {k: str(v) for k, v in paths.items()}


@pytest.mark.parametrize(("args", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_config_error_is_one_line_and_publishes_nothing(run, files: dict[str, str], tmp_path: Path,
                                                        args: list[str], expected: list[str]) -> None:
    result = run(*[fill(a, files) for a in args])
    line = error_line(result)
    for text in expected:
        assert fill(text, files) in line
    assert result.returncode == 1
    assert not list(tmp_path.glob("outputs/*/*/v*"))


def test_typo_inside_a_recipe_file_names_the_key(run, small_recipe_dir: Path) -> None:
    (small_recipe_dir / "typo.yaml").write_text("# @package _global_\nvalidate: {min_cosin: 0.9}\n")
    try:
        line = error_line(run("recipe=typo"))
    finally:
        (small_recipe_dir / "typo.yaml").unlink()
    assert "validate.min_cosin" in line and "validate.min_cosine" in line


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("broken", "model: [unclosed\n", "cannot be read as YAML"),
    ("evil", "# @package _global_\nmodel: {_target_: os.system}\n", "'model._target_' is an instantiation key"),
    ("hydra_callback", "# @package _global_\nhydra:\n  callbacks:\n    run:\n      _target_: os.system\n"
                       "      command: touch /tmp/optbuild-pwned\n", "sets 'hydra' settings"),
])
def test_bad_recipe_files_are_named(run, small_recipe_dir: Path, name: str, text: str, expected: str) -> None:
    (small_recipe_dir / f"{name}.yaml").write_text(text)
    try:
        line = error_line(run(f"recipe={name}"))
    finally:
        (small_recipe_dir / f"{name}.yaml").unlink()
    assert expected in line
    assert name in line or expected.startswith("unknown config key")
    assert not Path("/tmp/optbuild-pwned").exists()


def test_debug_shows_the_traceback(run) -> None:
    result = run("recipe=small", "calibration.dataset=imagenet", "debug=true")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_help_without_a_recipe_lists_usage_and_recipes(run) -> None:
    result = run("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: optbuild recipe=NAME")
    assert "efficientnet_lite0_int8" in result.stdout and "small" in result.stdout


def test_passes_verb_lists_passes_with_parameters(run) -> None:
    result = run("passes")
    assert result.returncode == 0, result.stderr
    assert "fold_constants(size_threshold_bytes" in result.stdout
    assert "set_input_shape(input: str" in result.stdout


@pytest.mark.parametrize("override, says", [
    ("tune.hints=[]", "tune.hints=[]"),
    ("tune.hints=[FASTEST]", "LATENCY, THROUGHPUT"),
    ("tune.batches=[1,0]", "tune.batches=[1, 0] must list batch sizes >= 1"),
    ("tune.seconds=-1", "tune.seconds=-1.0 must be between 0 and 600"),
    ("tune.streams=[-1]", "stream counts >= 0"),
    ("tune.inference_precisions=[bf16]", "precision=fp32: use a subset of ['f32']"),
])
def test_bad_tune_settings_fail_before_any_work(run, tmp_path: Path, override: str, says: str):
    line = error_line(run("recipe=small", "tune.enabled=true", override))
    assert says in line
    assert not (tmp_path / "outputs/.cache/actions").exists()


@pytest.mark.parametrize("overrides, says", [
    (("precision=fp8",), "precision=fp8 is for target=nvidia"),
    (("precision=fp8", "target=nvidia", "target.engine=kit", "calibration.dataset=null"),
     "precision=fp8 needs a calibration dataset"),
])
def test_fp8_is_refused_where_it_cannot_build_before_any_work(run, tmp_path: Path, overrides, says: str):
    line = error_line(run("recipe=small", *overrides))
    assert says in line
    assert not (tmp_path / "outputs/.cache/actions").exists()


NVIDIA_KIT = ("target=nvidia", "target.engine=kit")


@pytest.mark.parametrize("overrides, says", [
    (("precision=int4",), "precision=int4 is for target=nvidia (TensorRT's INT4 weight-only GEMMs); target=intel "
                          "builds fp32, fp16, bf16 or int8"),
    (("precision=int4", *NVIDIA_KIT, "calibration.dataset=null"),
     "precision=int4 with target.tensorrt.int4_method=awq_lite needs a calibration dataset"),
    (("precision=int4", *NVIDIA_KIT, "target.tensorrt.int4_block_size=32"),
     "target.tensorrt.int4_block_size is 32: TensorRT's INT4 weights take blocks of 64 or 128"),
    (("precision=int4", *NVIDIA_KIT, "calibration.dataset=synthetic", "quantize.accuracy_control.enabled=true"),
     "precision=int4 is weight-only and has no such search"),
])
def test_int4_is_refused_where_it_cannot_build_before_any_work(run, tmp_path: Path, overrides, says: str):
    line = error_line(run("recipe=small", *overrides))
    assert says in line
    assert not (tmp_path / "outputs/.cache/actions").exists()
