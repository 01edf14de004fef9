"""`optbuild verify --rebuild`: how a fresh build compares with the recorded one, stage by stage.

Every output must be byte-identical, except those a stage declares unstable (recorded in the
manifest as `unstable_outputs`): a TensorRT engine reproduces when its structure hash (layers,
types, formats and precisions; not the timed tactics) is the same and its outputs agree within
tolerance; a tuned runtime.json is a measurement, and a rebuild
may measure another winner.
"""

from __future__ import annotations

from typing import Any

from optbuild.publish.manifest import Finding

ENGINE_COSINE_TOLERANCE = 1e-3


def _engine_divergence(recorded: dict[str, Any], fresh: dict[str, Any]) -> str | None:
    """How a rebuilt TensorRT engine differs in what it means (None: it reproduces)."""
    old, new = recorded.get("engine") or {}, fresh.get("engine") or {}
    key = "structure_hash" if "structure_hash" in old else "layer_hash"  # layer_hash: manifests before it
    if old.get(key) != new.get(key):
        return "the engine's structure (layers, formats, precisions) differs"
    old_val, new_val = recorded.get("validation") or {}, fresh.get("validation") or {}
    if old_val and new_val and abs(old_val["cosine_mean"] - new_val["cosine_mean"]) > ENGINE_COSINE_TOLERANCE:
        return (f"outputs differ beyond tolerance (cosine {old_val['cosine_mean']:.5f} vs "
                f"{new_val['cosine_mean']:.5f})")
    return None


def _stable(stage: dict[str, Any]) -> dict[str, str]:
    unstable = set(stage.get("unstable_outputs", ()))
    return {o["path"]: o["sha256"] for o in stage["outputs"] if o["path"] not in unstable}


def compare_stages(recorded: dict[str, Any], fresh: dict[str, Any]) -> list[Finding]:
    rebuilt = {s["name"]: s for s in fresh["stages"]}
    unstable: set[str] = set()
    for stage in recorded["stages"]:
        name, again = stage["name"], rebuilt.get(stage["name"])
        unstable |= set(stage.get("unstable_outputs", ()))
        if again is None:
            continue
        read = [dep for dep, fingerprint in (stage.get("external") or {}).items()
                if (again.get("external") or {}).get(dep) != fingerprint]
        if read:
            return [Finding(False, "rebuild", f"first diverged at stage '{name}': it read different "
                                              f"{', '.join(sorted(read))} than the build did")]
        if stage.get("unstable_outputs") and recorded.get("engine") is not None:
            if (why := _engine_divergence(recorded, fresh)) is not None:
                return [Finding(False, "rebuild", f"first diverged at stage '{name}': {why}")]
        outputs, outputs_again = _stable(stage), _stable(again)
        if outputs != outputs_again:
            differing = sorted(p for p in outputs if outputs[p] != outputs_again.get(p))
            return [Finding(False, "rebuild", f"first diverged at stage '{name}': "
                                              f"{', '.join(differing) or 'different outputs'} differ")]
    artifacts = [{a["path"]: a["sha256"] for a in m["artifacts"] if a["path"] not in unstable}
                 for m in (recorded, fresh)]
    if artifacts[0] != artifacts[1]:
        return [Finding(False, "rebuild", "rebuilt artifacts differ from the recorded ones")]
    return _notes(recorded, fresh, unstable)


def _notes(recorded: dict[str, Any], fresh: dict[str, Any], unstable: set[str]) -> list[Finding]:
    findings = []
    if recorded.get("tuning"):
        same = recorded["tuning"].get("chosen") == (fresh.get("tuning") or {}).get("chosen")
        findings.append(Finding(True, "rebuild", "runtime tuning is a measurement: the rebuild chose "
                                + ("the same settings" if same else "different settings (not an error)")))
    if recorded.get("engine") is not None:
        return findings + [Finding(True, "rebuild", "a fresh build reproduces every stage: bytes, and for the "
                                   "TensorRT engine its structure hash and outputs within tolerance")]
    what = "every stage" + (f" but {', '.join(sorted(unstable))}" if unstable else "")
    return findings + [Finding(True, "rebuild", f"a fresh build without the cache gives byte-identical outputs "
                                                f"at {what}")]
