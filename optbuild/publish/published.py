"""A published version opened for use (`optbuild deploy`, `optbuild.load`): found (`latest`
resolved to its vN), checked against its manifest and provenance before anything reads its
files, and described."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from optbuild.core.digest import sha256_file
from optbuild.errors import OptbuildError
from optbuild.publish.manifest import MANIFEST, load_manifest
from optbuild.publish.verify import check_integrity, check_provenance
from optbuild.stages.intel.runtime import RUNTIME_FILE

_VERSION = re.compile(r"^v(\d+)$")


class ModelKind(Enum):
    """What a version holds for a server to run."""

    openvino = "OpenVINO IR"  # intel: model.xml + model.bin
    tensorrt = "TensorRT engine"  # nvidia built on a GPU: model.plan
    tensorrt_kit = "TensorRT build kit"  # nvidia target.engine=kit: model.onnx, the engine is built later


@dataclass(frozen=True)
class Artifact:
    path: Path  # the version directory itself, never `latest`
    manifest: dict[str, Any]
    manifest_sha256: str  # of manifest.json as published (what `sha256sum manifest.json` prints)
    kind: ModelKind

    @property
    def recipe(self) -> str:
        return str(self.manifest["recipe"]["name"])

    @property
    def target(self) -> str:
        return str(self.manifest["target"])

    @property
    def precision(self) -> str:
        return str(self.manifest["precision"])

    @property
    def version(self) -> int:
        match = _VERSION.match(self.path.name)
        return int(match.group(1)) if match else int(self.manifest["version"])

    @property
    def label(self) -> str:
        return f"{self.recipe} {self.target}-{self.precision} v{self.version}"

    def file(self, name: str) -> Path:
        return self.path / name

    def sha256(self, name: str) -> str:
        """The digest the manifest records for one of its files."""
        return next(str(a["sha256"]) for a in self.manifest["artifacts"] if a["path"] == name)

    def has(self, name: str) -> bool:
        return any(a["path"] == name for a in self.manifest["artifacts"])

    def runtime(self) -> dict[str, Any]:
        """How the IR is compiled to behave as built and validated: device and properties (runtime.json)."""
        recorded = json.loads(self.file(RUNTIME_FILE).read_text()) if self.has(RUNTIME_FILE) else \
            self.manifest.get("runtime") or {}
        return {"device": recorded.get("device") or "CPU", "properties": dict(recorded.get("properties") or {})}


def version_dir(path: Path, purpose: str = "deploy") -> Path:
    """PATH as a version directory: vN itself, `latest` (or a `<target>-<precision>` folder, through
    its `latest`) resolved to the vN it points at."""
    if not path.exists():
        raise OptbuildError(f"{purpose}: {path} does not exist; give a published version (…/v<N>) or its `latest`")
    if path.is_dir() and not (path / MANIFEST).is_file() and (path / "latest" / MANIFEST).is_file():
        path = path / "latest"
    resolved = path.resolve()
    if not resolved.is_dir() or not (resolved / MANIFEST).is_file():
        raise OptbuildError(f"{purpose}: {path} is not an artifact version (no {MANIFEST}); give "
                            "outputs/<recipe>/<target>-<precision>/v<N> or its `latest`")
    return resolved


def open_artifact(path: Path, purpose: str = "deploy") -> Artifact:
    """The checked artifact at PATH; refused in one line when a file differs from the manifest, the
    manifest from its provenance, or the version failed its gates."""
    folder = version_dir(path, purpose)
    manifest = load_manifest(folder)
    try:
        findings = check_integrity(folder, manifest) + check_provenance(folder, manifest)
        kind = _kind(manifest, purpose)
    except (KeyError, TypeError, AttributeError) as err:
        raise OptbuildError(f"{purpose}: {folder / MANIFEST} is not a complete optbuild manifest (no {err})") from err
    problems = [f.message for f in findings if not f.ok]
    if problems:
        raise OptbuildError(f"{purpose}: {folder} does not match its manifest ({problems[0]}); refused: "
                            f"run `optbuild verify {path}` and rebuild the artifact")
    if manifest.get("status") == "failed":
        raise OptbuildError(f"{purpose}: {folder} failed its gates ({manifest.get('failure')}); use a version that "
                            "passed (its `latest`)")
    return Artifact(folder, manifest, sha256_file(folder / MANIFEST), kind)


def _kind(manifest: dict[str, Any], purpose: str) -> ModelKind:
    files = {a["path"] for a in manifest["artifacts"]}
    if manifest["target"] == "intel" and {"model.xml", "model.bin"} <= files:
        return ModelKind.openvino
    if manifest["target"] == "nvidia" and "model.plan" in files:
        return ModelKind.tensorrt
    if manifest["target"] == "nvidia" and "model.onnx" in files:
        return ModelKind.tensorrt_kit
    raise OptbuildError(f"{purpose}: a {manifest['target']} artifact with {', '.join(sorted(files))} holds no model a "
                        "server runs (model.xml/.bin or model.plan or a TensorRT kit)")
