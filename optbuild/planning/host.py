"""What a planner may ask about the machine it plans for, asked at most once per build.

Planners take a Host rather than probing themselves, so that plans can be tabled in tests for
every target × precision × engine mode without touching the GPU driver.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
from dataclasses import dataclass, field
from typing import Any, Protocol


class Host(Protocol):
    def missing_for_engine(self) -> list[str]:
        """What the machine lacks to build a TensorRT engine (empty when nothing is missing)."""
        ...

    def gpu(self) -> dict[str, Any]:
        """GPU name, compute capability and driver versions (None where unknown)."""
        ...


def _cuda_devices() -> int | None:
    """GPUs the CUDA driver sees; None without a driver. Cheap: no torch, no TensorRT."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    count = ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


class LocalHost:
    """The machine this process runs on."""

    @functools.cached_property
    def _missing(self) -> list[str]:
        missing = []
        spec = importlib.util.find_spec("tensorrt")
        if spec is None or spec.origin is None:  # a namespace package (e.g. type stubs only) is not TensorRT
            missing.append("TensorRT (the tensorrt Python package) is not installed")
        devices = _cuda_devices()
        if devices is None:
            missing.append("no NVIDIA GPU driver (libcuda) was found")
        elif devices == 0:
            missing.append("the CUDA driver sees no GPU")
        return missing

    @functools.cached_property
    def _gpu(self) -> dict[str, Any]:
        from optbuild.stages.nvidia.engine import gpu_info

        return gpu_info()

    def missing_for_engine(self) -> list[str]:
        return list(self._missing)

    def gpu(self) -> dict[str, Any]:
        return dict(self._gpu)


@dataclass(frozen=True)
class FixedHost:
    """A host with given answers: plans for a machine other than this one (tests, dry runs)."""

    missing: tuple[str, ...] = ()
    gpu_facts: dict[str, Any] = field(default_factory=dict)

    def missing_for_engine(self) -> list[str]:
        return list(self.missing)

    def gpu(self) -> dict[str, Any]:
        return dict(self.gpu_facts)
