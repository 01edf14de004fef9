"""`optbuild inspect PATH`: what an ONNX file, an OpenVINO IR or an artifact directory holds.

    optbuild inspect model.onnx            interface, opsets, op histogram, parameters, Q/DQ
    optbuild inspect model.xml             the same for an OpenVINO IR
    optbuild inspect outputs/r/intel-int8  the artifact's manifest summary, surgery report, model
    optbuild inspect outputs/r/intel-int8 --stage export
                                           the ONNX model a stage produced (export, source,
                                           surgery), read from the build cache
    optbuild inspect --passes              the graph-surgery passes (as `optbuild passes`)
    --json                                 the same facts as JSON
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from optbuild.errors import OptbuildError
from optbuild.publish.manifest import MANIFEST
from optbuild.publish.summary import labeled_line

USAGE = "usage: optbuild inspect PATH [--stage NAME] [--json] | optbuild inspect --passes"


def run(args: list[str]) -> int:
    args, stage = _take_option(args, "--stage")
    flags = {a for a in args if a.startswith("-")}
    paths = [a for a in args if not a.startswith("-")]
    unknown = flags - {"--json", "--passes", "-h", "--help"}
    if unknown:
        raise OptbuildError(f"inspect: unknown option {sorted(unknown)[0]}; {USAGE}")
    if flags & {"-h", "--help"}:
        print(__doc__.strip())
        return 0
    if "--passes" in flags:
        print(json.dumps(passes_facts(), indent=2) if "--json" in flags else "\n".join(passes_text()))
        return 0
    if len(paths) != 1:
        raise OptbuildError(f"inspect: give one path; {USAGE}")
    facts = stage_model_facts(Path(paths[0]), stage) if stage else inspect_path(Path(paths[0]))
    print(json.dumps(facts, indent=2) if "--json" in flags else "\n".join(render(facts)))
    return 0


def _take_option(args: list[str], option: str) -> tuple[list[str], str | None]:
    """(the other arguments, the option's value) for `--option VALUE` or `--option=VALUE`."""
    rest, value = [], None
    items = iter(args)
    for arg in items:
        if arg == option:
            value = next(items, None)
            if value is None:
                raise OptbuildError(f"inspect: {option} needs a value; {USAGE}")
        elif arg.startswith(option + "="):
            value = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return rest, value


def inspect_path(path: Path) -> dict[str, Any]:
    from optbuild.publish.model_facts import onnx_facts, openvino_facts

    if not path.exists():
        raise OptbuildError(f"inspect: {path} does not exist")
    if path.is_dir():
        return artifact_facts(path)
    if path.suffix == ".xml":
        return openvino_facts(path)
    return onnx_facts(path)


def _manifest(folder: Path) -> tuple[Path, dict[str, Any]]:
    """An artifact version directory (or the `<target>-<precision>` folder: its `latest`)."""
    if not (folder / MANIFEST).is_file() and (folder / "latest" / MANIFEST).is_file():
        folder = (folder / "latest").resolve()
    try:
        return folder.resolve(), json.loads((folder / MANIFEST).read_text())
    except (FileNotFoundError, NotADirectoryError) as err:
        raise OptbuildError(f"inspect: {folder} is not an artifact directory (no {MANIFEST}); give an "
                            "artifact version directory, a .onnx file or a model.xml") from err
    except ValueError as err:
        raise OptbuildError(f"inspect: {folder / MANIFEST} is not valid JSON: {err}") from err


def stage_model_facts(folder: Path, stage: str) -> dict[str, Any]:
    """The ONNX model a stage of the artifact's build produced, read from the build cache."""
    from optbuild.publish.model_facts import onnx_facts

    folder, manifest = _manifest(folder)
    stages = {s["name"]: s for s in manifest.get("stages", [])}
    onnx_stages = [n for n, s in stages.items() if any(o["path"] == "model.onnx" for o in s.get("outputs", []))]
    if stage not in onnx_stages:
        raise OptbuildError(f"inspect: stage '{stage}' of this build has no ONNX model; stages with one: "
                            f"{', '.join(onnx_stages) or 'none'}")
    digest = next(o["sha256"] for o in stages[stage]["outputs"] if o["path"] == "model.onnx")
    config = manifest.get("config") or {}
    out_dir = folder.parents[2]  # <out_dir>/<recipe>/<target>-<precision>/v<N>
    roots = [Path(config["cache_dir"]) if config.get("cache_dir") else None, out_dir / ".cache"]
    for root in [r for r in roots if r is not None]:
        blob = root / "cas" / "sha256" / digest[:2] / digest
        if blob.is_file():
            return {**onnx_facts(blob, data_required=False), "stage": stage, "sha256": digest}
    raise OptbuildError(f"inspect: the build cache no longer holds the {stage} stage's model.onnx "
                        f"(sha256 {digest[:12]}); rebuild the recipe to bring it back")


def artifact_facts(folder: Path) -> dict[str, Any]:
    from optbuild.publish.model_facts import onnx_facts, openvino_facts

    folder, manifest = _manifest(folder)
    keep = ("schema", "recipe", "target", "precision", "version", "created", "overrides", "artifacts",
            "resolved_inference_precision", "surgery", "quantization", "validation", "benchmark", "toolchain",
            "status", "failure", "tuning", "interface")
    facts: dict[str, Any] = {"kind": "artifact", "path": str(folder), **{k: manifest.get(k) for k in keep}}
    facts["stages"] = [{k: s.get(k) for k in ("name", "cache_hit", "seconds", "key")}
                       for s in manifest.get("stages", [])]
    model = next((folder / n for n in ("model.xml", "model.onnx") if (folder / n).is_file()), None)
    if model is not None:
        facts["model"] = openvino_facts(model) if model.suffix == ".xml" else onnx_facts(model)
    return facts


# ---- text ---------------------------------------------------------------------------------

def _shape(spec: dict[str, Any]) -> str:
    shape = spec.get("shape")
    dims = "?" if shape is None else ",".join("?" if d is None else str(d) for d in shape)
    return f"{spec['name']}: {spec['dtype']}[{dims}]"


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def render(facts: dict[str, Any]) -> list[str]:
    if facts["kind"] == "artifact":
        return render_artifact(facts)
    return render_model(facts)


def render_model(facts: dict[str, Any]) -> list[str]:
    kind = "ONNX" if facts["kind"] == "onnx" else "OpenVINO IR"
    origin = f" of stage {facts['stage']}, from the build cache" if facts.get("stage") else ""
    lines = [f"{facts['path']}  ({kind}{origin}, {_size(facts['bytes'])})"]
    if facts["kind"] == "onnx":
        opsets = ", ".join(f"{d} {v}" for d, v in facts["opsets"].items())
        lines.append(f"  opset: {opsets}   ir_version: {facts['ir_version']}   producer: {facts['producer'] or '-'}")
        if facts["external_data"]:
            lines.append(f"  external data: {', '.join(facts['external_data'])}")
    else:
        lines.append(f"  IR version: {facts['ir_version']}")
    lines += ["  inputs:"] + [f"    {_shape(t)}" for t in facts["inputs"]]
    lines += ["  outputs:"] + [f"    {_shape(t)}" for t in facts["outputs"]]
    params = facts["parameters"]
    dtypes = ", ".join(f"{d} {c:,}" for d, c in params["by_dtype"].items())
    lines.append(f"  parameters: {params['count']:,} ({_size(params['bytes'])}; {dtypes or 'none'})")
    quantization = facts.get("quantization") or {}
    if quantization:
        parts = [f"{op} {sum(types.values())} ({', '.join(f'{t} {n}' for t, n in types.items())})"
                 for op, types in quantization.items()]
        lines.append(f"  quantization: {'; '.join(parts)}")
    else:
        lines.append("  quantization: none")
    lines.append(f"  ops ({facts['nodes']} nodes):")
    lines += [f"    {op:<24} {count}" for op, count in facts["ops"].items()]
    return lines


def render_artifact(facts: dict[str, Any]) -> list[str]:
    recipe = facts.get("recipe") or {}
    lines = [f"{facts['path']}",
             f"  {recipe.get('name')} {facts.get('target')}-{facts.get('precision')} v{facts.get('version')}"
             f"   built {facts.get('created')}   recipe sha256 {str(recipe.get('sha256'))[:12]}"]
    if facts.get("status") == "failed":
        lines.append(f"  status: FAILED, not promoted to latest: {facts.get('failure')}")
    if facts.get("overrides"):
        lines.append(f"  overrides: {' '.join(facts['overrides'])}")
    lines += interface_lines(facts.get("interface"))
    lines.append("  artifacts:")
    lines += [f"    {a['path']:<16} {_size(a['bytes']):>10}  sha256 {a['sha256'][:12]}" for a in facts.get("artifacts") or []]
    lines.append("  stages:")
    lines += [f"    {s['name']:<10} {'cached' if s['cache_hit'] else 'ran':<7} {s['seconds']:>7.1f}s  key {str(s['key'])[:12]}"
              for s in facts["stages"]]
    lines.append("  surgery:")
    lines += ["    " + line for line in surgery_lines(facts.get("surgery") or [])] or ["    (no passes)"]
    if facts.get("quantization"):
        lines.append(f"  quantization: {json.dumps(facts['quantization'])}")
    validation = facts.get("validation")
    if validation:
        lines.append(f"  validation: top-1 agreement {validation.get('top1_agreement', float('nan')):.1%}, "
                     f"cosine {validation.get('cosine_mean', float('nan')):.4f}, "
                     f"max abs error {validation.get('max_abs_error', float('nan')):.3g}")
        if labeled_line(validation):
            lines.append(f"  {labeled_line(validation)}")
    bench = facts.get("benchmark")
    if bench:
        lines.append(f"  benchmark: {bench['artifact']['median_ms']:.2f} ms median (batch {bench.get('batch')}), "
                     f"ONNX Runtime FP32 {bench['baseline_onnxruntime_fp32']['median_ms']:.2f} ms, "
                     f"speed-up {bench['speedup_median']:.2f}x")
    if facts.get("resolved_inference_precision"):
        lines.append(f"  inference precision: {facts['resolved_inference_precision']}")
    if facts.get("toolchain"):
        tools = ", ".join(f"{k} {v}" for k, v in facts["toolchain"].items() if v)
        lines.append(f"  toolchain: {tools}")
    if "model" in facts:
        lines += ["  model:"] + ["    " + line for line in render_model(facts["model"])]
    return lines


def interface_lines(interface: dict[str, Any] | None) -> list[str]:
    """What a client sends and gets back (the manifest's input contract)."""
    from optbuild.serving.contract import describe

    if not interface:
        return []
    lines = ["  takes:"]
    for spec in interface["inputs"]:
        lines.append(f"    {describe(spec)}")
        pre = spec.get("preprocess")
        if pre:
            size = "any H×W, resized inside (bilinear)" if pre["resize_inside"] else "at exactly this size"
            geometry = pre["geometry"]
            lines.append(f"      8-bit pixels {size}; inside: to float, (x/255 - mean {pre['mean']}) / std {pre['std']}"
                         f", to {pre['model_layout']}. Clients resize {geometry['resize']} + crop {geometry['crop']} "
                         f"({geometry['fit']}) first" + (" (optbuild.load cuts the centre)" if pre["resize_inside"]
                                                          else " (optbuild.load does it for a decoded image)"))
    lines.append("  returns:")
    lines += [f"    {o['name']}: {o['dtype']} {o['shape']}" for o in interface["outputs"]]
    return lines


def surgery_lines(report: list[dict[str, Any]]) -> list[str]:
    """One block per pass: node counts, ops removed/added, interface changes, the check."""
    lines = []
    for index, entry in enumerate(report, 1):
        params = entry.get("params") or {}
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in params.items())
        lines.append(f"{index}. {entry['pass']}({shown})  {entry['nodes_before']} -> {entry['nodes_after']} nodes")
        delta = [f"-{op} {n}" for op, n in entry.get("removed", {}).items()]
        delta += [f"+{op} {n}" for op, n in entry.get("added", {}).items()]
        if delta:
            lines.append(f"   ops: {' '.join(delta)}")
        before, after = entry.get("io_before"), entry.get("io_after")
        if before and after and before != after:
            for side in ("inputs", "outputs"):
                old = "; ".join(_shape(t) for t in before[side])
                new = "; ".join(_shape(t) for t in after[side])
                if old != new:
                    lines.append(f"   {side}: {old}  ->  {new}")
        if entry.get("verified"):
            lines.append(f"   check: outputs match (max abs error {entry.get('max_abs_error', 0):.3g}, "
                         f"tolerance rtol {entry['tolerance']['rtol']:g} atol {entry['tolerance']['atol']:g})"
                         if entry.get("tolerance") else
                         f"   check: outputs match (max abs error {entry.get('max_abs_error', 0):.3g})")
        else:
            lines.append(f"   check: not verified ({entry.get('reason', 'no reason recorded')})")
    return lines


# ---- passes -------------------------------------------------------------------------------

def passes_facts() -> list[dict[str, Any]]:
    from optbuild.passes import available

    listed = []
    for name, info in available().items():
        defaults = info.params().model_dump(mode="json") if _has_defaults(info.params) else {}
        params = []
        for key, field in info.params.model_fields.items():
            if key == "verify":
                continue
            params.append({"name": key, "type": _type_name(field.annotation), "required": field.is_required(),
                           "default": None if field.is_required() else field.get_default(call_default_factory=True),
                           "description": field.description or ""})
        tolerance = info.tolerance_for({**defaults, "verify": True})
        listed.append({"name": name, "origin": info.origin, "works_on": info.works_on, "params": params,
                       "tolerance": {"rtol": tolerance.rtol, "atol": tolerance.atol},
                       "doc": " ".join(info.doc.split())})
    return listed


def _has_defaults(model: Any) -> bool:
    return not any(f.is_required() for f in model.model_fields.values())


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if not getattr(annotation, "__args__", None) else None
    return text or str(annotation).replace("typing.", "")


def passes_text() -> list[str]:
    """`name(param: type = default, ...)`, the tolerance, the guarantee, then each parameter."""
    lines = []
    for item in passes_facts():
        signature = ", ".join(f"{p['name']}: {p['type']}" + ("" if p["required"] else f" = {json.dumps(p['default'])}")
                              for p in item["params"])
        origin = "" if item["origin"] == "builtin" else f"  [plugin {item['origin']}]"
        tol = item["tolerance"]
        lines.append(f"{item['name']}({signature}){origin}  [tolerance rtol {tol['rtol']:g}, atol {tol['atol']:g}]")
        lines.append(f"    {item['doc']}")
        lines += [f"    {p['name']}: {p['description']}" for p in item["params"] if p["description"]]
    lines.append("Every pass also takes `verify: false`, which skips its numerical check.")
    return lines
