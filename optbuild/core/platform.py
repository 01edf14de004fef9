"""Installed tool versions and the build platform, read without importing the tools."""

from __future__ import annotations

import functools
import os
import platform
import sys
from importlib import metadata

import optbuild

TOOLS = ("torch", "torchvision", "onnx", "onnxruntime", "onnx-graphsurgeon", "openvino", "nncf",
         "tensorrt", "polygraphy", "onnxslim")
# ISA flags that change which kernels (and so which numbers) the runtimes produce.
_ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16",
              "amx_int8", "amx_tile", "avx_vnni", "fma", "f16c")


def version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def versions(packages: tuple[str, ...] = TOOLS) -> dict[str, str | None]:
    return {name: version(name) for name in packages}


def toolchain() -> dict[str, str | None]:
    return {"python": sys.version.split()[0], "optbuild": optbuild.__version__, **versions()}


@functools.cache
def platform_info() -> dict[str, object]:
    """CPU model and the ISA flags that matter for inference kernels (no GPU probing here)."""
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return {
        "machine": platform.machine(),
        "system": platform.system(),
        "cpu": model,
        "cores": os.cpu_count(),
        "isa": sorted(flag for flag in _ISA_FLAGS if flag in flags),
    }
