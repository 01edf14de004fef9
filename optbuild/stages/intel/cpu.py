"""What the benchmark and tune stages know about the CPU they measure on, and which inference
precisions a build's precision allows the runtime to use there."""

from __future__ import annotations

import os
from typing import Any

from optbuild.core.platform import platform_info

# OPTIMIZATION_CAPABILITIES entry that says the device computes in that precision natively.
_CAPABILITY = {"f32": "FP32", "bf16": "BF16", "f16": "FP16"}


def usable_cores() -> int:
    """CPUs this process may run on (a container's or taskset's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def device_facts(core: Any, device: str) -> dict[str, Any]:
    """CPU model and ISA flags from /proc/cpuinfo, and the device as OpenVINO sees it."""
    info = platform_info()
    return {
        "cpu": info["cpu"],
        "isa": info["isa"],
        "usable_cores": usable_cores(),
        "device": device,
        "full_device_name": str(core.get_property(device, "FULL_DEVICE_NAME")),
        "optimization_capabilities": [str(c) for c in core.get_property(device, "OPTIMIZATION_CAPABILITIES")],
    }


def default_inference_precisions(precision: str, capabilities: list[str]) -> list[str | None]:
    """Tuning candidates when the recipe names none (None: leave the device default).

    fp32 → f32 only; fp16/bf16 → their own precision when the device has it natively, else the
    build's runtime.json unchanged (None); int8 → the device default and f32, plus bf16/f16 where
    native (duplicates of the default are dropped later, by what the device resolves them to).
    """
    native = [p for p in ("bf16", "f16") if _CAPABILITY[p] in capabilities]
    if precision == "fp32":
        return ["f32"]
    if precision in ("fp16", "bf16"):
        own = "f16" if precision == "fp16" else "bf16"
        return [own] if own in native else [None]
    return [None, "f32", *native]
