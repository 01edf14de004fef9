"""Build a TensorRT engine (model.plan) from a prepared ONNX model and its build_spec.json.

This file is standalone on purpose: it needs only the `tensorrt` package (and an NVIDIA GPU).
optbuild's `engine` stage runs it, and every build kit carries a copy as `build_engine.py`, so a
CPU-only box prepares the kit and a GPU box builds the same engine with

    python build_engine.py            # next to model.onnx and build_spec.json; writes build/

Written for TensorRT 11 and working on 10.x: precision comes from the graph (explicit Q/DQ,
converted types) and the network is strongly typed; no precision builder flag is ever set (11
removed them). TensorRT engines are not byte-reproducible: the report carries a structure hash
(layers, types, I/O formats and precisions, in order), which is what "reproducible" means for an
engine together with output tolerances, and a tactic hash (the same plus the kernels TensorRT
timed and chose), which differs between fresh builds without a shared timing cache and is only
informational. `precisions` counts layers by the type of their output.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # mypy checks every TensorRT call below against tensorrt-stubs
    import tensorrt as trt
else:
    trt = None  # bound by use(): the real module, or the tests' recording double

SPEC_SCHEMA = "optbuild.tensorrt-build-spec/v1"
SUPPORTED_MAJORS = (10, 11)
# Inspector fields that identify what runs: layer, its type (and I/O formats, added below); the
# tactic fields only for the tactic hash.
_STRUCTURE_FIELDS = ("Name", "LayerType")
_TACTIC_FIELDS = ("TacticName", "TacticValue")
# Data types named in the inspector's "Format/Datatype" strings, e.g. "Channel major FP16 format
# where channel % 8 == 0", "Thirty-two wide channel vectorized row major Int8 format".
_DATATYPE = re.compile(r"\b(FP32|FP16|BF16|FP8|FP4|Int8|Int4|Int32|Int64|UInt8|Bool)\b")


class EngineBuildError(Exception):
    """A build failure with a one-line message saying what is wrong and what to do."""


def use(module: Any) -> None:
    """Bind the TensorRT module this file calls (the one seam the tests replace)."""
    global trt
    trt = module


def load_tensorrt() -> None:
    """Import the real TensorRT, refusing stub-only installs and unsupported versions."""
    try:
        import tensorrt as module
    except ImportError as err:
        raise EngineBuildError("TensorRT is not installed: pip install tensorrt (needs an NVIDIA GPU)") from err
    if not hasattr(module, "Builder"):  # e.g. only type stubs on the path: a namespace package
        raise EngineBuildError("the 'tensorrt' found is not TensorRT (type stubs only?): install tensorrt")
    major = int(str(module.__version__).split(".")[0])
    if major not in SUPPORTED_MAJORS:
        raise EngineBuildError(f"TensorRT {module.__version__} is not supported: use 10.x or 11.x")
    use(module)


# --- recipe settings -> builder calls ----------------------------------------------------------


def network_flags() -> int:
    """10.x must opt in to strong typing (tensor types come from the graph, as 11.x always
    does); 11.x accepts and ignores the flag, and a release without it needs none."""
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return 0 if strongly_typed is None else 1 << int(strongly_typed)


def parse_onnx(network: trt.INetworkDefinition, logger: trt.ILogger, onnx_path: str) -> trt.OnnxParser:
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(onnx_path):  # from file: external weights resolve next to it
        errors = [_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineBuildError("TensorRT's ONNX parser rejected the model: " + "; ".join(errors or ["no detail"]))
    return parser


def _parser_error(error: Any) -> str:
    node = error.node_name() or (f"#{error.node()}" if error.node() >= 0 else "")
    where = f"node '{node}' ({error.node_operator()})" if node else "model"
    return f"{where}: {error.desc()}"


def _dynamic_inputs(network: trt.INetworkDefinition) -> dict[str, list[int]]:
    shapes = {}
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        shape = tensor.shape
        dims = [int(shape[axis]) for axis in range(len(shape))]
        if any(d < 0 for d in dims):
            shapes[tensor.name] = dims
    return shapes


def check_profiles(dynamic: dict[str, list[int]], profiles: list[dict[str, Any]]) -> None:
    """Every dynamic input needs min/opt/max in every profile, consistent with its static dims."""
    if dynamic and not profiles:
        name, dims = next(iter(dynamic.items()))
        raise EngineBuildError(f"input '{name}' has dynamic shape {dims}: give target.tensorrt.profiles "
                               "with min/opt/max for it")
    for number, profile in enumerate(profiles):
        ranges = {r["input"]: r for r in profile["shapes"]}
        for name, dims in dynamic.items():
            if name not in ranges:
                raise EngineBuildError(f"optimization profile {number} has no min/opt/max for dynamic input "
                                       f"'{name}' {dims}: add it to target.tensorrt.profiles")
        for name, r in ranges.items():
            if name not in dynamic:
                raise EngineBuildError(f"optimization profile {number} names '{name}', which is not a dynamic "
                                       f"input (dynamic: {sorted(dynamic) or 'none'}): remove it")
            want = dynamic[name]
            if not len(r["min"]) == len(r["opt"]) == len(r["max"]) == len(want):
                raise EngineBuildError(f"profile {number} input '{name}': min/opt/max need rank {len(want)} "
                                       f"(the input is {want})")
            for axis, dim in enumerate(want):
                if dim >= 0 and not r["min"][axis] == r["opt"][axis] == r["max"][axis] == dim:
                    raise EngineBuildError(f"profile {number} input '{name}': dim {axis} is static ({dim}) "
                                           f"in the model, so min/opt/max must all be {dim}")
            for low, mid, high in zip(r["min"], r["opt"], r["max"]):
                if not 1 <= low <= mid <= high:
                    raise EngineBuildError(f"profile {number} input '{name}': need 1 <= min <= opt <= max in "
                                           f"every dim, got min {r['min']} opt {r['opt']} max {r['max']}")


# The recipe's hardware_compatibility -> the enum member's name; looked up only when used, since
# SAME_COMPUTE_CAPABILITY exists only from TensorRT 10.9.
HARDWARE_LEVELS = {"none": "NONE", "ampere_plus": "AMPERE_PLUS", "same_compute_capability": "SAME_COMPUTE_CAPABILITY"}


def hardware_level(name: str) -> Any:
    member = getattr(trt.HardwareCompatibilityLevel, HARDWARE_LEVELS[name], None)
    if member is None:
        raise EngineBuildError(f"target.tensorrt.hardware_compatibility={name} needs a newer TensorRT than "
                               f"{getattr(trt, '__version__', 'the installed one')} (HardwareCompatibilityLevel."
                               f"{HARDWARE_LEVELS[name]} appeared in 10.9): choose "
                               f"{' or '.join(k for k, v in HARDWARE_LEVELS.items() if hasattr(trt.HardwareCompatibilityLevel, v))}")
    return member


def configure(builder: trt.Builder, network: trt.INetworkDefinition, spec: dict[str, Any]) -> trt.IBuilderConfig:
    """The builder config for the recipe's TensorRT settings. Never a precision flag."""
    settings = spec["tensorrt"]
    config = builder.create_builder_config()
    if settings["workspace_mib"] is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(settings["workspace_mib"]) << 20)
    config.builder_optimization_level = int(settings["optimization_level"])
    config.hardware_compatibility_level = hardware_level(settings["hardware_compatibility"])
    if settings["version_compatible"]:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if settings["refit"]:
        config.set_flag(trt.BuilderFlag.REFIT)
    if not settings.get("tf32", True):  # explicit either way: TensorRT allows TF32 unless told not to
        config.clear_flag(trt.BuilderFlag.TF32)
    verbosity = {
        "layer_names_only": trt.ProfilingVerbosity.LAYER_NAMES_ONLY,
        "detailed": trt.ProfilingVerbosity.DETAILED,
        "none": trt.ProfilingVerbosity.NONE,
    }
    config.profiling_verbosity = verbosity[settings["profiling_verbosity"]]
    check_profiles(_dynamic_inputs(network), settings["profiles"])
    for profile_spec in settings["profiles"]:
        profile = builder.create_optimization_profile()
        for r in profile_spec["shapes"]:
            profile.set_shape(r["input"], trt.Dims(r["min"]), trt.Dims(r["opt"]), trt.Dims(r["max"]))
        config.add_optimization_profile(profile)
    return config


def attach_timing_cache(config: trt.IBuilderConfig, previous: bytes | None) -> trt.ITimingCache:
    """A fresh cache merged with the previous one (if any): the build adds its timings to it."""
    cache = config.create_timing_cache(b"")
    if previous:
        loaded = config.create_timing_cache(previous)
        if not cache.combine(loaded, False):
            raise EngineBuildError("the timing cache was made by another TensorRT version or GPU: drop "
                                   "target.tensorrt.timing_cache (or --timing-cache) to start a new one")
    if not config.set_timing_cache(cache, False):
        raise EngineBuildError("TensorRT refused the timing cache: drop it to start a new one")
    return cache


# --- what was built ----------------------------------------------------------------------------


def _layers(engine_information: str) -> list[Any]:
    return json.loads(engine_information).get("Layers", [])


def layer_hash(engine_information: str, tactics: bool = False) -> str:
    """sha256 over the layers in order: name, type, I/O formats and precisions (and with
    `tactics`, the chosen kernels), ignoring the fields whose schema changed between 10.x
    ("Bindings") and 11.x ("I/O Tensors")."""
    fields = _STRUCTURE_FIELDS + (_TACTIC_FIELDS if tactics else ())
    canonical = []
    for layer in _layers(engine_information):
        if isinstance(layer, str):  # profiling verbosity layer_names_only
            canonical.append({"Name": layer})
            continue
        entry = {k: layer[k] for k in fields if k in layer}
        for side in ("Inputs", "Outputs"):
            entry[side] = [t.get("Format/Datatype") for t in layer.get(side, []) if isinstance(t, dict)]
        canonical.append(entry)
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def precisions(engine_information: str) -> dict[str, int]:
    """How many layers produce each data type (their first output's), e.g. {"Int8": 48,
    "FP16": 20, "FP32": 4}; "unknown" where the inspector does not say (layer names only)."""
    counts: dict[str, int] = {}
    for layer in _layers(engine_information):
        outputs = layer.get("Outputs", []) if isinstance(layer, dict) else []
        text = outputs[0].get("Format/Datatype", "") if outputs and isinstance(outputs[0], dict) else ""
        found = _DATATYPE.search(text)
        kind = found.group(1) if found else "unknown"
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def gpu_info() -> dict[str, Any]:
    """GPU name, compute capability and driver versions from the CUDA driver and NVML (ctypes:
    nothing beyond the driver is needed). None for whatever cannot be read."""
    info: dict[str, Any] = {"name": None, "compute_capability": None, "cuda_driver_api": None, "driver": None}
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
        if cuda.cuInit(0) == 0:
            version, device, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
            if cuda.cuDriverGetVersion(ctypes.byref(version)) == 0:
                info["cuda_driver_api"] = f"{version.value // 1000}.{version.value % 1000 // 10}"
            if cuda.cuDeviceGet(ctypes.byref(device), 0) == 0:
                name = ctypes.create_string_buffer(256)
                cuda.cuDeviceGetName(name, 256, device)
                info["name"] = name.value.decode()
                cuda.cuDeviceGetAttribute(ctypes.byref(major), 75, device)  # COMPUTE_CAPABILITY_MAJOR
                cuda.cuDeviceGetAttribute(ctypes.byref(minor), 76, device)  # COMPUTE_CAPABILITY_MINOR
                info["compute_capability"] = f"{major.value}.{minor.value}"
    except OSError:
        pass
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
        if nvml.nvmlInit_v2() == 0:
            text = ctypes.create_string_buffer(96)
            if nvml.nvmlSystemGetDriverVersion(text, 96) == 0:
                info["driver"] = text.value.decode()
            nvml.nvmlShutdown()
    except (OSError, AttributeError):
        pass
    return info


def cuda_runtime_version() -> str | None:
    for name in ("libcudart.so.13", "libcudart.so.12", "libcudart.so"):
        try:
            runtime = ctypes.CDLL(name)
        except OSError:
            continue
        version = ctypes.c_int()
        if runtime.cudaRuntimeGetVersion(ctypes.byref(version)) == 0:
            return f"{version.value // 1000}.{version.value % 1000 // 10}"
    return None


# --- the build ---------------------------------------------------------------------------------


def build(spec: dict[str, Any], onnx_path: str, out_dir: str, timing_cache: bytes | None = None) -> dict[str, Any]:
    """Parse, configure, build; write model.plan, engine.json (inspector) and timing.cache.
    Returns the report: versions, GPU, layer hash, settings. Whatever TensorRT raises becomes one
    EngineBuildError line naming the TensorRT version."""
    try:
        return _build(spec, onnx_path, out_dir, timing_cache)
    except (EngineBuildError, OSError):
        raise
    except Exception as err:  # noqa: BLE001 - TensorRT's own errors (RuntimeError, TypeError, ...)
        detail = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise EngineBuildError(f"TensorRT {getattr(trt, '__version__', '?')} failed: {type(err).__name__}: "
                               f"{detail}") from err


def _build(spec: dict[str, Any], onnx_path: str, out_dir: str, timing_cache: bytes | None) -> dict[str, Any]:
    if spec.get("schema") != SPEC_SCHEMA:
        raise EngineBuildError(f"build spec schema is {spec.get('schema')!r}, expected {SPEC_SCHEMA!r}")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags())
    parse_onnx(network, logger, onnx_path)
    config = configure(builder, network, spec)
    attach_timing_cache(config, timing_cache)
    started = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError("TensorRT could not build the engine (its log above says why): check the "
                               "workspace limit and the optimization profiles")
    seconds = time.perf_counter() - started
    plan = bytes(serialized)
    out = Path(out_dir)
    (out / "model.plan").write_bytes(plan)
    (out / "timing.cache").write_bytes(bytes(config.get_timing_cache().serialize()))
    runtime = trt.Runtime(logger)
    runtime.engine_host_code_allowed = bool(spec["tensorrt"]["version_compatible"])  # lean runtime in plan
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise EngineBuildError("TensorRT built an engine it cannot load back: see its log")
    information = engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON)
    (out / "engine.json").write_text(information)
    return {
        "engine_built": True,
        "tensorrt": str(trt.__version__),
        "cuda_runtime": cuda_runtime_version(),
        "gpu": gpu_info(),
        "layers": engine.num_layers,
        "structure_hash": layer_hash(information),
        "tactic_hash": layer_hash(information, tactics=True),
        "precisions": precisions(information),
        "tf32": bool(spec["tensorrt"].get("tf32", True)),
        "build_seconds": round(seconds, 3),
        "plan_sha256": hashlib.sha256(plan).hexdigest(),
        "timing_cache_in_sha256": hashlib.sha256(timing_cache).hexdigest() if timing_cache else None,
        "settings": spec["tensorrt"],
    }


def check_onnx(spec: dict[str, Any], onnx_path: str) -> None:
    """The ONNX file must be the one the spec was made for (its sha256 in build_spec.json)."""
    expected = (spec.get("onnx") or {}).get("sha256")
    if expected is None:
        return
    digest = hashlib.sha256(Path(onnx_path).read_bytes()).hexdigest()
    if digest != expected:
        raise EngineBuildError(f"{onnx_path} does not match build_spec.json (sha256 {digest[:16]}..., expected "
                               f"{expected[:16]}...): use the kit's own model.onnx")


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description="Build model.plan from an optbuild TensorRT build kit.")
    parser.add_argument("--spec", default=str(here / "build_spec.json"))
    parser.add_argument("--onnx", default=str(here / "model.onnx"))
    parser.add_argument("--out-dir", default=str(here / "build"),
                        help="where model.plan, engine.json, timing.cache and build_report.json go (default: build/)")
    parser.add_argument("--timing-cache", default=None, help="a timing cache to start from (default: the "
                        "out-dir's, else the kit's timing.cache if it has one)")
    args = parser.parse_args(argv)
    try:
        spec = json.loads(Path(args.spec).read_text())
        check_onnx(spec, args.onnx)
        load_tensorrt()
        Path(args.out_dir).mkdir(parents=True, exist_ok=True)
        candidates = [Path(args.timing_cache)] if args.timing_cache else [
            Path(args.out_dir, "timing.cache"), here / "timing.cache"]
        previous = next((p.read_bytes() for p in candidates if p.is_file()), None)
        report = build(spec, args.onnx, args.out_dir, previous)
    except (EngineBuildError, OSError, ValueError) as err:
        sys.stderr.write(f"build_engine: error: {err}\n")
        return 1
    Path(args.out_dir, "build_report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"built {Path(args.out_dir, 'model.plan')} (TensorRT {report['tensorrt']}, structure hash "
          f"{report['structure_hash'][:16]}, layers by precision {report['precisions']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
