"""`optbuild verify --rebuild`: build again from what the manifest records, and compare.

It replays data, not commands: the manifest's resolved config goes through the same checks and
validation as any build (a crafted manifest can at most ask for a build its reader could have
asked for), with the output and cache in a temporary directory; its recorded command-line
overrides are never replayed. Paths in a manifest are portable (config/paths.py): each is looked
for under the `--data` directories, then the current directory, then where the recipe (found by
name, with the recorded sha256) says; the content digests recorded with each stage then show
whether the same files were read.
"""

from __future__ import annotations

import copy
import io
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from optbuild.build import build
from optbuild.config import recipes
from optbuild.config.paths import PATH_KEYS, get, looks_like_path, set_value
from optbuild.config.recipes import RecipeFile
from optbuild.config.trust import check_data
from optbuild.config.validate import check
from optbuild.errors import OptbuildError
from optbuild.publish.compare import compare_stages
from optbuild.publish.manifest import MANIFEST, Finding, load_manifest

PLACES = ("out_dir", "cache_dir")


def _recipe_paths(manifest: dict[str, Any]) -> dict[str, Any]:
    """The recipe file's own values (for its paths), when the same recipe is here."""
    recipe = manifest["recipe"]
    found = recipes.discover().get(recipe["name"])
    if found is None or found.sha256 != recipe["sha256"]:
        return {}
    try:
        return recipes.load(found)
    except OptbuildError:
        return {}


def _locate(key: str, recorded: str, data: list[Path], recipe: dict[str, Any]) -> str:
    candidates = [directory / recorded for directory in data] + [Path.cwd() / recorded]
    own = get(recipe, key)
    if isinstance(own, str) and Path(own).name == Path(recorded).name:
        candidates.append(Path(own).expanduser())
    for candidate in candidates:
        if candidate.exists():
            return str(candidate.resolve())
    raise OptbuildError(f"the rebuild needs {key} '{recorded}', which is not here: run verify --rebuild from the "
                        "directory the build ran in, or give --data DIR for the directory that holds it")


def rebuild_config(manifest: dict[str, Any], data: list[Path], out_dir: Path) -> dict[str, Any]:
    """The recorded config, checked as plain data, its paths found, its output in `out_dir`."""
    config = manifest["config"]
    if not isinstance(config, dict):
        raise OptbuildError("the manifest records no config to rebuild from")
    check_data("the manifest's config", config)
    config = copy.deepcopy(config)
    recipe = _recipe_paths(manifest)
    for key in PATH_KEYS:
        value = get(config, key)
        if key not in PLACES and looks_like_path(key, value):
            set_value(config, key, _locate(key, value, data, recipe))
    config.update(out_dir=str(out_dir), cache_dir=str(out_dir / ".cache"), progress=False, debug=False,
                  passes_only=False)
    return config


def check_rebuild(version_dir: Path, manifest: dict[str, Any], data: list[Path]) -> list[Finding]:
    recipe = manifest["recipe"]
    with tempfile.TemporaryDirectory(prefix="optbuild-verify-") as tmp:
        out_dir = Path(tmp)
        try:
            config = rebuild_config(manifest, data, out_dir)
            typed = check(config)  # the same validation as a normal build
        except OptbuildError as err:
            return [Finding(False, "rebuild", f"not rebuilt: {err.message}")]
        source = RecipeFile(recipe["name"], Path(str(recipe.get("path", ""))), recipe["sha256"],
                            bool(recipe.get("packaged")))
        fresh_dir = out_dir / recipe["name"] / f"{manifest['target']}-{manifest['precision']}" / "v1"
        try:
            build(typed, source, [], config, str(out_dir / "rebuild.log"), Console(file=io.StringIO()))
        except OptbuildError as err:
            # A version that failed its gates reproduces by failing them again, with the same outputs.
            if not (manifest.get("status") == "failed" and (fresh_dir / MANIFEST).is_file()):
                return [Finding(False, "rebuild", f"the rebuild failed: {err.message}")]
        return compare_stages(manifest, load_manifest(fresh_dir))
