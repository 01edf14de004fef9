"""Composing a build's config in-process, as `optbuild recipe=NAME key=value ...` would.

The CLI composes through `hydra.main`; tests, dry runs and tools use `compose` here, which goes
through the same config store, schema and validation without running a job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omegaconf import OmegaConf

from optbuild.config import recipes
from optbuild.config.schema import Config
from optbuild.config.validate import check

SCHEMA_NODE = "optbuild_schema"  # the name conf/config.yaml lists first in its defaults


def register(found: dict[str, recipes.RecipeFile], chosen: tuple[str, ...] = ()) -> None:
    """Every usable recipe and the structured schema into Hydra's ConfigStore."""
    from hydra.core.config_store import ConfigStore

    recipes.register(found, chosen)
    ConfigStore.instance().store(name=SCHEMA_NODE, node=Config)


def compose(recipe: str, overrides: Sequence[str] = (),
            found: dict[str, recipes.RecipeFile] | None = None) -> tuple[Config, dict[str, Any]]:
    """(the validated Config, the resolved config as plain data) for a recipe and overrides."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    found = recipes.discover() if found is None else found
    recipes.load_chosen(recipe, found)
    register(found, (recipe,))
    with initialize_config_module(config_module="optbuild.conf", version_base="1.3"):
        composed = hydra_compose(config_name="config", overrides=[f"recipe={recipe}", *overrides])
    return check(resolved := plain_config(composed)), resolved


def plain_config(composed: Any) -> dict[str, Any]:
    """A composed OmegaConf config as plain, resolved data."""
    resolved = OmegaConf.to_container(composed, resolve=True, enum_to_str=True)
    assert isinstance(resolved, dict)
    return {str(key): value for key, value in resolved.items()}
