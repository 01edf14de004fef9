"""`optbuild.load(PATH)`: a published artifact, checked against its manifest, as a callable.

    model = optbuild.load("outputs/efficientnet_lite0_int8/intel-int8/latest")
    outputs = model(image)            # a decoded image, an array, or a dict of arrays
    many = model.map(images)          # concurrent requests (OpenVINO AsyncInferQueue)

The files must hash to what the manifest records and the manifest to its provenance (a changed,
missing or out-of-folder file, or a version that failed its gates, refuses to load); the input
contract (`model.contract`, the manifest's `interface`) is checked on every call, so a wrong
dtype or size is one clear error instead of garbage outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from optbuild.config.model import MAX_DIM
from optbuild.errors import OptbuildError
from optbuild.publish.published import ModelKind, open_artifact
from optbuild.serving.contract import Feeds
from optbuild.serving.model import ServedModel


def _contract(manifest: dict[str, Any], fallback: list[dict[str, Any]]) -> list[dict[str, Any]]:
    interface = manifest.get("interface") or {}
    return list(interface.get("inputs") or fallback)


def load(path: str | Path, device: str | None = None) -> Any:
    """The artifact at PATH, ready to call. intel: the IR compiled with its runtime.json (on
    `device` instead when given); nvidia: the TensorRT engine, deserialised on this GPU."""
    artifact = open_artifact(Path(path).expanduser(), "load")
    folder, manifest = artifact.path, artifact.manifest
    if artifact.kind is ModelKind.openvino:
        from optbuild.serving.openvino import OpenVINOModel
        from optbuild.stages.intel.runtime import read_runtime

        runtime = read_runtime(str(folder / "runtime.json"))
        if device:
            runtime = {**runtime, "device": device}
        contract = _contract(manifest, _ir_inputs(folder / "model.xml"))
        return OpenVINOModel(str(folder / "model.xml"), runtime, contract)
    if artifact.kind is ModelKind.tensorrt:
        return TensorRTModel(folder, manifest)
    raise OptbuildError(f"load: {folder} is a TensorRT build kit, not an engine: build it on a GPU machine "
                        "(`bash trtexec.sh` or `python build_engine.py` in the kit), or build with "
                        "target.engine=build there, then load that artifact")


def _ir_inputs(model_xml: Path) -> list[dict[str, Any]]:
    """The contract of an IR published without one: its inputs as they are."""
    import openvino as ov

    model = ov.Core().read_model(str(model_xml))
    contract = []
    for port in model.inputs:
        shape = port.get_partial_shape()
        contract.append({"name": port.get_any_name(), "dtype": port.get_element_type().to_dtype().name,
                         "shape": [d.get_length() if d.is_static else 1 for d in shape],
                         "dynamic": {str(a): [1, MAX_DIM] for a, d in enumerate(shape) if not d.is_static},
                         "layout": None, "color": None, "preprocess": None})
    return contract


class TensorRTModel(ServedModel):
    """A TensorRT engine behind its input contract: `model(x)` -> {output: array}."""

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        from optbuild.stages.nvidia.gpu import EngineRunner

        self.contract = _contract(manifest, [])
        if not self.contract:
            raise OptbuildError(f"{folder}/manifest.json records no interface: rebuild the artifact with this optbuild")
        spec = (manifest.get("config") or {}).get("target", {}).get("tensorrt", {})
        self.runner = EngineRunner(str(folder / "model.plan"), bool(spec.get("version_compatible")))

    def _run(self, feeds: Feeds) -> dict[str, np.ndarray]:
        return dict(zip(self.runner.outputs, self.runner(feeds)))
