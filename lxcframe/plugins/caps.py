"""Capabilities: ``lxc.cap.drop`` / ``lxc.cap.keep`` on the bounding set, and ``lxc.no_new_privs``."""

from __future__ import annotations

import attrs

from lxcframe import syscalls
from lxcframe.config.keys import KeySpec, boolean01
from lxcframe.config.model import ContainerConfig
from lxcframe.context import AttachChildContext, ChildContext
from lxcframe.hooks import hookimpl


def parse_caps(value: str) -> tuple[int, ...]:
    numbers = []
    for word in value.split():
        if word == "none":
            continue
        try:
            numbers.append(syscalls.cap_number(word))
        except ValueError:
            raise ValueError(f"unknown capability {word!r}") from None
    return tuple(numbers)


def _keep_value(value: str) -> tuple[int, ...]:
    # "none" alone means: keep nothing.
    return () if value.split() == ["none"] else parse_caps(value)


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    return [
        KeySpec("lxc.cap.drop", parse_caps, multi=True, doc="capabilities removed from the bounding set"),
        KeySpec("lxc.cap.keep", _keep_value, multi=True, doc="the only capabilities kept ('none': none)"),
        KeySpec("lxc.no_new_privs", boolean01, doc="set no_new_privs before executing init"),
    ]


@hookimpl
def lxcframe_validate(config: ContainerConfig) -> list[str]:
    if config.multi.get("lxc.cap.drop") and config.multi.get("lxc.cap.keep"):
        return [f"{config.where('lxc.cap.keep')}lxc.cap.keep: cannot be combined with lxc.cap.drop"]
    return []


@attrs.frozen
class CapsPart:
    """Decided by the caller, where the host's ``cap_last_cap`` is readable: the container may mount
    no /proc at all, and an attaching process has the container's."""

    drop: tuple[int, ...]
    no_new_privs: bool


def caps_to_drop(config: ContainerConfig) -> list[int]:
    last = syscalls.cap_last_cap()
    if config.multi.get("lxc.cap.keep"):
        keep = {cap for caps in config.get_all("lxc.cap.keep") for cap in caps}
        return [cap for cap in range(last + 1) if cap not in keep]
    return sorted({cap for caps in config.get_all("lxc.cap.drop") for cap in caps if cap <= last})


def drop_caps(part: CapsPart, *, until_exec: bool = False) -> None:
    """Drop ``part.drop`` from the bounding and inheritable sets (so from the ambient one too), and with
    ``until_exec`` False from the effective and permitted sets as well.

    Init keeps its effective and permitted capabilities until it executes (``until_exec``), which makes
    them what the bounding set allows (root) or nothing (another uid): meanwhile the seccomp policy is
    loaded (CAP_SYS_ADMIN without no_new_privs, as runc and LXC load it) and init takes its ids
    (CAP_SETUID, CAP_SETGID) even when the container keeps neither.
    """
    dropped = part.drop
    for cap in dropped:
        syscalls.drop_bounding_cap(cap)
    if dropped:
        current = syscalls.capget()
        mask = ~sum(1 << cap for cap in dropped)
        if until_exec:
            syscalls.capset(current.effective, current.permitted, current.inheritable & mask)
        else:
            syscalls.capset(current.effective & mask, current.permitted & mask, current.inheritable & mask)
    if part.no_new_privs:
        syscalls.set_no_new_privs()


@hookimpl
def lxcframe_plan(config: ContainerConfig) -> CapsPart | None:
    part = CapsPart(tuple(caps_to_drop(config)), bool(config.get("lxc.no_new_privs")))
    return part if part.drop or part.no_new_privs else None


@hookimpl
def lxcframe_child_security(ctx: ChildContext) -> None:
    part = ctx.plan.part_or_none(CapsPart)
    if part is not None:
        drop_caps(part, until_exec=True)


@hookimpl
def lxcframe_attach_child(ctx: AttachChildContext) -> None:
    part = ctx.part_or_none(CapsPart)
    if part is not None:
        # A command keeps them until it executes, as init does; a callable runs without them at once.
        drop_caps(part, until_exec=ctx.executes)
