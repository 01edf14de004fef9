"""optbuild: declarative, config-driven builds of optimized inference artifacts."""

from typing import Any

__version__ = "0.1.0"


def load(path: object, device: str | None = None) -> Any:
    """A published artifact (a version folder or `latest`), checked against its manifest, ready
    to call: see optbuild.artifact.load."""
    import importlib

    # By name: every module imports this package root (for __version__), so a static import here
    # would make the root depend on the top layer.
    return importlib.import_module("optbuild.artifact").load(path, device)
