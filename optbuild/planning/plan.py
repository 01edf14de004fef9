"""What a target's planner returns: the stages to run and how their results become an artifact."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from optbuild.config.choices import TargetName
from optbuild.pipeline.stage import Output, StageSpec


@dataclass(frozen=True)
class GatedRecord:
    """A manifest record (e.g. the validation) that the recipe's validate.* gates apply to."""

    field: str
    label: str = ""  # how a failed gate names it ("CPU proxy ")
    title: str = ""  # how the summary introduces its numbers


@dataclass(frozen=True)
class Plan:
    target: TargetName
    stages: list[StageSpec]
    artifact: dict[str, Output]  # published file name -> the stage output it is
    gated: tuple[GatedRecord, ...] = (GatedRecord("validation"),)
    # Target-specific manifest fields known before anything runs (the stages' `reports` fill
    # in the rest).
    manifest: dict[str, Any] = field(default_factory=dict)
    surgery: str = "surgery"  # the stage whose model.onnx `passes_only=true` shows

    def __post_init__(self) -> None:
        names = [spec.name for spec in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"plan has duplicate stage names: {names}")
        known = set(names)
        for spec in self.stages:
            for source in spec.inputs.values():
                if source.stage not in known or names.index(source.stage) >= names.index(spec.name):
                    raise ValueError(f"stage {spec.name} reads {source}, which no earlier stage produces")
        for name, source in self.artifact.items():
            if source.stage not in known:
                raise ValueError(f"artifact file {name} comes from unknown stage {source.stage}")

    def through(self, stage: str) -> list[StageSpec]:
        """The stages up to and including `stage`."""
        names = [spec.name for spec in self.stages]
        return self.stages[: names.index(stage) + 1]

    def names(self) -> list[str]:
        return [spec.name for spec in self.stages]
