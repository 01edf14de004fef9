"""The translation from recipe settings to TensorRT builder calls, for TensorRT 10- and 11-style
APIs, against `RecordingTensorRT`: a recording double of the `tensorrt` module, used at that one
boundary only (engine.use). It builds nothing; nothing else in the suite rests on it. The real
build runs in tests/integration/test_nvidia_gpu.py where TensorRT and a GPU exist."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from optbuild.stages.nvidia import engine
from optbuild.stages.nvidia.engine import SPEC_SCHEMA, EngineBuildError

LAYERS = [{"Name": "conv1 + relu", "LayerType": "CaskConvolution", "TacticName": "sm80_xmma_fprop_int8",
           "TacticValue": "0x1f", "Inputs": [{"Name": "input", "Format/Datatype": "Int8 NC/32HW32"}],
           "Outputs": [{"Name": "x", "Format/Datatype": "Int8 NC/32HW32"}]}]
# The same engine as each version's inspector describes it: 11.x replaced "Bindings".
INSPECTOR = {
    10: {"Layers": LAYERS, "Bindings": ["input", "logits"]},
    11: {"Layers": LAYERS, "I/O Tensors": [{"Name": "input", "IOMode": "Input", "DataType": "Float"}]},
}


class RecordingTensorRT:
    """A recording double of the `tensorrt` module in its 10.x or 11.x shape. 11.x has no
    precision builder flags (FP16/INT8/BF16/FP8...): touching one raises AttributeError, as
    the real 11.x does. `calls` lists every call in order."""

    def __init__(self, major: int, inputs: dict[str, list[int]] | None = None,
                 parse_errors: list[tuple[str, str, str]] = (), cache_matches: bool = True) -> None:
        self.__version__ = f"{major}.4.0"
        self.calls: list[tuple[Any, ...]] = []
        record = self.calls.append
        flags = ["REFIT", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "TF32"]
        if major == 10:
            flags += ["FP16", "BF16", "INT8", "FP8", "OBEY_PRECISION_CONSTRAINTS"]
        self.BuilderFlag = SimpleNamespace(**{f: f"BuilderFlag.{f}" for f in flags})
        self.NetworkDefinitionCreationFlag = SimpleNamespace(**({"STRONGLY_TYPED": 1} if major == 10 else {}))
        self.MemoryPoolType = SimpleNamespace(WORKSPACE="MemoryPoolType.WORKSPACE")
        # As in the real 10.4: SAME_COMPUTE_CAPABILITY arrived in 10.9.
        self.HardwareCompatibilityLevel = SimpleNamespace(NONE="hw.NONE", AMPERE_PLUS="hw.AMPERE_PLUS", **(
            {} if major == 10 else {"SAME_COMPUTE_CAPABILITY": "hw.SAME_COMPUTE_CAPABILITY"}))
        self.ProfilingVerbosity = SimpleNamespace(LAYER_NAMES_ONLY="pv.LAYER_NAMES_ONLY", DETAILED="pv.DETAILED",
                                                  NONE="pv.NONE")
        self.LayerInformationFormat = SimpleNamespace(JSON="lif.JSON", ONELINE="lif.ONELINE")
        self.Dims = lambda shape: tuple(shape)
        inputs = inputs or {"input": [1, 3, 32, 32]}
        inspector_json = json.dumps(INSPECTOR[major])

        class Setter:
            """Records attribute assignments (config.builder_optimization_level = 5, ...)."""

            def __setattr__(self, name: str, value: Any) -> None:
                record((f"{type(self).__name__}.{name}", value))
                object.__setattr__(self, name, value)

        class TimingCache:
            def __init__(self, data: bytes) -> None:
                self.data = data

            def combine(self, other: TimingCache, ignore_mismatch: bool) -> bool:
                record(("TimingCache.combine", other.data, ignore_mismatch))
                self.data += other.data
                return cache_matches

            def serialize(self) -> bytes:
                return self.data + b"+new-timings"

        class Profile:
            def set_shape(self, name: str, low: Any, mid: Any, high: Any) -> None:
                record(("Profile.set_shape", name, low, mid, high))

        class BuilderConfig(Setter):
            def set_memory_pool_limit(self, pool: str, size: int) -> None:
                record(("BuilderConfig.set_memory_pool_limit", pool, size))

            def set_flag(self, flag: str) -> None:
                record(("BuilderConfig.set_flag", flag))

            def clear_flag(self, flag: str) -> None:
                record(("BuilderConfig.clear_flag", flag))

            def add_optimization_profile(self, profile: Profile) -> int:
                record(("BuilderConfig.add_optimization_profile",))
                return 0

            def create_timing_cache(self, data: bytes) -> TimingCache:
                record(("BuilderConfig.create_timing_cache", bytes(data)))
                return TimingCache(bytes(data))

            def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
                record(("BuilderConfig.set_timing_cache", cache.data, ignore_mismatch))
                object.__setattr__(self, "_cache", cache)
                return True

            def get_timing_cache(self) -> TimingCache:
                return self._cache

        class Network:
            num_inputs = len(inputs)

            def get_input(self, index: int) -> Any:
                name = list(inputs)[index]
                return SimpleNamespace(name=name, shape=inputs[name])

        class Builder:
            def __init__(self, logger: Any) -> None:
                record(("Builder",))

            def create_network(self, flags: int) -> Network:
                record(("Builder.create_network", flags))
                return Network()

            def create_builder_config(self) -> BuilderConfig:
                return BuilderConfig()

            def create_optimization_profile(self) -> Profile:
                return Profile()

            def build_serialized_network(self, network: Network, config: BuilderConfig) -> bytes:
                record(("Builder.build_serialized_network",))
                return b"PLAN"

        class ParserError:
            def __init__(self, node: str, op: str, desc: str) -> None:
                self._node, self._op, self._desc = node, op, desc

            def node_name(self) -> str:
                return self._node

            def node(self) -> int:
                return 3

            def node_operator(self) -> str:
                return self._op

            def desc(self) -> str:
                return self._desc

        class OnnxParser:
            def __init__(self, network: Network, logger: Any) -> None:
                self.num_errors = len(parse_errors)

            def parse_from_file(self, path: str) -> bool:
                record(("OnnxParser.parse_from_file", Path(path).name))
                return not parse_errors

            def get_error(self, index: int) -> ParserError:
                return ParserError(*parse_errors[index])

        class Engine:
            num_layers = len(LAYERS)

            def create_engine_inspector(self) -> Any:
                return SimpleNamespace(get_engine_information=lambda fmt: inspector_json)

        class Runtime(Setter):
            def __init__(self, logger: Any) -> None:
                pass

            def deserialize_cuda_engine(self, plan: bytes) -> Engine:
                record(("Runtime.deserialize_cuda_engine", plan))
                return Engine()

        class Logger:
            WARNING = "Logger.WARNING"

            def __init__(self, severity: str) -> None:
                pass

        self.Logger, self.Builder, self.OnnxParser, self.Runtime = Logger, Builder, OnnxParser, Runtime

    def named(self, prefix: str) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0].startswith(prefix)]


def spec(**tensorrt: Any) -> dict[str, Any]:
    settings = {"workspace_mib": None, "optimization_level": 3, "profiles": [], "hardware_compatibility": "none",
                "version_compatible": False, "refit": False, "profiling_verbosity": "detailed", **tensorrt}
    return {"schema": SPEC_SCHEMA, "precision": "int8", "inputs": [{"name": "input", "shape": [1, 3, 32, 32]}],
            "tensorrt": settings}


DYNAMIC = {"input": [-1, 3, 32, 32]}
PROFILE = [{"shapes": [{"input": "input", "min": [1, 3, 32, 32], "opt": [8, 3, 32, 32], "max": [32, 3, 32, 32]}]}]


@pytest.fixture()
def bind():
    def use(double: RecordingTensorRT) -> RecordingTensorRT:
        engine.use(double)
        return double

    yield use
    engine.use(None)


@pytest.mark.parametrize("major", [10, 11])
def test_recipe_settings_become_these_builder_calls(bind, tmp_path: Path, major: int):
    trt = bind(RecordingTensorRT(major, inputs=DYNAMIC))
    settings = spec(workspace_mib=256, optimization_level=5, profiles=PROFILE, hardware_compatibility="ampere_plus",
                    version_compatible=True, refit=True, profiling_verbosity="detailed")
    report = engine.build(settings, str(tmp_path / "model.onnx"), str(tmp_path), timing_cache=b"old-timings")

    # 10.x opts in to strong typing; the 11.x double has no such flag (always strongly typed).
    assert trt.named("Builder.create_network") == [("Builder.create_network", 2 if major == 10 else 0)]
    assert trt.named("OnnxParser") == [("OnnxParser.parse_from_file", "model.onnx")]
    assert ("BuilderConfig.set_memory_pool_limit", "MemoryPoolType.WORKSPACE", 256 << 20) in trt.calls
    assert ("BuilderConfig.builder_optimization_level", 5) in trt.calls
    assert ("BuilderConfig.hardware_compatibility_level", "hw.AMPERE_PLUS") in trt.calls
    assert ("BuilderConfig.profiling_verbosity", "pv.DETAILED") in trt.calls
    assert trt.named("BuilderConfig.set_flag") == [("BuilderConfig.set_flag", "BuilderFlag.VERSION_COMPATIBLE"),
                                                   ("BuilderConfig.set_flag", "BuilderFlag.REFIT")]
    assert trt.named("Profile.set_shape") == [("Profile.set_shape", "input", (1, 3, 32, 32), (8, 3, 32, 32),
                                               (32, 3, 32, 32))]
    # Timing cache: a fresh one merged with the previous, set before the build, saved after it.
    assert trt.named("BuilderConfig.create_timing_cache") == [("BuilderConfig.create_timing_cache", b""),
                                                              ("BuilderConfig.create_timing_cache", b"old-timings")]
    assert ("TimingCache.combine", b"old-timings", False) in trt.calls
    order = [call[0] for call in trt.calls]
    assert order.index("BuilderConfig.set_timing_cache") < order.index("Builder.build_serialized_network")
    assert (tmp_path / "timing.cache").read_bytes() == b"old-timings+new-timings"
    # A version-compatible plan carries the lean runtime: loading it back must allow host code.
    assert ("Runtime.engine_host_code_allowed", True) in trt.calls
    assert (tmp_path / "model.plan").read_bytes() == b"PLAN"
    assert json.loads((tmp_path / "engine.json").read_text())["Layers"] == LAYERS
    assert report["tensorrt"] == f"{major}.4.0" and report["layers"] == 1


def test_no_precision_flag_is_ever_set_and_defaults_set_no_flags(bind, tmp_path: Path):
    trt = bind(RecordingTensorRT(10))
    engine.build(spec(), str(tmp_path / "model.onnx"), str(tmp_path))
    assert trt.named("BuilderConfig.set_flag") == []
    assert trt.named("BuilderConfig.set_memory_pool_limit") == []
    assert ("BuilderConfig.hardware_compatibility_level", "hw.NONE") in trt.calls


def test_a_compatibility_level_the_installed_tensorrt_lacks_is_one_clear_error(bind, tmp_path: Path):
    trt = bind(RecordingTensorRT(10))  # 10.4: no SAME_COMPUTE_CAPABILITY, and building must not touch it
    engine.build(spec(), str(tmp_path / "model.onnx"), str(tmp_path))
    with pytest.raises(EngineBuildError, match=r"hardware_compatibility=same_compute_capability needs a newer "
                                               r"TensorRT than 10.4.0.*choose none or ampere_plus"):
        engine.build(spec(hardware_compatibility="same_compute_capability"), str(tmp_path / "model.onnx"),
                     str(tmp_path))
    assert len(trt.named("Builder.build_serialized_network")) == 1
    bind(RecordingTensorRT(11))
    engine.build(spec(hardware_compatibility="same_compute_capability"), str(tmp_path / "model.onnx"), str(tmp_path))


def test_whatever_tensorrt_raises_is_one_line_with_its_version(bind, tmp_path: Path):
    trt = bind(RecordingTensorRT(11))

    def broken(*args: Any) -> None:
        raise RuntimeError("[TRT] [E] 4: kOPT values for profile 0 violate shape constraints\nmore detail")

    trt.Builder.build_serialized_network = broken
    with pytest.raises(EngineBuildError) as raised:
        engine.build(spec(), str(tmp_path / "model.onnx"), str(tmp_path))
    assert str(raised.value) == ("TensorRT 11.4.0 failed: RuntimeError: [TRT] [E] 4: kOPT values for profile 0 "
                                 "violate shape constraints")


def test_structure_hash_is_the_same_for_10_and_11_inspector_formats_and_ignores_tactics(bind, tmp_path: Path):
    reports = []
    for major in (10, 11):
        bind(RecordingTensorRT(major))
        out = tmp_path / str(major)
        out.mkdir()
        reports.append(engine.build(spec(), str(out / "model.onnx"), str(out)))
    assert reports[0]["structure_hash"] == reports[1]["structure_hash"]
    assert reports[0]["tactic_hash"] == reports[1]["tactic_hash"] != reports[0]["structure_hash"]
    other_kernel = json.dumps({"Layers": [{**LAYERS[0], "TacticName": "sm80_other_tactic"}]})
    same = json.dumps({"Layers": [LAYERS[0]]})
    assert engine.layer_hash(other_kernel) == engine.layer_hash(same)  # what reproducible compares
    assert engine.layer_hash(other_kernel, tactics=True) != engine.layer_hash(same, tactics=True)


# The engine inspector's JSON for a QAT ResNet-50 built by TensorRT on an A100: TensorRT's own
# example (tools/experimental/trt-engine-explorer/examples/pytorch/resnet/A100/qat/
# resnet-qat.onnx.engine.graph.json, release/10.13).
A100_QAT_INSPECTOR = Path(__file__).resolve().parents[1] / "data/trt_inspector_resnet_qat_a100.json"


def test_layers_are_counted_by_precision_from_a_real_inspector_report():
    information = A100_QAT_INSPECTOR.read_text()
    counts = engine.precisions(information)
    assert sum(counts.values()) == len(json.loads(information)["Layers"])
    assert set(counts) <= {"Int8", "FP16", "FP32", "unknown"} and counts["Int8"] > counts.get("FP32", 0) > 0
    assert "FP16" in counts  # the Reformat layers that feed FP16 into the int8 graph
    assert engine.precisions(json.dumps({"Layers": ["conv1", "relu1"]})) == {"unknown": 2}  # layer names only


def test_parser_errors_name_the_node(bind, tmp_path: Path):
    bind(RecordingTensorRT(11, parse_errors=[("/layer1/Conv_3", "Conv", "unsupported kernel shape")]))
    with pytest.raises(EngineBuildError, match=r"node '/layer1/Conv_3' \(Conv\): unsupported kernel shape"):
        engine.build(spec(), str(tmp_path / "model.onnx"), str(tmp_path))


def test_dynamic_input_requires_a_profile(bind, tmp_path: Path):
    trt = bind(RecordingTensorRT(11, inputs=DYNAMIC))
    with pytest.raises(EngineBuildError, match=r"input 'input' has dynamic shape \[-1, 3, 32, 32\].*profiles"):
        engine.build(spec(), str(tmp_path / "model.onnx"), str(tmp_path))
    assert trt.named("Builder.build_serialized_network") == []


def test_profile_must_match_static_dims(bind, tmp_path: Path):
    bind(RecordingTensorRT(11, inputs=DYNAMIC))
    bad = [{"shapes": [{"input": "input", "min": [1, 3, 32, 32], "opt": [8, 3, 64, 64], "max": [32, 3, 32, 32]}]}]
    with pytest.raises(EngineBuildError, match="dim 2 is static"):
        engine.build(spec(profiles=bad), str(tmp_path / "model.onnx"), str(tmp_path))


def test_mismatched_timing_cache_is_refused(bind, tmp_path: Path):
    bind(RecordingTensorRT(10, cache_matches=False))
    with pytest.raises(EngineBuildError, match="another TensorRT version or GPU"):
        engine.build(spec(), str(tmp_path / "model.onnx"), str(tmp_path), timing_cache=b"from-elsewhere")


def test_real_tensorrt_missing_is_one_clear_error():
    """No double here: this machine has no TensorRT (at most type stubs), and loading says so."""
    pytest.importorskip("optbuild")
    try:
        import tensorrt  # noqa: F401
        has_builder = hasattr(tensorrt, "Builder")
    except ImportError:
        has_builder = False
    if has_builder:
        pytest.skip("TensorRT is installed here")
    with pytest.raises(EngineBuildError, match="TensorRT is not installed|not TensorRT"):
        engine.load_tensorrt()


@pytest.mark.parametrize("tf32, cleared", [(True, []), (False, [("BuilderConfig.clear_flag", "BuilderFlag.TF32")])])
def test_tf32_policy_is_explicit_and_recorded(bind, tmp_path: Path, tf32: bool, cleared: list):
    trt = bind(RecordingTensorRT(11))
    report = engine.build(spec(tf32=tf32), str(tmp_path / "model.onnx"), str(tmp_path))
    assert trt.named("BuilderConfig.clear_flag") == cleared and report["tf32"] is tf32
