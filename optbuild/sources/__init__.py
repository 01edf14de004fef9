"""Model sources: where a model comes from, and how its identity is digested without loading it.

Built in: `torchvision` and `efficientnet_lite0` (torch modules, exported by the `export`
stage) and `onnx` (a file). Third-party sources are Python entry points in the group
`optbuild.sources`: the entry point's name is the `model.source` value, its object a
`ModelSource` (an instance, or a class taking no arguments). Recipes never name code.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from optbuild.config.choices import SourceKind
from optbuild.errors import OptbuildError, first_line

ENTRY_POINT_GROUP = "optbuild.sources"


@runtime_checkable
class ModelSource(Protocol):
    """A third-party model source. `model` is the recipe's `model` section as plain data
    (source, name, weights, path, seed, inputs, output_names, ...)."""

    def identity(self, model: dict[str, Any]) -> dict[str, Any]:
        """What identifies the model's content (digests, versions): it enters the cache key.
        Called in the build process on every build: keep it cheap, import no torch."""
        ...

    def write_onnx(self, model: dict[str, Any], path: str) -> None:
        """Write the FP32 ONNX model to `path` (external data next to it is fine). Runs in a
        fresh worker process: heavy imports belong here."""
        ...


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def names() -> list[str]:
    builtin = SourceKind.values()
    return [*builtin, *sorted(set(_entry_points()) - set(builtin))]


def check_name(name: str) -> None:
    if name not in names():
        raise OptbuildError(
            f"unknown model.source '{name}'; available: {', '.join(names())} (third-party sources "
            f"install as entry points in the group {ENTRY_POINT_GROUP})"
        )


def origin(name: str) -> str:
    ep = _entry_points()[name]
    return f"{ep.dist.name}=={ep.dist.version}" if ep.dist is not None else ep.value


def plugin(name: str) -> ModelSource:
    """The installed source `name`, loaded; a broken plugin is one line naming it."""
    check_name(name)
    if name in SourceKind.values():
        raise OptbuildError(f"model.source '{name}' is built in, not a plugin")
    ep = _entry_points()[name]
    where = f"source plugin '{name} = {ep.value}' ({origin(name)}) in group {ENTRY_POINT_GROUP}"
    try:
        loaded = ep.load()
        source = loaded() if isinstance(loaded, type) else loaded
    except Exception as err:  # noqa: BLE001 - any failure of third-party code means the same
        first = first_line(err)
        raise OptbuildError(f"{where} cannot be loaded ({type(err).__name__}: {first}); fix or uninstall it") from err
    if not isinstance(source, ModelSource):
        raise OptbuildError(f"{where} is not a model source: it needs identity(model) and write_onnx(model, path)")
    return source


def plugin_identity(name: str, model: dict[str, Any]) -> dict[str, Any]:
    """The cache-key identity of a plugin-sourced model: the plugin's version and its answer."""
    source = plugin(name)
    try:
        identity = source.identity(model)
    except OptbuildError:
        raise
    except Exception as err:  # noqa: BLE001
        first = first_line(err)
        raise OptbuildError(f"source plugin '{name}' failed to identify the model ({type(err).__name__}: {first})") from err
    return {"plugin": origin(name), "identity": identity}


def write_plugin_onnx(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """Stage `source` for plugin sources: the plugin writes the ONNX model; optbuild checks it and
    stores one copy (weights in `model.onnx.data` when too large for one protobuf)."""
    import tempfile

    import onnx

    from optbuild.passes.onnx_io import is_large, load, save

    model_config, name = params["model"], params["model"]["source"]
    with tempfile.TemporaryDirectory(prefix="plugin-", dir=Path(out_dir).parent) as folder:
        written = Path(folder, "model.onnx")
        try:
            plugin(name).write_onnx(model_config, str(written))
            model = load(written)
            onnx.checker.check_model(str(written) if is_large(model) else model)
        except OptbuildError:
            raise
        except Exception as err:  # noqa: BLE001
            first = first_line(err)
            raise OptbuildError(
                f"source plugin '{name}' did not produce a valid ONNX model ({type(err).__name__}: {first})"
            ) from err
        files = save(model, Path(out_dir, "model.onnx"))
    return {"files": files, "data": {"plugin": origin(name)}}
