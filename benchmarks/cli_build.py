"""Build an IR through the optbuild CLI for a benchmark script (a cached build is reused when
the out_dir is the same): ResNet-50 with seeded random weights, so it runs offline."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path


def build_ir(out_dir: Path, recipe: str = "resnet50_int8") -> tuple[Path, list[str]]:
    """The built version directory (resolved `latest`) and the command that built it."""
    command = [str(Path(sys.executable).parent / "optbuild"), f"recipe={recipe}", "model.weights=null",
               "validate.enabled=false", "benchmark.enabled=false", f"out_dir={out_dir}", "progress=false"]
    print(f"[build] {shlex.join(command)}", flush=True)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"optbuild failed with exit code {result.returncode}")
    precision = "int8" if recipe.endswith("int8") else "fp32"
    return (out_dir / recipe / f"intel-{precision}" / "latest").resolve(), command
