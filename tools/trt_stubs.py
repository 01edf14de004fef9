"""Make the `tensorrt-stubs` type stubs readable by mypy.

tensorrt-stubs (10.13) installs only with `pip install --no-deps` (it requires the real
`tensorrt`, whose wheels come from NVIDIA's own index), and mypy refuses its `.pyi` files as
shipped: some parameters are named `in` (a keyword) and `add_scale_nd` has a parameter without a
default after defaulted ones (a syntax error). This copies the two stub folders, `tensorrt/` and
`tensorrt_bindings/`, renames `in` to `in_` and gives such trailing parameters `= ...`; every
file must then parse. Errors *inside* the stubs are silenced in pyproject.toml's mypy settings.

    python tools/trt_stubs.py SITE_DIR OUT_DIR   # SITE_DIR: where pip put tensorrt-stubs
"""

from __future__ import annotations

import ast
import re
import shutil
import sys
from pathlib import Path

FOLDERS = ("tensorrt", "tensorrt_bindings")
_KEYWORD_PARAM = re.compile(r"([(,]\s*)in(\s*:)")
_DEF = re.compile(r"^(\s*def \w+\()(.*)(\)\s*->.*:\s*)$")


def _split_params(text: str) -> list[str]:
    """Split a parameter list at top-level commas."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return parts + [current] if current.strip() else parts


def _defaults_in_order(line: str) -> str:
    match = _DEF.match(line)
    if not match:
        return line
    params = _split_params(match[2])
    seen_default = False
    for i, param in enumerate(params):
        bare = param.strip()
        if "=" in bare:
            seen_default = True
        elif seen_default and bare and not bare.startswith("*") and bare != "/":
            params[i] = f"{param} = ..."
    return f"{match[1]}{','.join(params)}{match[3]}"


def sanitise(text: str) -> str:
    return "\n".join(_defaults_in_order(_KEYWORD_PARAM.sub(r"\1in_\2", line)) for line in text.splitlines()) + "\n"


def main(site: Path, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    for folder in FOLDERS:
        source = site / folder
        if not source.is_dir():
            sys.exit(f"trt_stubs: {source} not found: pip install --no-deps --target {site} tensorrt-stubs")
        for stub in sorted(source.rglob("*.pyi")):
            target = out / stub.relative_to(site)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = sanitise(stub.read_text())
            ast.parse(text, filename=str(target))  # mypy must be able to read every file
            target.write_text(text)
    print(f"trt_stubs: sanitised {', '.join(FOLDERS)} into {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    main(Path(sys.argv[1]), Path(sys.argv[2]))
