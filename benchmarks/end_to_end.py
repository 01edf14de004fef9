"""From a decoded image to the answer: the quickstart artifact with its preprocessing inside,
against the hand-written flow and FP32 ONNX Runtime.

Builds the quickstart (EfficientNet-Lite0 INT8, intel) three ways with the optbuild CLI:
pixels in at the input size (the default), pixels of any size resized inside
(`serve.resize=true`), and without embedded preprocessing (`serve.embed_preprocess=false`: the
network the hand-written flow feeds). Then times, interleaved in one process with the benchmark
stage's own loop, from one decoded 640×480 photo (the resizing IR in a session of its own, against
the hand-written flow again):

    artifact           optbuild.load(...).image(photo)    (the recipe resize + crop as one PIL resize of
                                                          the kept region, then the IR)
    artifact_resize    optbuild.load(...).image(photo)    (the centre cut; the IR resizes, antialiased)
    hand_written       PIL resize + crop, numpy normalise + HWC→CHW, the same network
    onnxruntime_fp32   the same hand-written preprocessing, FP32 ONNX Runtime

and prints each median with its ratio to the hand-written flow (< 1: faster), plus how often
the two artifacts' top-1 agrees with the hand-written flow's on real photos (the eight sample
photos and 64 random crops of them, each at its own size).

    .venv/bin/python benchmarks/end_to_end.py --out-dir /tmp/e2e --json e2e.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import subprocess
import sys
from pathlib import Path

VARIANTS = {"artifact": (), "artifact_resize": ("serve.resize=true",), "network": ("serve.embed_preprocess=false",)}


def build(out_dir: Path, name: str, extra: tuple[str, ...]) -> tuple[Path, str]:
    command = [str(Path(sys.executable).parent / "optbuild"), "recipe=efficientnet_lite0_int8",
               "benchmark.enabled=false", f"out_dir={out_dir / name}", "progress=false", *extra]
    print(f"[build] {shlex.join(command)}", flush=True)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"optbuild failed with exit code {result.returncode}")
    return (out_dir / name / "efficientnet_lite0_int8/intel-int8/latest").resolve(), shlex.join(command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    out_dir = args.out_dir.resolve()
    built = {name: build(out_dir, name, extra) for name, extra in VARIANTS.items()}

    import numpy as np
    import openvino as ov

    import optbuild
    from optbuild.data.sample_photos import photos as real_photos
    from optbuild.data.sample_photos import sample_crops
    from optbuild.stages.intel.benchmark import onnxruntime_session
    from optbuild.stages.intel.cpu import usable_cores
    from optbuild.stages.intel.end_to_end import hand_written, photo
    from optbuild.stages.intel.turns import interleaved
    from optbuild.store.cas import Store

    artifact, resize = optbuild.load(built["artifact"][0]), optbuild.load(built["artifact_resize"][0])
    network_dir = built["network"][0]
    network = ov.Core().compile_model(str(network_dir / "model.xml"), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
    request = network.create_infer_request()
    manifest = json.loads((network_dir / "manifest.json").read_text())
    surgery = next(s for s in manifest["stages"] if s["name"] == "surgery")  # the FP32 graph, in the build cache
    digest = next(o["sha256"] for o in surgery["outputs"] if o["path"] == "model.onnx")
    # as the benchmark stage runs it: workers that do not spin after a run (see its module doc)
    reference = onnxruntime_session(str(Store(out_dir / "network/.cache").blob_path(digest)), usable_cores())
    prepare = hand_written(artifact.contract[0])
    image = photo()
    def hand() -> object:
        return request.infer(prepare(image))

    flows = {"artifact": lambda: artifact.image(image), "hand_written": hand,
             "onnxruntime_fp32": lambda: reference.run(None, prepare(image))}
    stats = interleaved(flows, args.iterations, 20)
    hand_ms = stats["hand_written"]["median_ms"]
    # The resizing IR in its own session: its heavy resize disturbs whatever runs right after it.
    resized = interleaved({"artifact_resize": lambda: resize.image(image), "hand_written": hand}, args.iterations, 20)
    stats["artifact_resize"] = {**resized["artifact_resize"],
                                "ratio_in_its_session": resized["artifact_resize"]["median_ms"]
                                / resized["hand_written"]["median_ms"]}
    print(f"\nfrom a decoded {image.shape[1]}x{image.shape[0]} image, median of {args.iterations} (interleaved):")
    for name, s in stats.items():
        ratio = s.get("ratio_in_its_session", s["median_ms"] / hand_ms)
        print(f"  {name:<17} {s['median_ms']:7.3f} ms  (p10 {s['p10_ms']:.3f}, p90 {s['p90_ms']:.3f})  "
              f"{ratio:.2f}x the hand-written flow's time")

    photos = [*real_photos(), *sample_crops(64, np.random.default_rng(7))]
    top = {name: [] for name in ("artifact", "artifact_resize", "hand_written")}
    for picture in photos:
        pixels = np.asarray(picture.convert("RGB"))
        top["artifact"].append(artifact.image(pixels)["logits"].argmax())
        top["artifact_resize"].append(resize.image(pixels)["logits"].argmax())
        top["hand_written"].append(np.asarray(request.infer(prepare(pixels))[0]).argmax())
    agreement = {name: float(np.mean(np.equal(top[name], top["hand_written"]))) for name in ("artifact",
                                                                                            "artifact_resize")}
    print(f"top-1 agreement with the hand-written flow on {len(photos)} real photos: "
          + ", ".join(f"{k} {v:.0%}" for k, v in agreement.items()))
    if args.json:
        args.json.write_text(json.dumps({
            "date": datetime.date.today().isoformat(), "builds": {k: v[1] for k, v in built.items()},
            "command": shlex.join([sys.executable, *sys.argv]), "image": list(image.shape),
            "latency": stats,
            "ratio_vs_hand_written": {k: s.get("ratio_in_its_session", s["median_ms"] / hand_ms) for k, s in stats.items()},
            "top1_agreement": agreement}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
