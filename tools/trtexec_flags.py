"""Extract the command-line flags each trtexec release accepts, for tests/data/trtexec_flags.json.

    python tools/trtexec_flags.py /path/to/TensorRT.git release/10.0 release/10.8 release/10.13 release/11.1

Reads samples/common/sampleOptions.cpp (where trtexec parses its options) at each git ref of a
clone of github.com/NVIDIA/TensorRT and prints, per ref, its commit and every "--flag" literal it
parses, plus the hardware-compatibility levels it knows. The kit test checks the flags optbuild
writes into trtexec.sh against this table.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

SOURCE = "samples/common/sampleOptions.cpp"


def flags_at(repo: str, ref: str) -> dict:
    text = subprocess.run(["git", "-C", repo, "show", f"{ref}:{SOURCE}"], check=True, capture_output=True,
                          text=True).stdout
    commit = subprocess.run(["git", "-C", repo, "rev-parse", ref], check=True, capture_output=True,
                            text=True).stdout.strip()
    levels = ["none"] + [level for level in ("ampere+", "samecomputecapability") if f'"{level}"' in text]
    return {"commit": commit, "source": SOURCE, "flags": sorted(set(re.findall(r'"(--[A-Za-z][A-Za-z0-9]*)', text))),
            "hardware_compatibility_levels": levels}


def main() -> None:
    repo, refs = sys.argv[1], sys.argv[2:]
    table = {"from": "https://github.com/NVIDIA/TensorRT", "releases": {ref: flags_at(repo, ref) for ref in refs}}
    print(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
