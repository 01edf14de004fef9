"""ONNX file source: a model file given by path (the path never enters a cache key; its bytes do)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optbuild.digest import sha256_file
from optbuild.errors import OptbuildError


def checked_path(path: str) -> Path:
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise OptbuildError(f"model.path '{path}' is not a file: give the path of an .onnx model")
    return resolved


def source_identity(path: str) -> dict[str, Any]:
    resolved = checked_path(path)
    identity = {"onnx_sha256": sha256_file(resolved)}
    data = sorted(p for p in resolved.parent.glob(resolved.name + ".data") if p.is_file())
    if data:  # external weights next to the model
        identity["external_data_sha256"] = [sha256_file(p) for p in data]
    return identity


def import_onnx(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """Stage `source` for ONNX files: load (with external data), check, and store one copy."""
    import onnx

    path = checked_path(params["path"])
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as err:  # noqa: BLE001 - protobuf and checker errors both mean "not a model"
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise OptbuildError(f"model.path '{params['path']}' is not a valid ONNX model: {first}") from err
    onnx.save(model, str(Path(out_dir, "model.onnx")))
    return {"files": ["model.onnx"], "data": {"opset": model.opset_import[0].version}}
