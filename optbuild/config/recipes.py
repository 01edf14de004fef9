"""Recipe discovery: the packaged `recipes/` plus every directory on OPTBUILD_RECIPE_PATH.

A flat folder of YAML files is not a Hydra group by itself, so each recipe is registered into
the ConfigStore under group `recipe` (package `_global_`) before Hydra composes the config.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from hydra.core.config_store import ConfigStore

from optbuild.errors import OptbuildError

ENV_VAR = "OPTBUILD_RECIPE_PATH"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class RecipeFile:
    name: str
    path: Path
    sha256: str


def recipe_dirs(extra: tuple[Path, ...] = ()) -> list[Path]:
    """User directories first (they may shadow a packaged recipe), then the packaged one."""
    dirs = [*extra, *(Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p)]
    dirs.append(Path(str(resources.files("optbuild.recipes"))))
    return dirs


def discover(extra: tuple[Path, ...] = ()) -> dict[str, RecipeFile]:
    found: dict[str, RecipeFile] = {}
    for directory in recipe_dirs(extra):
        if not directory.is_dir():
            raise OptbuildError(
                f"{ENV_VAR} lists '{directory}', which is not a directory: fix or remove that entry"
            )
        for path in sorted(directory.glob("*.yaml")):
            name = path.stem
            if name in found or not _NAME.match(name):
                continue
            resolved = path.resolve()
            found[name] = RecipeFile(name, resolved, hashlib.sha256(resolved.read_bytes()).hexdigest())
    return found


def check_name(name: str, recipes: dict[str, RecipeFile]) -> RecipeFile:
    """A recipe is chosen by bare name only: no path, so it cannot escape its directory."""
    if not _NAME.match(name):
        raise OptbuildError(
            f"recipe name '{name}' is not a plain name; put the file in a directory on {ENV_VAR} "
            "and pass its name without path or extension"
        )
    if name not in recipes:
        raise OptbuildError(
            f"unknown recipe '{name}'; available: {', '.join(sorted(recipes)) or 'none'} "
            f"(add directories to {ENV_VAR} for your own)"
        )
    return recipes[name]


def load(recipe: RecipeFile) -> dict:
    """The recipe's YAML as plain data (safe_load: a recipe can never construct objects)."""
    try:
        node = yaml.safe_load(recipe.path.read_text())
    except (OSError, yaml.YAMLError) as err:
        problem = " ".join(str(err).split())
        raise OptbuildError(f"recipe file {recipe.path} cannot be read as YAML: {problem}") from err
    if not isinstance(node, dict):
        raise OptbuildError(f"recipe file {recipe.path} must hold a mapping of config sections")
    if "hydra" in node:  # Hydra instantiates e.g. hydra.callbacks: a recipe must never run code
        raise OptbuildError(
            f"recipe file {recipe.path} sets 'hydra' settings, which recipes may not do; "
            "pass launcher or output options on the command line instead"
        )
    return node


def register(recipes: dict[str, RecipeFile]) -> None:
    """Register every readable recipe; a broken one is reported only when it is chosen."""
    store = ConfigStore.instance()
    for recipe in recipes.values():
        try:
            node = load(recipe)
        except OptbuildError:
            continue
        store.store(group="recipe", name=recipe.name, node=node, package="_global_")
