"""The placement keys: ``lxc.cgroup.relative`` and the ``lxc.cgroup.dir`` family.

They say where a container's cgroups go in every hierarchy, whichever drivers run, so the plugin
itself declares them and reads them once, in the caller (``lxcframe_plan``); the monitor and the
drivers get the result from the plan (:class:`CgroupSettings`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from lxcframe.config.keys import KeySpec, boolean01
from lxcframe.config.model import ContainerConfig

#: The limit keys: ``lxc.cgroup.<controller>.<file>`` (driver v1), ``lxc.cgroup2.<file>`` (driver v2).
V1_PREFIX = "lxc.cgroup."
V2_PREFIX = "lxc.cgroup2."

RELATIVE = "lxc.cgroup.relative"
DIR = "lxc.cgroup.dir"
DIR_MONITOR = "lxc.cgroup.dir.monitor"
DIR_CONTAINER = "lxc.cgroup.dir.container"
DIR_INNER = "lxc.cgroup.dir.container.inner"


def cgroup_path(value: str) -> str:
    """A path below the base cgroup: relative, no ``..`` (LXC refuses both)."""
    if value.startswith("/"):
        raise ValueError("expected a path relative to the base cgroup (no leading '/')")
    parts = [p for p in value.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError("the path may not walk upwards with '..'")
    if not parts:
        raise ValueError("expected a cgroup path")
    return "/".join(parts)


_VALIDATORS: dict[str, Callable[[str], Any]] = {
    RELATIVE: boolean01, DIR: cgroup_path, DIR_MONITOR: cgroup_path, DIR_CONTAINER: cgroup_path,
    DIR_INNER: cgroup_path,
}
PLACEMENT_KEYS = tuple(_VALIDATORS)

_DOCS = {
    RELATIVE: "1: create cgroups below the caller's own cgroup, never escape to init's (default 0)",
    DIR: "cgroup path below the base holding lxc.payload.NAME and lxc.monitor.NAME",
    DIR_MONITOR: "the monitor's cgroup path below the base (with lxc.cgroup.dir.container)",
    DIR_CONTAINER: "the container's cgroup path below the base (with lxc.cgroup.dir.monitor)",
    DIR_INNER: "sub-cgroup of lxc.cgroup.dir.container where init lives; limits stay on the outer one",
}


def key_specs() -> list[KeySpec]:
    return [KeySpec(key, _VALIDATORS[key], doc=_DOCS[key]) for key in PLACEMENT_KEYS]


@attrs.frozen
class CgroupSettings:
    """Where the cgroups go: the plugin's part of the plan, read from the config by the caller."""

    relative: bool = False
    dir: str | None = None
    dir_monitor: str | None = None
    dir_container: str | None = None
    dir_inner: str | None = None

    @property
    def inner(self) -> str | None:
        """The sub-cgroup of the container's cgroup where init lives: ``lxc.cgroup.dir.container.inner``,
        which counts only with ``lxc.cgroup.dir.container`` (validation refuses it alone)."""
        return self.dir_inner if self.dir_container else None


def _where(config: ContainerConfig) -> dict[str, str]:
    """``FILE:LINE`` of each placement key the config sets (an empty value resets it: absent)."""
    found = {}
    for key in PLACEMENT_KEYS:
        item = config.located(key)
        if item is not None:
            found[key] = f"{item.path}:{item.line}"
    return found


def read_settings(config: ContainerConfig) -> CgroupSettings:
    return CgroupSettings(relative=bool(config.get(RELATIVE)), dir=config.get(DIR), dir_monitor=config.get(DIR_MONITOR),
                          dir_container=config.get(DIR_CONTAINER), dir_inner=config.get(DIR_INNER))


def settings_problems(config: ContainerConfig) -> list[str]:
    """The placement keys that do not fit together, each with the line that set it."""
    where = _where(config)
    problems = []
    if DIR in where and where.keys() & {DIR_MONITOR, DIR_CONTAINER, DIR_INNER}:
        problems.append(f"{where[DIR]}: {DIR} cannot be combined with the lxc.cgroup.dir.* keys")
    if (DIR_MONITOR in where) != (DIR_CONTAINER in where):
        some = where.get(DIR_MONITOR) or where[DIR_CONTAINER]
        problems.append(f"{some}: {DIR_MONITOR} and {DIR_CONTAINER} must be set together")
    if DIR_INNER in where and DIR_CONTAINER not in where:
        problems.append(f"{where[DIR_INNER]}: {DIR_INNER} needs {DIR_CONTAINER} and {DIR_MONITOR}")
    return problems
