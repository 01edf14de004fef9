"""`optbuild deploy PATH --to triton|ovms DIR`: a model-server repository from a published artifact.

    optbuild deploy outputs/resnet50/intel-int8/latest --to triton model_repository
    optbuild deploy outputs/resnet50/intel-int8/v3 --to ovms models --name resnet --version 1
    optbuild deploy outputs/resnet50/nvidia-int8/latest --to triton model_repository \\
        --engine outputs/resnet50/nvidia-int8/latest/build/model.plan    (a kit's engine, built on a GPU)
"""

from __future__ import annotations

from pathlib import Path

from optbuild.core.args import Parser
from optbuild.errors import OptbuildError

SERVERS = ("triton", "ovms")
USAGE = "optbuild deploy PATH --to triton|ovms DIR"
FULL_USAGE = f"{USAGE} [--name NAME] [--version N] [--max-batch N] [--engine FILE] [--force]"


def _parser() -> Parser:
    parser = Parser("optbuild deploy", __doc__.split("\n\n")[0])
    parser.usage = FULL_USAGE
    parser.add_argument("path", type=Path, help="a published version (…/v<N>) or its `latest`")
    parser.add_argument("--to", nargs="+", metavar=("SERVER", "DIR"), required=True,
                        help="triton or ovms, and the model repository directory to write into")
    parser.add_argument("--name", help="the model's name on the server (default: the recipe's name)")
    parser.add_argument("--version", type=int, metavar="N", help="the model version (default: N of the artifact's vN)")
    parser.add_argument("--max-batch", type=int, dest="max_batch", metavar="N",
                        help="triton, dynamic batch: the largest batch to form (default: the artifact's bound)")
    parser.add_argument("--engine", type=Path, metavar="FILE",
                        help="triton, TensorRT kit: the model.plan built from the kit on a GPU machine")
    parser.add_argument("--force", action="store_true", help="replace a different deployment in that version folder")
    return parser


def _destination(to: list[str]) -> tuple[str, Path]:
    server = to[0]
    if server not in SERVERS:
        raise OptbuildError(f"deploy: unknown --to {server!r}; choose triton or ovms ({USAGE})")
    if len(to) != 2:
        raise OptbuildError(f"deploy: --to {server} needs one repository directory after it ({USAGE})")
    root = Path(to[1])
    if root.exists() and not root.is_dir():
        raise OptbuildError(f"deploy: {root} is a file; give the model repository's directory")
    if not root.exists():
        if not root.absolute().parent.is_dir():
            raise OptbuildError(f"deploy: {root.absolute().parent} does not exist; create it, or give an existing "
                                "directory for the repository")
        root.mkdir()
    return server, root


def run(args: list[str]) -> int:
    from optbuild.deploy import ovms, triton
    from optbuild.deploy.repository import model_name
    from optbuild.publish.published import open_artifact

    options = _parser().parse_args(args)
    server, root = _destination(options.to)
    for flag, value in (("--version", options.version), ("--max-batch", options.max_batch)):
        if value is not None and value < 1:
            raise OptbuildError(f"deploy: {flag} {value}: give a positive number")
    if server == "ovms" and (options.max_batch is not None or options.engine is not None):
        raise OptbuildError("deploy: --max-batch and --engine are for --to triton; OVMS serves the IR as built")
    artifact = open_artifact(options.path)
    name = model_name(artifact.recipe, options.name)
    version = options.version or artifact.version
    if server == "triton":
        done = triton.deploy(artifact, root, name, version, options.max_batch, options.engine, options.force)
    else:
        done = ovms.deploy(artifact, root, name, version, options.force)
    state = {"unchanged": "already deployed, unchanged", "replaced": "replaced", "written": "written"}[done.outcome]
    print(f"{artifact.label} -> {server} model '{name}' version {version}: {done.version_dir} ({state})")
    print(f"  {done.config.name}: {done.config}  ({done.summary})")
    return 0
