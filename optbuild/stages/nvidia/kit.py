"""Stage `kit`: everything a GPU machine needs to build the engine, made on a CPU-only one.

    model.onnx        the prepared, strongly typed graph (precision is in it)
    build_spec.json   the recipe's TensorRT settings, input shapes and profiles
    trtexec.sh        the same build as a trtexec command (TensorRT 11 vocabulary)
    build_engine.py   the same build with only `tensorrt` installed (a copy of engine.py)
    timing.cache      the timing cache to start from, when the recipe gives one
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path
from typing import Any

from optbuild.core.digest import sha256_file
from optbuild.stages.nvidia import engine
from optbuild.stages.nvidia.precision import with_profiles

SCRIPT = "build_engine.py"
TRTEXEC = "trtexec.sh"
TIMING_CACHE = "timing.cache"
KIT_FILES = ("model.onnx", "build_spec.json", TRTEXEC, SCRIPT)  # and TIMING_CACHE when one is given
_HARDWARE = {"none": "none", "ampere_plus": "ampere+", "same_compute_capability": "sameComputeCapability"}


def _dims(shape: list[int]) -> str:
    return "x".join(str(d) for d in shape)


def trtexec_command(spec: dict[str, Any]) -> list[str]:
    """trtexec in TensorRT 11 vocabulary: no --int8/--fp16/--best (removed in 11; the graph
    carries precision) and no --stronglyTyped (always on in 11)."""
    settings = spec["tensorrt"]
    command = ["trtexec", "--onnx=model.onnx", "--saveEngine=model.plan", "--skipInference",
               f"--builderOptimizationLevel={settings['optimization_level']}",
               f"--hardwareCompatibilityLevel={_HARDWARE[settings['hardware_compatibility']]}",
               f"--profilingVerbosity={settings['profiling_verbosity']}",
               "--exportLayerInfo=engine.json", f"--timingCacheFile={TIMING_CACHE}"]
    if settings["workspace_mib"] is not None:
        command.append(f"--memPoolSize=workspace:{settings['workspace_mib']}M")
    if settings["version_compatible"]:
        command.append("--versionCompatible")
    if settings["refit"]:
        command.append("--refit")
    for profile in settings["profiles"]:  # one min/opt/max group per profile, in order
        for key in ("min", "opt", "max"):
            shapes = ",".join(f"{r['input']}:{_dims(r[key])}" for r in profile["shapes"])
            command.append(f"--{key}Shapes={shapes}")
    return command


def _trtexec_script(spec: dict[str, Any]) -> str:
    return (
        "#!/bin/sh\n"
        "# Build model.plan from this kit with trtexec. TensorRT 11 vocabulary: the precision is in\n"
        "# model.onnx (no --int8/--fp16). On TensorRT 10.x add --stronglyTyped so that the graph's types\n"
        "# are obeyed. The timing cache file is read if present and written back, merged.\n"
        'cd "$(dirname "$0")" || exit 1\n'
        f"exec {shlex.join(trtexec_command(spec))} \"$@\"\n"
    )


def write_spec(spec: dict[str, Any], onnx_path: str, out_dir: str) -> None:
    digest = sha256_file(onnx_path)
    document = {**spec, "onnx": {"file": "model.onnx", "sha256": digest}}
    Path(out_dir, "build_spec.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


def make_kit(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    import onnx

    # Dynamic inputs need profiles: made and checked here so that the kit cannot fail on the GPU box.
    spec = with_profiles(onnx.load(inputs["model.onnx"], load_external_data=False), params["spec"])
    out = Path(out_dir)
    shutil.copyfile(inputs["model.onnx"], out / "model.onnx")
    write_spec(spec, inputs["model.onnx"], out_dir)
    (out / TRTEXEC).write_text(_trtexec_script(spec))
    shutil.copyfile(engine.__file__, out / SCRIPT)
    files = list(KIT_FILES)
    if params.get("timing_cache"):
        shutil.copyfile(params["timing_cache"], out / TIMING_CACHE)
        files.append(TIMING_CACHE)
    return {"files": files, "data": {"engine_built": False, "trtexec": trtexec_command(spec),
                                     "profiles": spec["tensorrt"]["profiles"]}}
