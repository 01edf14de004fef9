"""Recipe discovery: the packaged `recipes/` plus every directory on OPTBUILD_RECIPE_PATH.

A flat folder of YAML files is not a Hydra group by itself, so each recipe is registered into
the ConfigStore under group `recipe` (package `_global_`) before Hydra composes the config. A
recipe is data (config/trust.py): one that cannot be read or breaks the rules is skipped with a
warning naming its file, and is an error only when it is the recipe chosen.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from optbuild.config.trust import check_recipe, included_recipes
from optbuild.core.digest import sha256_file
from optbuild.errors import OptbuildError

ENV_VAR = "OPTBUILD_RECIPE_PATH"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
log = logging.getLogger("optbuild")


@dataclass(frozen=True)
class RecipeFile:
    name: str
    path: Path
    sha256: str
    packaged: bool = False
    problem: str | None = None  # why it cannot be read (then it is never registered)


def packaged_dir() -> Path:
    return Path(str(resources.files("optbuild.recipes")))


def recipe_dirs(extra: tuple[Path, ...] = ()) -> list[Path]:
    """User directories first (they may shadow a packaged recipe), then the packaged one."""
    dirs = [*extra, *(Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p)]
    dirs.append(packaged_dir())
    return dirs


def _entry(name: str, path: Path, packaged: bool) -> RecipeFile:
    resolved = path.resolve()
    try:
        return RecipeFile(name, resolved, sha256_file(resolved), packaged)
    except OSError as err:
        return RecipeFile(name, resolved, "", packaged, f"cannot be read ({err.strerror or err})")


def discover(extra: tuple[Path, ...] = ()) -> dict[str, RecipeFile]:
    found: dict[str, RecipeFile] = {}
    packaged = packaged_dir()
    for directory in recipe_dirs(extra):
        if not directory.is_dir():
            raise OptbuildError(f"{ENV_VAR} lists '{directory}', which is not a directory: fix or remove that entry")
        for path in sorted(directory.glob("*.yaml")):
            if path.stem not in found and _NAME.match(path.stem):
                found[path.stem] = _entry(path.stem, path, directory == packaged)
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


def load(recipe: RecipeFile) -> dict[str, Any]:
    """The recipe's YAML as plain data, checked against what a recipe may say. safe_load: a
    recipe can never construct objects."""
    if recipe.problem:
        raise OptbuildError(f"recipe file {recipe.path} {recipe.problem}: check its permissions")
    try:
        node = yaml.safe_load(recipe.path.read_text())
    except OSError as err:
        raise OptbuildError(f"recipe file {recipe.path} cannot be read ({err.strerror or err}): check its "
                            "permissions") from err
    except (yaml.YAMLError, ValueError) as err:
        problem = " ".join(str(err).split())
        raise OptbuildError(f"recipe file {recipe.path} cannot be read as YAML: {problem}") from err
    check_recipe(recipe.path, node)
    return node


def load_chosen(name: str, recipes: dict[str, RecipeFile]) -> None:
    """Load the chosen recipe and every recipe it builds on: each must exist, load, and not
    include itself again (Hydra would recurse until it runs out of stack)."""
    pending: list[tuple[str, tuple[str, ...]]] = [(name, (name,))]
    while pending:
        current, path = pending.pop()
        node = load(check_name(current, recipes) if current == name else _included(current, path, recipes))
        for included in included_recipes(node):
            if included in path:
                raise OptbuildError(f"recipe {name} includes itself: {' -> '.join((*path, included))}")
            pending.append((included, (*path, included)))


def _included(name: str, path: tuple[str, ...], recipes: dict[str, RecipeFile]) -> RecipeFile:
    if name not in recipes:
        raise OptbuildError(f"recipe {path[-2]} builds on recipe '{name}', which does not exist (available: "
                            f"{', '.join(sorted(recipes))})")
    return recipes[name]


def register(recipes: dict[str, RecipeFile], chosen: tuple[str, ...] = ()) -> None:
    """Register every usable recipe; one that is not, and not chosen, is skipped with a warning
    (a chosen one was loaded, and its error reported, before)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for recipe in recipes.values():
        try:
            node = load(recipe)
        except OptbuildError as err:
            if recipe.name not in chosen:
                log.warning("recipe %s skipped: %s", recipe.name, err.message)
            continue
        store.store(group="recipe", name=recipe.name, node=node, package="_global_")
