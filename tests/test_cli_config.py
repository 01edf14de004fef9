"""The command line and the composed config: choices, overrides and one-line errors."""

from __future__ import annotations

from pathlib import Path

from conftest import error_line, manifest_of


def test_typo_in_calibration_key_names_the_full_key(cli):
    line = error_line(cli("recipe=tiny_int8", "calibration.num_sample=10"))
    assert "calibration.num_sample'" in line
    assert "calibration.num_samples" in line  # the suggestion


def test_plus_key_cannot_bypass_the_schema(cli):
    line = error_line(cli("recipe=tiny", "+calibration.num_sampels=10"))
    assert "unknown config key 'calibration.num_sampels'" in line
    line = error_line(cli("recipe=tiny", "+model.inputs.0.nam=x"))
    assert "model.inputs.0.nam" in line


def test_typo_inside_a_recipe_file_names_the_key(cli, recipe_dir: Path):
    (recipe_dir / "typo.yaml").write_text("# @package _global_\nvalidate: {min_cosin: 0.9}\n")
    line = error_line(cli("recipe=typo"))
    assert "validate.min_cosin" in line and "validate.min_cosine" in line


def test_wrong_types_and_unknown_options_name_the_valid_choices(cli):
    assert "expected one of [auto, build, kit]" in error_line(cli("recipe=tiny", "target.engine=maybe"))
    assert "Integer" in error_line(cli("recipe=tiny", "calibration.num_samples=many"))
    line = error_line(cli("recipe=tiny", "precision=int4"))
    assert "unknown precision 'int4'" in line and "bf16, fp16, fp32, int8" in line
    line = error_line(cli("recipe=tiny", "target=amd"))
    assert "unknown target 'amd'" in line and "intel, nvidia" in line
    line = error_line(cli("recipe=tiny", "calibration.dataset=imagenet"))
    assert "sample_photos, image_folder, npz" in line


def test_unknown_recipe_lists_the_available_ones(cli):
    line = error_line(cli("recipe=nope"))
    assert "unknown recipe 'nope'" in line
    assert "efficientnet_lite0_int8" in line and "tiny" in line


def test_recipe_names_cannot_escape_their_directory(cli):
    for name in ("../etc/passwd", "/etc/passwd", "sub/dir"):
        assert "not a plain name" in error_line(cli(f"recipe={name}"))


def test_missing_recipe_says_how_to_give_one(cli):
    assert "optbuild recipe=NAME" in error_line(cli())


def test_broken_recipe_file_is_named(cli, recipe_dir: Path):
    (recipe_dir / "broken.yaml").write_text("model: [unclosed\n")
    line = error_line(cli("recipe=broken"))
    assert "broken.yaml" in line and "YAML" in line


def test_int8_needs_a_calibration_dataset(cli):
    line = error_line(cli("recipe=tiny", "precision=int8", "calibration.dataset=null"))
    assert "calibration.dataset" in line


def test_unknown_pass_and_bad_pass_parameter(cli):
    line = error_line(cli("recipe=tiny", "passes=[fold_constant]"))
    assert "unknown pass 'fold_constant'" in line and "fold_constants" in line
    line = error_line(cli("recipe=tiny", "passes=[{name:fold_constants,size:3}]"))
    assert "fold_constants" in line and "'size'" in line


def test_unknown_verb(cli):
    line = error_line(cli("frobnicate"))
    assert "unknown command 'frobnicate'" in line


def test_passes_verb_lists_passes_with_parameters(cli):
    result = cli("passes")
    assert result.returncode == 0, result.stderr
    assert "fold_constants(size_threshold_bytes" in result.stdout
    assert "set_input_shape(input: str" in result.stdout


def test_debug_shows_the_traceback(cli):
    result = cli("recipe=tiny", "calibration.dataset=imagenet", "debug=true")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_recipe_default_precision_and_command_line_wins(cli, tmp_path: Path):
    result = cli("recipe=tiny_int8", "precision=fp32", "benchmark.enabled=false", "validate.enabled=false")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "outputs/tiny_int8/intel-fp32/v1").is_dir()
    assert not (tmp_path / "outputs/tiny_int8/intel-int8").exists()
    manifest = manifest_of(tmp_path / "outputs/tiny_int8/intel-fp32/v1")
    assert manifest["precision"] == "fp32"
    assert "precision=fp32" in manifest["overrides"]


def test_help_without_a_recipe_lists_usage_and_recipes(cli):
    result = cli("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: optbuild recipe=NAME")
    assert "efficientnet_lite0_int8" in result.stdout and "tiny" in result.stdout
