"""Stage `build` (intel): the artifact IR, proven to compile on its device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optbuild.stages.intel import client_input, ir
from optbuild.stages.intel.runtime import RUNTIME_FILE, runtime_properties, write_runtime


def save_ir(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """The IR with the client's preprocessing built in (serve.embed_preprocess), saved with an
    explicit weight compression choice, compiled once on the device to prove it loads, and its
    runtime properties written next to it."""
    import openvino as ov

    core = ov.Core()
    model = client_input.embed(core.read_model(inputs["model.xml"]), params["client"])
    ir.save(model, out_dir, params["compress_to_fp16"])
    properties = runtime_properties(params)
    compiled = core.compile_model(str(Path(out_dir, "model.xml")), params["device"], properties)
    resolved = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
    runtime = {"device": params["device"], "properties": properties}
    asked = params.get("inference_precision")
    notes = [f"precision={params['name']} asked {params['device']} for {asked} compute, which this device runs as "
             f"{resolved} (it has no native {asked}): the numbers here are {resolved}'s"] if asked and asked != resolved \
        else []
    write_runtime(out_dir, runtime)
    return {
        "files": ["model.xml", "model.bin", RUNTIME_FILE],
        "data": {"runtime": runtime, "resolved_inference_precision": resolved, "notes": notes,
                 "compress_to_fp16": params["compress_to_fp16"],
                 "interface": client_input.interface(model, params["client"])},
    }
