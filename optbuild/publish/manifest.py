"""The manifest of a build: what was built, from what, how, and what it measured."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optbuild.core.platform import platform_info, toolchain
from optbuild.errors import OptbuildError
from optbuild.pipeline.stage import StageResult

SCHEMA = "optbuild.manifest/v1"
MANIFEST = "manifest.json"
PROVENANCE = "provenance.json"
# Fields every manifest has, in this order; stages fill the measured ones through their
# `reports`, a target's plan adds its own after these.
FIELDS = ("schema", "recipe", "target", "precision", "created", "overrides", "config", "stages", "artifacts",
          "interface", "runtime", "resolved_inference_precision", "surgery", "quantization", "status", "failure", "gates",
          "validation", "validation_dataset", "benchmark", "tuning", "notes", "toolchain", "platform")


def stage_entry(result: StageResult, unstable: tuple[str, ...] = ()) -> dict[str, Any]:
    """A stage as the manifest records it: enough to recompute its key and follow the chain."""
    entry = {
        "name": result.name,
        "key": result.key,
        "cache_hit": result.cache_hit,
        "seconds": result.seconds,
        "inputs": [{"path": name, "sha256": digest, "from": str(result.sources[name])}
                   for name, digest in sorted(result.inputs.items())],
        "outputs": [{"path": name, "sha256": b.sha256, "bytes": b.bytes} for name, b in sorted(result.outputs.items())],
        **result.material.recorded(),
    }
    if unstable:
        entry["unstable_outputs"] = list(unstable)
    return entry


def skeleton(**given: Any) -> dict[str, Any]:
    """Every field in order, None where not given; the toolchain and platform of this machine."""
    manifest: dict[str, Any] = dict.fromkeys(FIELDS)
    manifest.update(schema=SCHEMA, created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    toolchain=toolchain(), platform=platform_info())
    manifest.update(given)
    return manifest


@dataclass(frozen=True)
class Finding:
    """One result of checking a published version (optbuild verify)."""

    ok: bool
    check: str
    message: str


def load_manifest(version_dir: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((version_dir / MANIFEST).read_text())
    except FileNotFoundError as err:
        raise OptbuildError(f"{version_dir} has no {MANIFEST}: it is not an optbuild artifact") from err
    except (OSError, ValueError) as err:
        raise OptbuildError(f"{version_dir / MANIFEST} is unreadable or not JSON: {err}") from err
    if not isinstance(manifest, dict) or not str(manifest.get("schema", "")).startswith("optbuild.manifest/"):
        raise OptbuildError(f"{version_dir / MANIFEST} is not an optbuild manifest")
    return manifest


