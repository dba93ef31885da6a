"""Turning a container's config and a request into the frozen :class:`StartPlan`, before any fork."""

from __future__ import annotations

import os
from typing import Any

from lxcframe import syscalls
from lxcframe.config.model import ContainerConfig
from lxcframe.context import DEFAULT_PATH, PlanHost, StartPlan
from lxcframe.errors import ConfigError
from lxcframe.stage_runner import call_hook
from lxcframe.state import rootfs_mountpoint


def build_plan(
    plugins: Any,
    name: str,
    lxcpath: str,
    config: ContainerConfig,
    argv: tuple[str, ...] | None,
    mode: str,
) -> StartPlan:
    refuse_unapplied_keys(plugins, config)
    problems = [p for result in call_hook(plugins, "lxcframe_validate", config=config, manager=plugins)
                for p in result]
    rootfs = config.get("lxc.rootfs.path")
    if not rootfs:
        problems.append(f"{config.path}: lxc.rootfs.path is not set")
    if problems:
        raise ConfigError("; ".join(problems))
    if not argv:
        if mode == "execute":
            argv = config.get("lxc.execute.cmd")
            if not argv:
                raise ConfigError("no command given and lxc.execute.cmd is not set", path=config.path)
        else:
            argv = config.get("lxc.init.cmd") or ("/sbin/init",)
    from lxcframe.log import HUB, bound_container

    # What plugins log while they plan (a seccomp rule skipped, the filter at trace level) goes where
    # the monitor's lines go: the container's lxc.log.file too.
    with bound_container(name), HUB.container_sink(name, config.get("lxc.log.file"), config.get("lxc.log.level"),
                                                     config.get("lxc.log.syslog")):
        parts = plan_parts(plugins, config, PlanHost(name, lxcpath, plugins.host))
    flags = 0
    for value in call_hook(plugins, "lxcframe_clone_flags", config=config):
        flags |= value
    for value in call_hook(plugins, "lxcframe_clone_flags_remove", config=config):
        flags &= ~value
    return StartPlan(
        name=name,
        lxcpath=lxcpath,
        config=config,
        argv=tuple(argv),
        mode=mode,
        rootfs=rootfs,
        clone_flags=flags & ~syscalls.CLONE_NEWPID,
        new_pidns=True,
        pidns_in_child=bool(flags & syscalls.CLONE_NEWUSER),
        env=tuple(_environment(config)),
        cwd=config.get("lxc.init.cwd", "/"),
        uid=config.get("lxc.init.uid", 0),
        gid=config.get("lxc.init.gid", 0),
        hostname=config.get("lxc.uts.name", name),
        rootfs_mount=rootfs_mountpoint(),
        parts=parts,
    )


def plan_parts(plugins: Any, config: ContainerConfig, host: PlanHost) -> tuple[object, ...]:
    """Every plugin's part of the plan (``lxcframe_plan``), decided once, here in the caller.

    A part is a frozen attrs instance of the plugin's own class, one per class: it crosses to the
    monitor with the plan (:mod:`lxcframe.transfer`), so anything else is refused here, naming the
    plugin, rather than on the receiving side.
    """
    from lxcframe.handover import is_frozen_attrs

    parts: dict[type, object] = {}
    for part in call_hook(plugins, "lxcframe_plan", config=config, host=host):
        if part is None:
            continue
        if not is_frozen_attrs(part):
            raise TypeError(f"lxcframe_plan returned {part!r}: a plan part must be a frozen attrs instance")
        if type(part) in parts:
            raise TypeError(f"lxcframe_plan: two plugins returned a {type(part).__qualname__} part")
        parts[type(part)] = part
    return tuple(parts.values())


def _environment(config: ContainerConfig) -> list[str]:
    env = {"PATH": DEFAULT_PATH, "container": "lxc", "HOME": "/root"}
    for item in config.get_all("lxc.environment"):
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
        elif key in os.environ:  # a bare NAME passes the caller's value through
            env[key] = os.environ[key]
    return [f"{k}={v}" for k, v in env.items()]


def refuse_unapplied_keys(plugins: Any, config: ContainerConfig) -> None:
    """As LXC, a key no enabled plugin applies stops the start (and ``config validate``): a seccomp
    profile of a disabled plugin must not mean an unconfined container. The host may opt out
    (``[plugins] unhandled_keys = "warn"``)."""
    from lxcframe.hostconfig import UNHANDLED_WARN, unhandled_opt_out

    if plugins.unhandled_keys != UNHANDLED_WARN:
        config.refuse_unhandled(unhandled_opt_out(plugins.host))
