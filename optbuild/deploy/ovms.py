"""An OpenVINO Model Server model: `DIR/<name>/<version>/model.xml|model.bin` and its entry in
`DIR/config.json` (OVMS's multi-model config: `model_config_list` of `{"config": {...}}`).

`base_path` is relative to config.json, which OVMS resolves against the config file's folder, so
the repository works wherever it is mounted. `plugin_config` carries the artifact's runtime
properties (the inference precision hint among them: OVMS passes them to OpenVINO as they are),
`target_device` its device. The IR is served at the shapes it was built with, so neither
`batch_size` nor `shape` is set. Other models' entries in an existing config.json are kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from optbuild.core.files import write_json
from optbuild.deploy.repository import Deployed, Source, place_version, record
from optbuild.errors import OptbuildError
from optbuild.publish.package import FILE_MODE
from optbuild.publish.published import Artifact, ModelKind

CONFIG = "config.json"


def model_entry(name: str, runtime: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {"name": name, "base_path": name, "target_device": runtime["device"]}
    if runtime["properties"]:
        config["plugin_config"] = {k: str(v) for k, v in sorted(runtime["properties"].items())}
    return {"config": config}


def merged(path: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """config.json with `entry` in place of the model of the same name (or added)."""
    if not path.exists():
        return {"model_config_list": [entry]}
    try:
        document = json.loads(path.read_text())
        models = document["model_config_list"]
        if not isinstance(models, list):
            raise TypeError("model_config_list is not a list")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise OptbuildError(f"deploy: {path} is not an OVMS config with a model_config_list ({err}); move it away "
                            "or deploy into another directory") from err
    name = entry["config"]["name"]
    kept = [m for m in models if not (isinstance(m, dict) and (m.get("config") or {}).get("name") == name)]
    return {**document, "model_config_list": [*kept, entry]}


def deploy(artifact: Artifact, root: Path, name: str, version: int, force: bool) -> Deployed:
    if artifact.kind is not ModelKind.openvino:
        raise OptbuildError(f"deploy: OpenVINO Model Server serves OpenVINO IR only, and {artifact.label} is a "
                            f"{artifact.kind.value}; deploy it with --to triton")
    runtime = artifact.runtime()
    files = {n: Source(artifact.file(n), artifact.sha256(n), "artifact") for n in ("model.xml", "model.bin")}
    entry = model_entry(name, runtime)
    wanted = record(artifact, "ovms", name, version, files, {"ovms_config": entry["config"]})
    model_dir = root / name
    model_dir.mkdir(exist_ok=True)
    outcome = place_version(model_dir / str(version), files, {}, wanted, force)
    write_json(root / CONFIG, merged(root / CONFIG, entry), FILE_MODE)
    settings = ", ".join(f"{k}={v}" for k, v in entry["config"].get("plugin_config", {}).items())
    return Deployed(model_dir / str(version), outcome, root / CONFIG,
                    f"target_device {runtime['device']}" + (f", plugin_config {settings}" if settings else ""))
