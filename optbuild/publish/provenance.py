"""SLSA provenance for a published artifact, as an in-toto Statement (provenance.json).

Subjects are the artifact files; the build definition carries the recipe digest, the
command-line overrides and the resolved dependencies: whatever a stage read from outside the
build (the model file or weights, calibration and validation data, a timing cache), each by
content digest.
"""

from __future__ import annotations

from typing import Any

import optbuild
from optbuild.core.digest import sha256_json
from optbuild.publish.manifest import MANIFEST

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:optbuild:buildtype:recipe:v1"


def _dependency(name: str, identity: Any) -> dict[str, Any]:
    """A content digest for a dependency: the file's own sha256 where there is one, else the
    digest of its fingerprint (e.g. a photo set defined by package versions and a seed)."""
    if isinstance(identity, dict):
        for field in ("content_sha256", "weights_sha256", "onnx_sha256"):
            if isinstance(identity.get(field), str):
                return {"name": name, "digest": {"sha256": identity[field]}, "annotations": identity}
    return {"name": name, "digest": {"sha256": sha256_json(identity)}, "annotations": identity}


def resolved_dependencies(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The recipe, then everything a stage read from outside the build (each once)."""
    recipe = manifest["recipe"]
    deps = [{"name": f"recipe:{recipe['name']}", "digest": {"sha256": recipe["sha256"]}}]
    seen = set()
    for stage in manifest["stages"]:
        for name, identity in sorted((stage.get("external") or {}).items()):
            if identity is None:
                continue
            dependency = _dependency(f"{stage['name']}:{name}", identity)
            if dependency["digest"]["sha256"] not in seen:
                seen.add(dependency["digest"]["sha256"])
                deps.append(dependency)
    return deps


def manifest_digest(statement: dict[str, Any]) -> str | None:
    """The manifest digest a statement binds (None when it binds none)."""
    try:
        return next(b["digest"]["sha256"] for b in statement["predicate"]["runDetails"]["byproducts"]
                    if b["name"] == MANIFEST)
    except (KeyError, TypeError, StopIteration):
        return None


def statement(manifest: dict[str, Any]) -> dict[str, Any]:
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": a["path"], "digest": {"sha256": a["sha256"]}} for a in manifest["artifacts"]],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "recipe": {"name": manifest["recipe"]["name"], "sha256": manifest["recipe"]["sha256"]},
                    "overrides": manifest["overrides"],
                    "target": manifest["target"],
                    "precision": manifest["precision"],
                },
                "internalParameters": {"toolchain": manifest["toolchain"], "platform": manifest["platform"]},
                "resolvedDependencies": resolved_dependencies(manifest),
            },
            "runDetails": {
                "builder": {"id": f"urn:optbuild:{optbuild.__version__}"},
                "metadata": {"finishedOn": manifest["created"]},
                # The manifest is a by-product: binding its digest here binds every claim it
                # makes (status, gates, validation, benchmark, config) to this statement.
                "byproducts": [{"name": MANIFEST, "digest": {"sha256": sha256_json(manifest)}}],
            },
        },
    }
