"""README.md for a Triton version folder made from a TensorRT build kit: the engine does not exist
yet (a CPU machine cannot build it), so the folder says how to build it and where it goes."""

from __future__ import annotations

from pathlib import Path

from optbuild.publish.published import Artifact
from optbuild.stages.nvidia.kit import BUILD_DIR, SCRIPT, TRTEXEC


def engine_instructions(artifact: Artifact, version_dir: Path) -> str:
    model_dir = version_dir.parent
    checks = ("\n    python check_engine.py   # checks the engine against the FP32 model's outputs"
              if artifact.has("check_engine.py") else "")
    return f"""# {model_dir.name}, version {version_dir.name}: no TensorRT engine yet

This version was deployed from a TensorRT build kit: {artifact.label}
(manifest sha256 {artifact.manifest_sha256}).
Triton cannot load it until `model.plan` is in this folder.

On a machine with an NVIDIA GPU and TensorRT, in the kit's folder (the artifact version):

    bash {TRTEXEC}   # or: python {SCRIPT}; both write {BUILD_DIR}/model.plan{checks}

Then place the engine here, from where the repository was deployed:

    optbuild deploy <the kit's folder> --to triton {model_dir.parent.name} --name {model_dir.name} \\
        --version {version_dir.name} --engine <the kit's folder>/{BUILD_DIR}/model.plan

which copies it as `model.plan` and records its sha256 in optbuild.json (or copy
`{BUILD_DIR}/model.plan` here as `model.plan` by hand). Build the engine with the TensorRT version
that Triton's container ships: an engine only loads in the TensorRT it was built with, unless the
kit's recipe set target.tensorrt.version_compatible.
"""
