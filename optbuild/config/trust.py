"""Recipes and command lines are data: what they may say, checked before Hydra sees them.

A recipe may choose the `target` and `precision` groups and set config keys; nothing in it may
reach Hydra's own settings, name code to instantiate (`_target_` and friends), call an
interpolation resolver (`${oc.env:...}` would copy a secret into the manifest), or carry a YAML
type other than plain scalars, lists and mappings. A command line may set config keys, choose a
launcher and set that launcher's documented resources, and place run and sweep directories; every
other Hydra setting (`hydra.job.env_set`, `hydra.callbacks`, `--config-dir`,
`--experimental-rerun`, ...) would let it run code, and is refused. See docs/security.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from optbuild.errors import OptbuildError

RECIPE_GROUPS = ("target", "precision")
INSTANTIATION_KEYS = ("_target_", "_args_", "_partial_", "_recursive_", "_convert_")
# `${name:...}`: a resolver call; `${a.b}` (a reference to another key) is plain data.
_RESOLVER = re.compile(r"\$\{\s*([A-Za-z_][\w.]*)\s*:")
_PLAIN = (str, int, float, bool, type(None))
_RECIPE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

LAUNCHERS = ("basic", "joblib", "ray", "slurm", "submitit_local", "submitit_slurm")
# Each launcher's documented resource settings. Not here, on purpose: anything that runs shell
# lines or sets the workers' environment (submitit `setup` and `additional_parameters`, Ray's
# `runtime_env`) and `_target_`.
LAUNCHER_KEYS = frozenset({
    # hydra-joblib-launcher
    "n_jobs", "backend", "prefer", "require", "verbose", "timeout", "pre_dispatch", "batch_size", "temp_folder",
    "max_nbytes", "mmap_mode",
    # hydra-submitit-launcher (local and Slurm)
    "submitit_folder", "timeout_min", "cpus_per_task", "gpus_per_node", "tasks_per_node", "mem_gb", "nodes", "name",
    "stderr_to_stdout", "partition", "qos", "comment", "constraint", "exclude", "gres", "cpus_per_gpu",
    "gpus_per_task", "mem_per_gpu", "mem_per_cpu", "account", "signal_delay_s", "max_num_timeout",
    "array_parallelism",
    # optbuild's Ray launcher (conf/hydra/launcher/ray.yaml)
    "init.address", "init.num_cpus", "init.object_store_memory", "init.include_dashboard", "remote.num_cpus",
    "remote.max_retries",
})
HYDRA_PLACES = ("hydra.run.dir", "hydra.sweep.dir", "hydra.sweep.subdir")
# Flags that only print, or choose multirun: everything else Hydra accepts changes where the
# config comes from (--config-dir/-name/-path), unpickles (--experimental-rerun) or installs
# shell code (--shell-completion).
SAFE_FLAGS = ("-m", "--multirun", "-h", "--help", "--hydra-help", "--info", "--version", "--resolve", "-c", "--cfg",
              "-p", "--package")
_FLAGS_WITH_VALUE = ("-c", "--cfg", "-p", "--package")


# --- recipes ----------------------------------------------------------------------------------


def check_recipe(path: Path, node: Any) -> None:
    """Refuse, in one line naming the file and the key, anything a recipe may not say."""
    if not isinstance(node, dict):
        raise OptbuildError(f"recipe file {path} must hold a mapping of config sections")
    if "hydra" in node:  # Hydra instantiates e.g. hydra.callbacks: a recipe must never run code
        raise OptbuildError(f"recipe file {path} sets 'hydra' settings, which recipes may not do; pass launcher "
                            "or output options on the command line instead")
    _check_defaults(path, node.get("defaults", []))
    check_data(f"recipe file {path}", {k: v for k, v in node.items() if k != "defaults"})


def check_data(where: str, node: Any) -> None:
    """Plain values only: no instantiation keys, no resolver calls, no YAML-only types."""
    try:
        for key, value, is_key in _walk(node):
            _check_value(where, key, value, is_key)
    except _TooLarge:
        raise OptbuildError(f"{where} expands to more than {MAX_RECIPE_NODES} values (YAML aliases?): a config "
                            "is small") from None


def included_recipes(node: dict[str, Any]) -> list[str]:
    """The other recipes a recipe builds on (`defaults: [resnet50, ...]`)."""
    return [entry for entry in node.get("defaults", []) if isinstance(entry, str) and _RECIPE_NAME.match(entry)
            and entry != "_self_"]


def _check_defaults(path: Path, defaults: Any) -> None:
    """Only `_self_`, other recipes by plain name, and choices of the target and precision
    groups."""
    if not isinstance(defaults, list):
        raise OptbuildError(f"recipe file {path}: 'defaults' must be a list")
    for entry in defaults:
        if entry == "_self_" or (isinstance(entry, str) and _RECIPE_NAME.match(entry)):
            continue
        group = next(iter(entry)) if isinstance(entry, dict) and len(entry) == 1 else None
        name = str(group).removeprefix("override").strip().lstrip("/") if group is not None else ""
        if name not in RECIPE_GROUPS or not isinstance(entry[group], str) or "@" in str(group):
            raise OptbuildError(f"recipe file {path}: defaults entry {entry!r} is not allowed: a recipe may only "
                                f"build on another recipe by name (`- resnet50`), choose {' and '.join(RECIPE_GROUPS)} "
                                "(`- override /target: intel`) and list `_self_`")


MAX_RECIPE_NODES = 100_000  # YAML aliases can make a small file a huge (or endless) tree


def _walk(node: Any) -> Iterable[tuple[str, Any, bool]]:
    """(dotted key, a key or a leaf value, whether it is a key) for everything in `node`."""
    pending: list[tuple[str, Any]] = [("", node)]
    seen = 0
    while pending:
        prefix, current = pending.pop()
        seen += 1
        if seen > MAX_RECIPE_NODES:
            raise _TooLarge
        if isinstance(current, dict):
            for key, value in current.items():
                dotted = f"{prefix}.{key}" if prefix else str(key)
                yield dotted, key, True
                pending.append((dotted, value))
        elif isinstance(current, list):
            pending.extend((f"{prefix}.{index}", value) for index, value in enumerate(current))
        else:
            yield prefix, current, False


class _TooLarge(Exception):
    pass


def _check_value(where: str, key: str, value: Any, is_key: bool) -> None:
    if not isinstance(value, _PLAIN):
        raise OptbuildError(f"{where}: '{key}' is a {type(value).__name__}: a config holds plain strings, "
                            "numbers, booleans, lists and mappings only")
    if is_key and value in INSTANTIATION_KEYS:
        raise OptbuildError(f"{where}: '{key}' is an instantiation key: a config never names code")
    if isinstance(value, str) and (resolver := _RESOLVER.search(value)):
        raise OptbuildError(f"{where}: '{key}' calls the resolver '{resolver.group(1)}' "
                            f"({value!r}): a config may refer to other keys (${{a.b}}) but not read the "
                            "environment, files or anything else through a resolver")


# --- the command line -------------------------------------------------------------------------


def check_command_line(argv: list[str]) -> None:
    """Refuse, in one line, flags and overrides that reach beyond the build's own config."""
    seen: dict[str, str] = {}
    args = iter(argv)
    for arg in args:
        if arg.startswith("-"):
            flag = arg.split("=", 1)[0]
            if flag not in SAFE_FLAGS:
                raise OptbuildError(f"the option {flag} is not accepted: optbuild takes config keys (key=value), -m "
                                    "for a sweep, and --help/--cfg to look; a recipe or config directory cannot be "
                                    "given by path (put recipes on OPTBUILD_RECIPE_PATH)")
            if flag in _FLAGS_WITH_VALUE and "=" not in arg:
                next(args, None)
            continue
        if "=" not in arg:
            raise OptbuildError(f"'{arg}' is not a key=value override (a command must come first: "
                                "optbuild verify PATH)")
        key, value = arg.split("=", 1)
        plain = key.lstrip("+~")
        if plain in seen:
            raise OptbuildError(f"'{plain}' is given twice on the command line ({seen[plain]} and {arg}): give it "
                                "once")
        seen[plain] = arg
        _check_override(plain, value, arg)


def _check_override(key: str, value: str, arg: str) -> None:
    if key.startswith(("hydra.", "hydra/")) or key == "hydra":
        _check_hydra_override(key, value, arg)
    elif key.split("/")[0] not in ("recipe", "target", "precision") and "/" in key:
        raise OptbuildError(f"'{arg}' chooses a config group optbuild does not have: groups are recipe, target, "
                            "precision and hydra/launcher")
    if any(part in INSTANTIATION_KEYS for part in key.split(".")):
        raise OptbuildError(f"'{arg}' sets an instantiation key: a command line never names code")
    resolver = _RESOLVER.search(value)
    if resolver and not (resolver.group(1) == "now" and key in HYDRA_PLACES):
        raise OptbuildError(f"'{arg}' calls the resolver '{resolver.group(1)}': values on the command line may refer "
                            "to other keys (${a.b}) but not read the environment, files or anything else")


def _check_hydra_override(key: str, value: str, arg: str) -> None:
    if key == "hydra/launcher":
        if value not in LAUNCHERS:
            raise OptbuildError(f"'{arg}': unknown launcher; use one of {', '.join(LAUNCHERS)}")
        return
    if key in HYDRA_PLACES:
        return
    if key.startswith("hydra.launcher.") and key.removeprefix("hydra.launcher.") in LAUNCHER_KEYS:
        return
    raise OptbuildError(f"'{arg}' sets a Hydra setting optbuild does not accept from a command line (it could run "
                        "code or change the workers' environment); allowed: hydra/launcher=NAME, "
                        "hydra.launcher.<resource setting>, hydra.run.dir, hydra.sweep.dir, hydra.sweep.subdir")
