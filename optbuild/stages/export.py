"""Stage `export`: torch module → ONNX (legacy TorchScript exporter: deterministic, one file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optbuild.errors import OptbuildError, first_line
from optbuild.sources.torch_models import build_module


def export_onnx(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    import torch

    module = build_module(params["source"], params["name"], params["seed"], inputs.get("weights.pt"))
    examples = tuple(torch.zeros(spec["shape"], dtype=getattr(torch, spec["dtype"])) for spec in params["inputs"])
    target = Path(out_dir, "model.onnx")
    try:
        with torch.no_grad():
            torch.onnx.export(
                module,
                examples,
                str(target),
                dynamo=False,
                opset_version=params["opset"],
                input_names=[spec["name"] for spec in params["inputs"]],
                output_names=params["output_names"],
                do_constant_folding=True,
                # JSON turned the axes into strings; the exporter wants them as ints.
                dynamic_axes={name: {int(axis): dim for axis, dim in axes.items()}
                              for name, axes in params.get("dynamic", {}).items()} or None,
            )
    except Exception as err:  # noqa: BLE001 - exporter failures come in many types
        raise OptbuildError(
            f"torch.onnx.export failed for {params['name']} at opset {params['opset']}: {first_line(err)}; "
            "check model.inputs shapes or try another export.opset"
        ) from err
    return {"files": ["model.onnx"], "data": {"opset": params["opset"]}}
