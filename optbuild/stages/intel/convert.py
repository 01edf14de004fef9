"""Stage `quantize` (intel): ONNX → OpenVINO model; for int8, NNCF post-training quantization."""

from __future__ import annotations

from typing import Any

from optbuild.data import DatasetRequest, batches, load
from optbuild.errors import OptbuildError, first_line
from optbuild.stages.intel import ir
from optbuild.stages.model_inputs import check_inputs


def quantize(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """The calibration set arrives shuffled by its seed: NNCF takes the first `subset_size`
    items in order."""
    import onnx
    import openvino as ov

    check_inputs(onnx.load(inputs["model.onnx"], load_external_data=False), params["inputs"])
    try:
        model = ov.convert_model(inputs["model.onnx"])
        reshape(model, params["shapes"])
    except Exception as err:  # noqa: BLE001
        raise OptbuildError(f"OpenVINO cannot convert the ONNX model: {first_line(err)}") from err
    if not params["int8"]:
        ir.save(model, out_dir, compress_to_fp16=False)
        return {"files": ["model.xml", "model.bin"], "data": {"quantized": False}}
    validation = params.get("validation")
    data = _nncf_quantize_into(model, DatasetRequest.from_data(params["calibration"]), out_dir,
                               params.get("accuracy_control"),
                               DatasetRequest.from_data(validation) if validation else None, inputs["model.onnx"],
                               nncf_options(params))
    # The NNCF settings the recipe chose (null: NNCF's defaults), so the manifest shows how it was quantized.
    data["settings"] = {key: params.get(key) for key in ("model_type", "smooth_quant_alpha")}
    return {"files": ["model.xml", "model.bin"], "data": data}


def reshape(model: Any, shapes: dict[str, list[Any]]) -> None:
    """Each input at its build shape: a size, or [min, max] for a dimension the IR keeps dynamic
    (target.dynamic_shapes). Inputs that already have that shape are left alone."""
    import openvino as ov

    wanted = {}
    for port in model.inputs:
        name = port.get_any_name()
        if name not in shapes:
            continue
        shape = ov.PartialShape([ov.Dimension(*dim) if isinstance(dim, list) else ov.Dimension(dim)
                                 for dim in shapes[name]])
        if port.get_partial_shape() != shape:
            wanted[name] = shape
    if wanted:
        model.reshape(wanted)


def nncf_options(params: dict[str, Any]) -> dict[str, Any]:
    """nncf.quantize's keyword arguments for the recipe's quantize.* settings (none by default:
    a CNN build calls it exactly as before)."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, AdvancedSmoothQuantParameters

    options: dict[str, Any] = {}
    if params.get("model_type") == "transformer":
        options["model_type"] = nncf.ModelType.TRANSFORMER
    if params.get("smooth_quant_alpha") is not None:
        options["advanced_parameters"] = AdvancedQuantizationParameters(
            smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=params["smooth_quant_alpha"]))
    return options


def _nncf_quantize_into(model: Any, calibration: DatasetRequest, out_dir: str, control: dict[str, Any] | None,
                        validation: DatasetRequest | None, onnx_path: str, options: dict[str, Any]) -> dict[str, Any]:
    import nncf

    from optbuild.stages.intel.accuracy import layers_in_float, quantize_with_control

    items = batches(load(calibration), calibration.batch)
    record: dict[str, Any] = {}
    if control is not None and validation is not None:
        quantized, record = quantize_with_control(model, items, onnx_path, validation, control, options)
    else:
        quantized = nncf.quantize(model, nncf.Dataset(items), subset_size=len(items), **options)
    ir.save(quantized, out_dir, compress_to_fp16=False)
    fq = sum(1 for op in quantized.get_ops() if op.get_type_name() == "FakeQuantize")
    return {"quantized": True, "calibration_samples": len(items) * calibration.batch, "fake_quantize_ops": fq,
            "layers_in_float": layers_in_float(quantized), "accuracy_control": record or None}
