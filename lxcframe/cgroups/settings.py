"""The placement keys both cgroup plugins read: ``lxc.cgroup.relative`` and the ``lxc.cgroup.dir`` family.

A key can be declared by one plugin only, yet either plugin may run without the other. So:

* the plugin that *declares* them is ``cgroup1`` on hosts with a v1 hierarchy and ``cgroup2`` on
  the others (:func:`declared_by`) – on every host at least the plugin that can work declares them,
  and nothing is ever declared twice;
* the plugin that *reads* them takes the validated value from the config when a plugin handled the
  key, or else the raw text the config kept as "unhandled" (the declaring plugin was disabled by
  name), validated here the same way (:func:`read_settings`).

One rule in one place, and a container keeps its placement whichever of the two is disabled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from lxcframe.config.keys import KeySpec, boolean01
from lxcframe.config.model import ContainerConfig

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
SHARED_KEYS = tuple(_VALIDATORS)

_DOCS = {
    RELATIVE: "1: create cgroups below the caller's own cgroup, never escape to init's (default 0)",
    DIR: "cgroup path below the base holding lxc.payload.NAME and lxc.monitor.NAME",
    DIR_MONITOR: "the monitor's cgroup path below the base (with lxc.cgroup.dir.container)",
    DIR_CONTAINER: "the container's cgroup path below the base (with lxc.cgroup.dir.monitor)",
    DIR_INNER: "sub-cgroup of lxc.cgroup.dir.container where init lives; limits stay on the outer one",
}


def shared_key_specs() -> list[KeySpec]:
    return [KeySpec(key, _VALIDATORS[key], doc=_DOCS[key], shared_with=("cgroup1", "cgroup2")) for key in SHARED_KEYS]


def declared_by(has_v1: bool) -> str:
    """The plugin that declares the shared keys on a host with (or without) a v1 hierarchy."""
    return "cgroup1" if has_v1 else "cgroup2"


@attrs.frozen
class CgroupSettings:
    relative: bool = False
    dir: str | None = None
    dir_monitor: str | None = None
    dir_container: str | None = None
    dir_inner: str | None = None


@attrs.frozen
class _Item:
    value: Any
    where: str
    #: The enabled plugin that validated it, or "" when the config kept it unhandled.
    plugin: str


def _items(config: ContainerConfig) -> tuple[dict[str, _Item], list[str]]:
    items: dict[str, _Item] = {}
    problems: list[str] = []
    for key in SHARED_KEYS:
        handled = config.located(key)
        if handled is not None:
            items[key] = _Item(handled.value, f"{handled.path}:{handled.line}", handled.plugin)
    for kept in config.unhandled:
        if kept.key not in _VALIDATORS:
            continue
        where = f"{kept.path}:{kept.line}"
        if kept.value == "":
            items.pop(kept.key, None)  # an empty value resets the key
            continue
        try:
            items[kept.key] = _Item(_VALIDATORS[kept.key](kept.value), where, "")
        except ValueError as err:
            problems.append(f"{where}: {kept.key} = {kept.value!r}: {err}")
    return items, problems


def read_settings(config: ContainerConfig) -> CgroupSettings:
    items, _ = _items(config)

    def value(key: str) -> Any:
        return items[key].value if key in items else None

    return CgroupSettings(relative=bool(value(RELATIVE)), dir=value(DIR), dir_monitor=value(DIR_MONITOR),
                          dir_container=value(DIR_CONTAINER), dir_inner=value(DIR_INNER))


def settings_problems(config: ContainerConfig, plugin: str) -> list[str]:
    """Problems of the shared keys, reported by the plugin that handled them (or by any when none did)."""
    items, problems = _items(config)
    owners = {item.plugin for item in items.values() if item.plugin}
    if owners and plugin not in owners:
        return []  # the other cgroup plugin validated these keys and reports on them
    present = set(items)
    if DIR in present and present & {DIR_MONITOR, DIR_CONTAINER, DIR_INNER}:
        problems.append(f"{items[DIR].where}: {DIR} cannot be combined with the lxc.cgroup.dir.* keys")
    if (DIR_MONITOR in present) != (DIR_CONTAINER in present):
        some = items.get(DIR_MONITOR) or items[DIR_CONTAINER]
        problems.append(f"{some.where}: {DIR_MONITOR} and {DIR_CONTAINER} must be set together")
    if DIR_INNER in present and DIR_CONTAINER not in present:
        problems.append(f"{items[DIR_INNER].where}: {DIR_INNER} needs {DIR_CONTAINER} and {DIR_MONITOR}")
    return problems


def declares_shared(plugin: str) -> bool:
    """Whether ``plugin`` declares the shared keys on this host (decided from the cached layout)."""
    from lxcframe.cgroups.layout import current_layout

    try:
        layout = current_layout()
    except OSError:  # no mount table to read: as on a host without v1
        return declared_by(False) == plugin
    return declared_by(bool(layout.v1)) == plugin
