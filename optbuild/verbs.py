"""Verbs: `optbuild VERB ...` for everything that is not a build."""

from __future__ import annotations

from optbuild.errors import OptbuildError


def _passes(args: list[str]) -> int:
    """List the graph-surgery passes a recipe can use, with their parameters."""
    from optbuild.passes import available

    for name, info in available().items():
        params = {k: f.annotation for k, f in info.params.model_fields.items() if k != "verify"}
        shown = ", ".join(f"{k}: {getattr(t, '__name__', t)}" for k, t in params.items())
        print(f"{name}({shown})\n    {' '.join(info.doc.split())}")
    return 0


def _verify(args: list[str]) -> int:
    """Check an artifact's integrity, build chain and provenance; --rebuild reproduces it."""
    from optbuild.verify import run

    return run(args)


VERBS = {"passes": _passes, "verify": _verify}


def run_verb(verb: str, args: list[str]) -> int:
    if verb not in VERBS:
        raise OptbuildError(
            f"unknown command '{verb}'; commands: {', '.join(VERBS)}, or a build: optbuild recipe=NAME"
        )
    return VERBS[verb](args)
