"""Stage `export` for huggingface sources: a transformers model → ONNX, with dynamic batch and
sequence axes and, where the recipe asks, a pooling head (sentence embeddings).

transformers 5 models do not trace with the legacy exporter (their attention masks index traced
shapes), so this uses torch.export (`dynamo=True`, needs onnxscript), in a fresh process like every
stage. The inputs are the recipe's (input_ids, attention_mask, token_type_ids: any of them, in
its order); the output is the last hidden state [batch, seq, hidden], or the pooled [batch, hidden]
vector (mean over the unmasked tokens, or the first token), L2-normalised when asked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optbuild.errors import OptbuildError, first_line

MIN_OPSET = 18  # what torch.export's ONNX translation writes


ARGUMENTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids")


def _module(folder: Path, pooling: str, normalize: bool) -> Any:
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(folder), local_files_only=True, attn_implementation="eager").eval()

    class Exported(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any = None, attention_mask: Any = None, token_type_ids: Any = None,
                    position_ids: Any = None) -> Any:
            named = {name: value for name, value in zip(ARGUMENTS, (input_ids, attention_mask, token_type_ids,
                                                                     position_ids)) if value is not None}
            hidden = self.model(**named).last_hidden_state
            if pooling == "mean":
                mask = named.get("attention_mask", torch.ones_like(hidden[..., 0])).unsqueeze(-1).to(hidden.dtype)
                hidden = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            elif pooling == "cls":
                hidden = hidden[:, 0]
            return torch.nn.functional.normalize(hidden, p=2, dim=-1) if normalize else hidden

    return Exported().eval()


def export_transformer(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    import torch

    folder = Path(inputs["config.json"]).parent  # the source's files sit side by side in the stage's inputs
    specs = params["inputs"]
    names = [spec["name"] for spec in specs]
    unknown = [name for name in names if name not in ARGUMENTS]
    if unknown:
        raise OptbuildError(f"a transformers model takes {', '.join(ARGUMENTS)}; model.inputs names {unknown}")
    module = _module(folder, params["pooling"], params["normalize"])
    # Example sizes of at least 2: torch.export would take a size-1 dimension for a constant.
    examples = {spec["name"]: torch.ones([max(2, d) if axis in params["dynamic"].get(spec["name"], {}) else d
                                          for axis, d in enumerate(spec["shape"])], dtype=getattr(torch, spec["dtype"]))
                for spec in specs}
    dims = {key: torch.export.Dim(key, min=bounds[0], max=bounds[1]) for key, bounds in params["ranges"].items()}
    dynamic = {spec["name"]: {int(axis): dims[key] for axis, key in params["dynamic"].get(spec["name"], {}).items()}
               for spec in specs}
    opset = max(int(params["opset"]), MIN_OPSET)
    try:
        with torch.no_grad():
            torch.onnx.export(module, (), str(Path(out_dir, "model.onnx")), kwargs=examples, dynamo=True,
                              input_names=names,
                              output_names=params["output_names"], dynamic_shapes=dynamic, opset_version=opset,
                              external_data=False)
    except Exception as err:  # noqa: BLE001 - exporter failures come in many types
        cause = err.__cause__ or err  # the exporter wraps torch.export's own error
        raise OptbuildError(f"torch.onnx.export (dynamo) failed for {params['name']}: {first_line(cause)}; check "
                            "model.inputs and their dims") from err
    return {"files": ["model.onnx"], "data": {"opset": opset, "exporter": "torch.export (dynamo)"}}
