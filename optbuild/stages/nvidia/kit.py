"""Stage `kit`: everything a GPU machine needs to build the engine, made on a CPU-only one.

    model.onnx        the prepared, strongly typed graph (precision is in it)
    build_spec.json   the recipe's TensorRT settings, input shapes and profiles
    trtexec.sh        the same build as a trtexec command (TensorRT 10.x and 11)
    build_engine.py   the same build with only `tensorrt` installed (a copy of engine.py)
    timing.cache      the timing cache to start from, when the recipe gives one
    check_engine.py   runs the built engine on samples.json and compares with reference.json,
                      the FP32 model's outputs, within the recipe's cosine gate (when the recipe
                      validates: the samples are the first of its validation set)

Both write into the kit's `build/` folder (the engine, its layer report, the timing cache, the
build log), never over the kit's own files: `optbuild verify` checks the kit as shipped and
leaves `build/` alone.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path
from typing import Any

from optbuild.core.digest import sha256_file
from optbuild.stages.nvidia import check_engine, engine
from optbuild.stages.nvidia.precision import with_profiles

SCRIPT = "build_engine.py"
TRTEXEC = "trtexec.sh"
TIMING_CACHE = "timing.cache"
KIT_FILES = ("model.onnx", "build_spec.json", TRTEXEC, SCRIPT)  # and TIMING_CACHE when one is given
BUILD_DIR = "build"  # where a GPU build of the kit writes; not part of the artifact
CHECK_FILES = ("samples.json", "reference.json", "check_engine.py")  # when the recipe validates
CHECK_SAMPLES = 8  # batches: enough to catch a broken engine, small enough to ship
# Without a cosine gate, the engine must come within this of the CPU proxy's cosine on the same
# samples: TensorRT's kernels and fusions round differently from ONNX Runtime's.
CHECK_MARGIN = 0.01
_HARDWARE = {"none": "none", "ampere_plus": "ampere+", "same_compute_capability": "sameComputeCapability"}


def _dims(shape: list[int]) -> str:
    return "x".join(str(d) for d in shape)


def trtexec_command(spec: dict[str, Any]) -> list[str]:
    """trtexec for TensorRT 10.0 to 11 (every flag is in their sampleOptions.cpp; the tests
    check it): --stronglyTyped, so 10.x obeys the graph's types as 11 always does, and never
    --int8/--fp16/--best (removed in 11: the graph carries the precision). Each profile's
    shapes follow its --profile=N."""
    settings = spec["tensorrt"]
    command = ["trtexec", "--onnx=model.onnx", f"--saveEngine={BUILD_DIR}/model.plan", "--stronglyTyped",
               "--skipInference", f"--builderOptimizationLevel={settings['optimization_level']}",
               f"--hardwareCompatibilityLevel={_HARDWARE[settings['hardware_compatibility']]}",
               f"--profilingVerbosity={settings['profiling_verbosity']}",
               f"--exportLayerInfo={BUILD_DIR}/engine.json", f"--timingCacheFile={BUILD_DIR}/{TIMING_CACHE}",
               "--verbose"]
    if settings["workspace_mib"] is not None:
        command.append(f"--memPoolSize=workspace:{settings['workspace_mib']}M")
    if settings["version_compatible"]:
        command.append("--versionCompatible")
    if settings["refit"]:
        command.append("--refit")
    if not settings.get("tf32", True):
        command.append("--noTF32")
    for index, profile in enumerate(settings["profiles"]):
        command.append(f"--profile={index}")
        for key in ("min", "opt", "max"):
            shapes = ",".join(f"{r['input']}:{_dims(r[key])}" for r in profile["shapes"])
            command.append(f"--{key}Shapes={shapes}")
    return command


def _trtexec_script(spec: dict[str, Any], onnx_sha256: str) -> str:
    return (
        "#!/usr/bin/env bash\n"
        "# Build the engine from this kit with trtexec (TensorRT 10.x or 11) into build/: model.plan,\n"
        "# engine.json (layer report), timing.cache and trtexec.log (the verbose build log). The\n"
        "# precision is in model.onnx (strongly typed; no --int8/--fp16). The kit's timing.cache, when\n"
        "# it ships one, is the starting point; build/timing.cache is written back merged.\n"
        "set -euo pipefail\n"
        'cd "$(dirname "$0")"\n'
        f"expected={onnx_sha256}\n"
        'actual=$(sha256sum model.onnx | cut -d" " -f1)\n'
        'if [ "$actual" != "$expected" ]; then\n'
        '  echo "trtexec.sh: error: model.onnx does not match build_spec.json (sha256 $actual, expected $expected)" >&2\n'
        "  exit 1\n"
        "fi\n"
        f"mkdir -p {BUILD_DIR}\n"
        f"if [ -f {TIMING_CACHE} ] && [ ! -f {BUILD_DIR}/{TIMING_CACHE} ]; then cp {TIMING_CACHE} {BUILD_DIR}/; fi\n"
        f"{shlex.join(trtexec_command(spec))} \"$@\" 2>&1 | tee {BUILD_DIR}/trtexec.log\n"
    )


def write_spec(spec: dict[str, Any], onnx_path: str, out_dir: str) -> str:
    """build_spec.json with the ONNX file's sha256 (both builders check it); returns the digest."""
    digest = sha256_file(onnx_path)
    document = {**spec, "onnx": {"file": "model.onnx", "sha256": digest}}
    Path(out_dir, "build_spec.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return digest


def make_kit(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    import onnx

    # Dynamic inputs need profiles: made and checked here so that the kit cannot fail on the GPU box.
    spec = with_profiles(onnx.load(inputs["model.onnx"], load_external_data=False), params["spec"])
    out = Path(out_dir)
    shutil.copyfile(inputs["model.onnx"], out / "model.onnx")
    digest = write_spec(spec, inputs["model.onnx"], out_dir)
    (out / TRTEXEC).write_text(_trtexec_script(spec, digest))
    shutil.copyfile(engine.__file__, out / SCRIPT)
    files = list(KIT_FILES)
    check = None
    if params.get("dataset"):
        check = _write_check(inputs, params, out)
        files += CHECK_FILES
    if params.get("timing_cache"):
        shutil.copyfile(params["timing_cache"], out / TIMING_CACHE)
        files.append(TIMING_CACHE)
    return {"files": files, "data": {"engine_built": False, "trtexec": trtexec_command(spec),
                                     "profiles": spec["tensorrt"]["profiles"], "engine_check": check}}


def _write_check(inputs: dict[str, str], params: dict[str, Any], out: Path) -> dict[str, Any]:
    """samples.json (Polygraphy's format: a list of feeds), reference.json (the FP32 outputs and
    the cosine the engine must reach) and check_engine.py; what the check expects, for the manifest."""
    import onnx
    from polygraphy.json import save_json

    from optbuild.data import DatasetRequest, batches, load
    from optbuild.serving.contract import normalize, to_pixels
    from optbuild.stages.nvidia.half import emulate_bfloat16
    from optbuild.stages.nvidia.proxy import qdq_session

    request = DatasetRequest.from_data(params["dataset"])
    contract = params.get("client") or []  # samples as a client sends them; the FP32 reference gets them normalised
    feeds = batches(to_pixels(load(request), contract), request.batch)[:CHECK_SAMPLES]
    reference = qdq_session(inputs["reference.onnx"])
    prepared: Any = inputs["model.onnx"]
    if params["precision"] == "bf16":  # ONNX Runtime has no bfloat16 kernels: as the CPU proxy runs it
        prepared = emulate_bfloat16(onnx.load(prepared)).SerializeToString()
    proxy = qdq_session(prepared)
    names = [o.name for o in reference.get_outputs()]
    expected = [dict(zip(names, reference.run(None, normalize(feed, contract)))) for feed in feeds]
    on_cpu = check_engine.compare(expected, [dict(zip(names, proxy.run(None, feed))) for feed in feeds], 0.0)
    proxy_cosine = min(o["cosine_mean"] for o in on_cpu["outputs"].values())
    gate = params.get("min_cosine")
    min_cosine = float(gate) if gate is not None else round(proxy_cosine - CHECK_MARGIN, 6)
    save_json(feeds, str(out / "samples.json"))
    save_json({"outputs": expected, "min_cosine": min_cosine}, str(out / "reference.json"))
    shutil.copyfile(check_engine.__file__, out / "check_engine.py")
    return {"samples": len(feeds), "batch": request.batch, "min_cosine": min_cosine,
            "min_cosine_from": "validate cosine gate" if gate is not None else
            f"CPU proxy cosine on these samples ({proxy_cosine:.4f}) - {CHECK_MARGIN}",
            "script": "check_engine.py", "result_file": f"{BUILD_DIR}/check.json"}
