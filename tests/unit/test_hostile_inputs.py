"""Hostile recipes, command lines, numbers and paths: refused before any stage runs.

Each case asserts the exit code, exactly one `optbuild: error:` line, no traceback, nothing
written or changed outside out_dir, and for the cases that would run code, that the payload did
not run (its marker file does not exist). Hostile manifests, artifacts, models and data files
are in tests/integration/test_hostile_artifacts.py.
"""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path

import pytest
from conftest import error_line

# Every payload tries to create this file (in the test's own directory).
MARKER = "pwned"


def touch(path: Path) -> str:
    return f"import pathlib; pathlib.Path('{path}').touch()"


RECIPES = [
    # id, recipe text (<marker> is the payload's target), text the error line must contain
    ("hydra callbacks", """
        hydra:
          callbacks:
            run: {_target_: builtins.open, file: <marker>, mode: w}
        """, "sets 'hydra' settings"),
    ("hydra env_set", """
        hydra: {job: {env_set: {PYTHONSTARTUP: <marker>}}}
        """, "sets 'hydra' settings"),
    ("a defaults entry into hydra", """
        defaults: [{"/hydra/callbacks@hydra.callbacks": x}, _self_]
        """, "is not allowed: a recipe may only build on another recipe by name"),
    ("a launcher override", """
        defaults: [{"override /hydra/launcher": joblib}, _self_]
        """, "is not allowed"),
    ("a package into hydra", """
        defaults: ["x@hydra", _self_]
        """, "is not allowed"),
    ("another recipe by group path", """
        defaults: [{"/recipe": small}, _self_]
        """, "is not allowed"),
    ("itself", """
        defaults: [evil, _self_]
        """, "recipe evil includes itself: evil -> evil"),
    ("a recipe that does not exist", """
        defaults: [nonesuch, _self_]
        """, "builds on recipe 'nonesuch', which does not exist"),
    ("defaults not a list", """
        defaults: {target: intel}
        """, "'defaults' must be a list"),
    ("_target_ in a section", """
        model: {_target_: os.system}
        """, "'model._target_' is an instantiation key"),
    ("_target_ in a pass", """
        passes: [{name: cleanup, _target_: os.system}]
        """, "'passes.0._target_' is an instantiation key"),
    ("_partial_ anywhere", """
        validate: {label_map: {_partial_: true}}
        """, "instantiation key"),
    ("an environment resolver", """
        model: {name: "${oc.env:HOME}"}
        """, "calls the resolver 'oc.env'"),
    ("a decode resolver", """
        calibration: {num_samples: "${oc.decode:'3'}"}
        """, "calls the resolver 'oc.decode'"),
    ("a resolver inside a list", """
        passes: ["${oc.env:PATH}"]
        """, "calls the resolver"),
    ("a python object tag", """
        model: !!python/object/apply:os.system ["touch <marker>"]
        """, "cannot be read as YAML"),
    ("a python name tag", """
        model: {name: !!python/name:os.system ''}
        """, "cannot be read as YAML"),
    ("binary data", """
        model: {name: !!binary aGVsbG8=}
        """, "is a bytes"),
    ("a set", """
        passes: !!set {cleanup, fold_constants}
        """, "is a set"),
    ("a date", """
        model: {name: 2024-01-01}
        """, "is a date"),
    ("an alias bomb", "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(6)),
     "expands to more than"),
    ("not a mapping", """
        - model
        - passes
        """, "must hold a mapping"),
    ("unknown section", """
        hydra_settings: {x: 1}
        """, "unknown config key 'hydra_settings'"),
]


@pytest.fixture()
def hostile(tmp_path: Path, small_recipe_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A recipe directory of this test's own: the small recipes, plus whatever the test adds."""
    folder = tmp_path / "recipes"
    folder.mkdir()
    for recipe in small_recipe_dir.glob("*.yaml"):
        (folder / recipe.name).write_text(recipe.read_text())
    monkeypatch.setenv("OPTBUILD_RECIPE_PATH", str(folder))
    return folder


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file below `root` except the output tree, with its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if p.is_file() and "outputs" not in p.relative_to(root).parts}


def refused(run, tmp_path: Path, *args: str) -> str:
    """The one error line; and nothing ran, was published, or changed outside out_dir."""
    before = snapshot(tmp_path)
    line = error_line(run(*args))
    assert snapshot(tmp_path) == before
    assert not list(tmp_path.glob("outputs/*/*/v*"))
    assert not (tmp_path / MARKER).exists()
    return line


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in RECIPES], ids=[c[0] for c in RECIPES])
def test_a_hostile_recipe_is_refused_naming_its_file(run, hostile: Path, tmp_path: Path, text: str,
                                                     expected: str) -> None:
    (hostile / "evil.yaml").write_text(textwrap.dedent(text).replace("<marker>", str(tmp_path / MARKER)))
    line = refused(run, tmp_path, "recipe=evil")
    assert expected in line
    assert "evil" in line or expected.startswith("unknown config key")


def test_a_cycle_through_other_recipes_is_named(run, hostile: Path, tmp_path: Path) -> None:
    (hostile / "evil.yaml").write_text("defaults: [middle, _self_]\n")
    (hostile / "middle.yaml").write_text("defaults: [evil, _self_]\n")
    assert "recipe evil includes itself: evil -> middle -> evil" in refused(run, tmp_path, "recipe=evil")


def test_a_recipe_that_builds_on_another_still_works(run, hostile: Path, tmp_path: Path) -> None:
    (hostile / "child.yaml").write_text("defaults: [small, _self_]\nmodel: {name: child}\n")
    result = run("--cfg", "job", "recipe=child")
    assert result.returncode == 0, result.stderr
    assert "name: child" in result.stdout and "small.onnx" in result.stdout


def test_a_broken_recipe_nobody_chose_does_not_block_the_others(run, hostile: Path, tmp_path: Path) -> None:
    (hostile / "evil.yaml").write_text("hydra: {callbacks: {}}\n")
    (hostile / "unreadable.yaml").mkdir()  # reading it fails (as a root user reads any file)
    result = run("--cfg", "job", "recipe=small")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("optbuild: warning:")]
    assert any("recipe evil skipped" in w and "evil.yaml" in w for w in warnings)
    assert any("recipe unreadable skipped" in w and "cannot be read" in w for w in warnings)
    assert "unreadable.yaml" in refused(run, tmp_path, "recipe=unreadable")


COMMAND_LINES = [
    ("env_set", ["+hydra.job.env_set.PYTHONSTARTUP=<marker>"], "sets a Hydra setting optbuild does not accept"),
    ("callbacks", ["+hydra.callbacks.x._target_=builtins.print"], "sets a Hydra setting"),
    ("job logging group", ["hydra/job_logging=default"], "sets a Hydra setting"),
    ("sweeper group", ["hydra/sweeper=basic"], "sets a Hydra setting"),
    ("hydra job settings", ["hydra.job.chdir=true"], "sets a Hydra setting"),
    ("launcher shell setup", ["hydra/launcher=slurm", "hydra.launcher.setup=[touch <marker>]"], "sets a Hydra setting"),
    ("launcher environment", ["hydra/launcher=ray", "+hydra.launcher.init.runtime_env.env_vars.X=1"],
     "sets a Hydra setting"),
    ("launcher _target_", ["hydra.launcher._target_=os.system"], "sets a Hydra setting"),
    ("unknown launcher", ["hydra/launcher=evil"], "unknown launcher"),
    ("rerun a pickle", ["--experimental-rerun", "<pickle>"], "--experimental-rerun is not accepted"),
    ("config dir", ["--config-dir", "<tmp>"], "--config-dir is not accepted"),
    ("config dir, short", ["-cd", "<tmp>"], "-cd is not accepted"),
    ("config name", ["--config-name=evil"], "--config-name is not accepted"),
    ("config path", ["--config-path", "<tmp>"], "--config-path is not accepted"),
    ("shell completion", ["--shell-completion", "install=bash"], "--shell-completion is not accepted"),
    ("an unknown option", ["--frobnicate"], "--frobnicate is not accepted"),
    ("an environment resolver", ["model.name=${oc.env:HOME}"], "calls the resolver 'oc.env'"),
    ("a resolver in a run dir", ["hydra.run.dir=${oc.env:HOME}"], "calls the resolver 'oc.env'"),
    ("_target_ in a key", ["+model._target_=os.system"], "sets an instantiation key"),
    ("a group optbuild lacks", ["db/mysql=x"], "chooses a config group optbuild does not have"),
    ("the recipe twice", ["recipe=small_int8"], "'recipe' is given twice"),
    ("a key twice", ["model.name=a", "+model.name=b"], "'model.name' is given twice"),
    ("a word that is no override", ["fast"], "is not a key=value override"),
]


@pytest.mark.parametrize(("args", "expected"), [c[1:] for c in COMMAND_LINES], ids=[c[0] for c in COMMAND_LINES])
def test_a_hostile_command_line_is_refused(run, hostile: Path, tmp_path: Path, args: list[str],
                                           expected: str) -> None:
    payload = tmp_path / "rerun.pickle"
    payload.write_bytes(pickle.dumps(Payload(tmp_path / MARKER)))
    filled = [a.replace("<marker>", str(tmp_path / MARKER)).replace("<pickle>", str(payload))
              .replace("<tmp>", str(tmp_path)) for a in args]
    assert expected in refused(run, tmp_path, "recipe=small", *filled)


class Payload:
    """Unpickling this runs code: it must never be unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.marker,))


NUMBERS = [
    ("infinite benchmark", "benchmark.throughput_seconds=inf", "benchmark.throughput_seconds=inf must be between"),
    ("hours of benchmark", "benchmark.throughput_seconds=36000", "must be between 0 and 600"),
    ("a billion iterations", "benchmark.iterations=1000000000", "benchmark.iterations=1000000000 must be between"),
    ("negative warm-up", "benchmark.warmup=-1", "benchmark.warmup=-1 must be at least 0"),
    ("a billion samples", "calibration.num_samples=1000000000", "calibration.num_samples=1000000000"),
    ("no validation samples", "validate.num_samples=0", "validate.num_samples=0 must be at least 1"),
    ("a seed out of range", "model.seed=-5", "model.seed=-5 must be between 0 and"),
    ("a huge seed", "calibration.seed=99999999999", "calibration.seed=99999999999"),
    ("endless tuning", "tune.seconds=1e9", "tune.seconds=1000000000.0 must be between 0 and 600"),
    ("tuning at batch 10**6", "tune.batches=[1,1000000]", "tune.batches"),
    ("a NaN gate", "validate.min_cosine=nan", "validate.min_cosine=nan is out of range"),
    ("a gate in percent", "validate.min_top1_agreement=80", "is out of range"),
    ("an opset that does not exist", "export.opset=99", "export.opset=99 must be between 7 and 30"),
    ("negative max_drop", "quantize.accuracy_control.max_drop=-0.1", "must be a fraction"),
    ("a zero-size input", "model.inputs=[{name:input,shape:[1,3,0,32]}]", "positive size"),
    ("an empty out_dir", "out_dir=", "out_dir is empty"),
    ("an empty cache_dir", "cache_dir=", "cache_dir is empty"),
]


@pytest.mark.parametrize(("arg", "expected"), [c[1:] for c in NUMBERS], ids=[c[0] for c in NUMBERS])
def test_an_unbounded_or_empty_value_is_refused_before_any_work(run, tmp_path: Path, arg: str, expected: str) -> None:
    assert expected in refused(run, tmp_path, "recipe=small", arg)
    assert not (tmp_path / "outputs/.cache/actions").exists()


PATHS = [
    ("a recipe by relative path", ["recipe=../recipes/small"], "not a plain name"),
    ("a recipe by absolute path", ["recipe=/etc/passwd"], "not a plain name"),
    ("model from a device", ["recipe=small", "model.path=/dev/zero"], "is not a file"),
    ("model is a directory", ["recipe=small", "model.path=<tmp>"], "is not a file"),
    ("model through a symlink loop", ["recipe=small", "model.path=<loop>"], "is not a file"),
    ("npz from a device", ["recipe=small_int8", "calibration.dataset=npz", "calibration.path=/dev/zero"],
     "is not a file"),
    ("image folder is a file", ["recipe=small_int8", "calibration.dataset=image_folder", "calibration.path=<file>"],
     "not a directory"),
    ("output inside a file", ["recipe=small", "out_dir=<file>/outputs"], "a part of that path is a file"),
    ("timing cache from a device", ["recipe=small", "target=nvidia", "target.engine=kit",
                                    "target.tensorrt.timing_cache=/dev/zero"], "is not a file"),
]


@pytest.mark.parametrize(("args", "expected"), [c[1:] for c in PATHS], ids=[c[0] for c in PATHS])
def test_a_path_that_is_not_what_it_should_be_is_refused(run, tmp_path: Path, args: list[str],
                                                        expected: str) -> None:
    (tmp_path / "a_file").write_text("")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    filled = [a.replace("<tmp>", str(tmp_path)).replace("<file>", str(tmp_path / "a_file"))
              .replace("<loop>", str(tmp_path / "loop")) for a in args]
    assert expected in refused(run, tmp_path, *filled)


VERB_USAGE = [
    ("verify without a path", ["verify"], "optbuild verify: the following arguments are required: path"),
    ("verify with an unknown flag", ["verify", "--frob", "."], "unrecognized arguments: --frob"),
    ("verify of a file", ["verify", "<file>"], "is a file, not an artifact"),
    ("verify of nothing", ["verify", "<tmp>/nope"], "does not exist"),
    ("inspect with two paths", ["inspect", "a", "b"], "give one path"),
    ("report without a directory", ["report"], "usage: optbuild report DIR"),
    ("an unknown verb", ["frobnicate"], "unknown command 'frobnicate'"),
]


@pytest.mark.parametrize(("args", "expected"), [c[1:] for c in VERB_USAGE], ids=[c[0] for c in VERB_USAGE])
def test_a_verb_used_wrongly_is_one_line(run, tmp_path: Path, args: list[str], expected: str) -> None:
    (tmp_path / "a_file").write_text("")
    filled = [a.replace("<tmp>", str(tmp_path)).replace("<file>", str(tmp_path / "a_file")) for a in args]
    assert expected in refused(run, tmp_path, *filled)
