"""The `optbuild` program: Hydra-composed builds, plus verbs (`optbuild inspect PATH`, ...).

A first argument without `=` (and not a flag) is a verb; anything else goes to Hydra.
Errors become one line `optbuild: error: ...` on stderr and a non-zero exit; the full trace
goes to the run's log file, and to the terminal too with `debug=true`.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

from optbuild.core.logs import warnings_to_stderr
from optbuild.errors import OptbuildError

log = logging.getLogger("optbuild")
_ERROR_PREFIX = "optbuild: error: "
_USAGE = """\
usage: optbuild recipe=NAME [target=intel|nvidia] [precision=fp32|fp16|bf16|int8] [key=value ...]
       optbuild -m recipe=NAME precision=fp32,fp16,int8 ...   (a sweep)
       optbuild passes | inspect PATH | verify PATH [--rebuild] | report DIR
       optbuild deploy PATH --to triton|ovms DIR [--name NAME] [--version N]

recipes: {recipes}  (more in the directories on OPTBUILD_RECIPE_PATH)
`optbuild recipe=NAME --help` shows the composed config and its groups."""


def _say_error(message: str) -> None:
    sys.stderr.write(_ERROR_PREFIX + " ".join(message.split()) + "\n")


def _debug_requested(argv: list[str]) -> bool:
    return any(arg.lower() in ("debug=true", "debug=1", "debug=yes") for arg in argv)


def _chosen_recipes(argv: list[str]) -> list[str]:
    names: list[str] = []
    for arg in argv:
        if arg.startswith("recipe="):
            names += [n.strip() for n in arg.split("=", 1)[1].split(",") if n.strip()]
    return names


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    warnings_to_stderr()
    if argv and not argv[0].startswith("-") and "=" not in argv[0]:
        from optbuild.verbs import run_verb

        return _guarded(lambda: run_verb(argv[0], argv[1:]), argv)
    from optbuild.core.machine import mark_process

    mark_process()  # parallel launchers' workers inherit it: a benchmark sees them as optbuild's
    return _guarded(lambda: _hydra_build(argv), argv)


def _guarded(action, argv: list[str]) -> int:
    try:
        code = action()
        sys.stdout.flush()  # here, not at exit: a reader that went away is seen below
        return code
    except BrokenPipeError:  # stdout closed by its reader (`| head`): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # and no second complaint when Python flushes it at exit
        return 0
    except SystemExit as err:  # a verb's argparse: --help (0) or a usage error it already printed
        return err.code if isinstance(err.code, int) else 1
    except OptbuildError as err:
        if _debug_requested(argv):
            traceback.print_exc()
        _say_error(err.message)
        return 1
    except KeyboardInterrupt:
        _say_error("interrupted; finished stages stay cached, the next run resumes from them")
        return 130
    except Exception as err:  # noqa: BLE001 - the one place that turns surprises into one line
        if _debug_requested(argv):
            traceback.print_exc()
        from optbuild.config.explain import explain

        _say_error(explain(err))
        return 1


def _hydra_build(argv: list[str]) -> int:
    import hydra

    from optbuild.config import recipes
    from optbuild.config.compose import register
    from optbuild.config.trust import check_command_line
    from optbuild.job import BuildJob

    found = recipes.discover()
    if any(arg in ("-h", "--help") for arg in argv) and not _chosen_recipes(argv):
        print(_USAGE.format(recipes=", ".join(sorted(found))))
        return 0
    if not any(arg.startswith(("recipe=", "--hydra-help", "--info")) for arg in argv):
        raise OptbuildError(
            f"no recipe given: run `optbuild recipe=NAME`; available: {', '.join(sorted(found))}"
        )
    check_command_line(argv)
    chosen = tuple(_chosen_recipes(argv))
    for name in chosen:
        recipes.load_chosen(name, found)
    register(found, chosen)
    from hydra_plugins.optbuild_ray_launcher.ray_launcher import register as register_ray_launcher

    register_ray_launcher()  # hydra/launcher=ray (ray itself is imported only when chosen)

    # Exceptions must reach `_guarded` (one line) instead of Hydra's own multi-line report.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    job = BuildJob(found)
    hydra_main = hydra.main(version_base="1.3", config_path="pkg://optbuild.conf", config_name="config")(
        job
    )
    from optbuild.sweep import callback as sweep_callback
    from optbuild.sweep.report import failure_message

    saved = sys.argv
    sys.argv = [saved[0] if saved else "optbuild", *argv]
    sweep_callback.reset()
    try:
        hydra_main()
    except BaseException:
        _report_cut_short_sweep()
        raise
    finally:
        sys.argv = saved
    # A sweep's outcome comes from the records its jobs left on disk: with joblib, Ray or Slurm
    # the jobs ran in other processes, so `job` saw none of them.
    report = sweep_callback.finish()
    if report is not None and report.failed:
        raise OptbuildError(failure_message(report))
    return job.exit_code()


def _report_cut_short_sweep() -> None:
    from optbuild.sweep import callback as sweep_callback

    try:
        sweep_callback.finish()
    except Exception as err:  # noqa: BLE001 - the original error is the one to report
        log.warning("no sweep report (%s): run `optbuild report DIR` on the multirun directory", err)


if __name__ == "__main__":
    sys.exit(main())
