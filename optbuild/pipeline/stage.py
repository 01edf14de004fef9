"""A stage as data: what it reads, the config slice and tools that shape its result, and the
one definition of its cache key.

`KeyMaterial` is everything a stage's result depends on. The runner computes a stage's key from
it, the manifest records it (`KeyMaterial.recorded`), and `optbuild verify` rebuilds it from the
manifest (`KeyMaterial.from_record`): one type, so the three can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from optbuild.core.digest import sha256_json
from optbuild.core.platform import platform_info, versions
from optbuild.store import Blob

# fn(input paths by file name, params, output directory) -> {"files": [...], "data": {...}}
StageFn = Callable[[dict[str, str], dict[str, Any], str], dict[str, Any]]


class Output(NamedTuple):
    """A file another stage produced: (stage name, file name)."""

    stage: str
    file: str

    def __str__(self) -> str:
        return f"{self.stage}/{self.file}"


@dataclass(frozen=True)
class Dependency:
    """Something a stage reads from outside the build (an ONNX file, weights, a dataset, the
    GPU). Its `fingerprint` (content digests, versions) enters the cache key; its `location`
    (a path, or the arguments that name a dataset) reaches the stage function and never does."""

    fingerprint: Any
    location: Any = None


@dataclass(frozen=True)
class KeyMaterial:
    stage: str
    version: int
    inputs: dict[str, str]  # input file name -> sha256
    params: dict[str, Any]
    external: dict[str, Any]  # dependency name -> fingerprint
    tools: dict[str, str | None]
    platform: dict[str, Any] | None

    # Recorded per stage in the manifest next to its inputs (which carry their origin too).
    RECORDED = ("version", "params", "external", "tools", "platform")

    def as_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "version": self.version, "inputs": self.inputs, "params": self.params,
                "external": self.external, "tools": self.tools, "platform": self.platform}

    def key(self) -> str:
        return sha256_json(self.as_json())

    def recorded(self) -> dict[str, Any]:
        return {name: self.as_json()[name] for name in self.RECORDED}

    @classmethod
    def from_record(cls, entry: Mapping[str, Any]) -> KeyMaterial:
        """The material of a manifest's stage entry (KeyError/TypeError when it is malformed)."""
        return cls(stage=entry["name"], version=entry["version"],
                   inputs={item["path"]: item["sha256"] for item in entry["inputs"]},
                   params=entry["params"], external=entry["external"], tools=entry["tools"],
                   platform=entry["platform"])


@dataclass(frozen=True)
class StageSpec:
    name: str
    version: int  # bump when the implementation changes its outputs
    fn: StageFn
    describe: str = ""  # what it does, for the progress line
    inputs: dict[str, Output] = field(default_factory=dict)  # file name in the stage -> producer
    params: dict[str, Any] = field(default_factory=dict)  # the config slice: in the key
    deps: dict[str, Dependency] = field(default_factory=dict)
    tools: tuple[str, ...] = ()
    platform: bool = False  # results depend on the machine (numbers, timings)
    # Manifest field -> where in the stage's data it is ("a.b" for nested, "" for all of it).
    reports: dict[str, str] = field(default_factory=dict)
    # Outputs that differ between identical builds (engines, timings): `verify --rebuild`
    # compares them by what they mean, not by their bytes.
    unstable: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        clash = set(self.params) & set(self.deps)
        if clash:
            raise ValueError(f"stage {self.name}: {sorted(clash)} is both a param and a dependency")

    def material(self, input_digests: dict[str, str]) -> KeyMaterial:
        return KeyMaterial(
            stage=self.name, version=self.version, inputs=input_digests, params=self.params,
            external={name: dep.fingerprint for name, dep in self.deps.items()},
            tools=versions(self.tools), platform=platform_info() if self.platform else None,
        )

    def worker_params(self) -> dict[str, Any]:
        """What the stage function receives: its params and the locations of its dependencies."""
        located = {name: dep.location for name, dep in self.deps.items() if dep.location is not None}
        return {**self.params, **located}


@dataclass
class StageResult:
    name: str
    key: str
    cache_hit: bool
    seconds: float
    inputs: dict[str, str]  # input file name -> sha256
    outputs: dict[str, Blob]
    data: dict[str, Any]
    material: KeyMaterial
    sources: dict[str, Output]  # input file name -> the output it came from

    def reported(self, path: str) -> Any:
        """A value of the stage's data by dotted path ("" is all of it); None when absent."""
        value: Any = self.data
        for part in path.split(".") if path else ():
            value = value.get(part) if isinstance(value, dict) else None
        return value
