"""From a validated config to a Plan: one planner per target.

Adding a target means adding its planner module here (and its stages under optbuild/stages/):
build.py only ever sees a Plan. See docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Callable

from optbuild.config.choices import TargetName
from optbuild.config.schema import Config
from optbuild.planning import intel, nvidia
from optbuild.planning.host import FixedHost, Host, LocalHost
from optbuild.planning.plan import GatedRecord, Plan

Planner = Callable[[Config, Host], Plan]
TARGETS: dict[TargetName, Planner] = {
    TargetName.intel: intel.plan,
    TargetName.nvidia: nvidia.plan,
}

__all__ = ["TARGETS", "FixedHost", "GatedRecord", "Host", "LocalHost", "Plan", "plan"]


def plan(config: Config, host: Host | None = None) -> Plan:
    return TARGETS[config.target.name](config, host or LocalHost())
