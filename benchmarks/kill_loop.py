"""Kill -9 a build at random moments, over and over, and check after each kill that nothing is
wrong: `optbuild verify` passes on the whole output tree, the next build of the same recipe
succeeds with the same artifact digests as a clean build, and no version was published twice.

    .venv/bin/python benchmarks/kill_loop.py --trials 25 [--seed 0] [--work DIR]

Prints one line per trial and exits non-zero at the first broken promise. The build is the
quickstart-sized test recipe (a small ONNX CNN, INT8, calibration and validation on the sample
photos), so a kill lands in every stage, publishing included.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from conftest import small_model, tiny_recipe  # noqa: E402

BUILD = ["recipe=kill_loop", "benchmark.enabled=false", "progress=false"]


def optbuild(work: Path, *args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "optbuild.cli", *args], cwd=work, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def digests(version: Path) -> dict[str, str]:
    return {a["path"]: a["sha256"] for a in json.loads((version / "manifest.json").read_text())["artifacts"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="optbuild-kill-loop-"))
    recipes = work / "recipes"
    recipes.mkdir(parents=True, exist_ok=True)
    model = small_model(work / "small.onnx")
    (recipes / "kill_loop.yaml").write_text(tiny_recipe(model, precision="int8", name="kill_loop"))
    env = {**os.environ, "OPTBUILD_RECIPE_PATH": str(recipes), "PYTHONPATH": str(REPO)}

    clean = optbuild(work, *BUILD, "out_dir=clean", env=env)
    assert clean.wait() == 0, clean.stderr.read() if clean.stderr else ""
    expected = digests(work / "clean/kill_loop/intel-int8/v1")
    print(f"clean build: {expected}", flush=True)
    rng = random.Random(args.seed)
    for trial in range(args.trials):
        moment = rng.uniform(0.05, 12.0)
        process = optbuild(work, *BUILD, env=env)
        time.sleep(moment)
        process.send_signal(signal.SIGKILL)
        process.wait()
        check = subprocess.run([sys.executable, "-m", "optbuild.cli", "verify", "outputs"], cwd=work, env=env,
                               capture_output=True, text=True)
        tree_ok = check.returncode == 0 or "no artifact" in check.stderr  # killed before the first publish
        again = subprocess.run([sys.executable, "-m", "optbuild.cli", *BUILD], cwd=work, env=env,
                               capture_output=True, text=True)
        root = work / "outputs/kill_loop/intel-int8"
        versions = sorted(p.name for p in root.glob("v*")) if root.is_dir() else []
        same = again.returncode == 0 and digests(root / "latest") == expected
        print(f"trial {trial + 1:2d}: killed after {moment:5.2f}s  verify {'ok' if tree_ok else 'FAILED'}  "
              f"next build {'same digests' if same else 'DIFFERENT'}  versions {versions}", flush=True)
        if not (tree_ok and same and versions == ["v1"]):
            sys.stderr.write(check.stdout + check.stderr + again.stderr)
            return 1
    print(f"{args.trials} kills: every time verify passed, the next build reproduced the clean digests, "
          "and one version stayed one version")
    return 0


if __name__ == "__main__":
    sys.exit(main())
