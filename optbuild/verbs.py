"""Verbs: `optbuild VERB ...` for everything that is not a build."""

from __future__ import annotations

from optbuild.errors import OptbuildError


def _passes(args: list[str]) -> int:
    """List the graph-surgery passes a recipe can use, with their parameters."""
    from optbuild.publish.inspect import run

    return run(["--passes", *args])


def _inspect(args: list[str]) -> int:
    """Show what an ONNX file, an OpenVINO IR or an artifact directory holds."""
    from optbuild.publish.inspect import run

    return run(args)


def _verify(args: list[str]) -> int:
    """Check an artifact's integrity, build chain and provenance; --rebuild reproduces it."""
    from optbuild.publish.verify import run
    from optbuild.rebuild import check_rebuild

    return run(args, check_rebuild)


def _report(args: list[str]) -> int:
    """Regenerate a sweep's report (summary.md/.json/.html, pareto.png) from its jobs' records."""
    from optbuild.sweep.report import run

    return run(args)


def _deploy(args: list[str]) -> int:
    """Write a Triton or OpenVINO Model Server repository from a published artifact version."""
    from optbuild.deploy.command import run

    return run(args)


VERBS = {"passes": _passes, "verify": _verify, "inspect": _inspect, "report": _report, "deploy": _deploy}


def run_verb(verb: str, args: list[str]) -> int:
    if verb not in VERBS:
        raise OptbuildError(
            f"unknown command '{verb}'; commands: {', '.join(VERBS)}, or a build: optbuild recipe=NAME"
        )
    return VERBS[verb](args)
