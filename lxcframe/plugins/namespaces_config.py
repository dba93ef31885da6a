"""The keys of the ``namespaces`` plugin, read without importing anything heavy: which namespaces a
container gets (``lxc.namespace.clone``/``keep``), which it joins (``lxc.namespace.share.NS``) and the
offsets of its time namespace (``lxc.time.offset.boot``/``monotonic``), as LXC reads them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import attrs

from lxcframe import syscalls
from lxcframe.config.keys import KeySpec
from lxcframe.config.model import ContainerConfig

#: LXC's names of the namespaces (``mount`` as lxc.container.conf(5) writes it, ``mnt`` as liblxc reads it).
FLAGS: dict[str, int] = {
    "user": syscalls.CLONE_NEWUSER, "mnt": syscalls.CLONE_NEWNS, "mount": syscalls.CLONE_NEWNS,
    "pid": syscalls.CLONE_NEWPID, "uts": syscalls.CLONE_NEWUTS, "ipc": syscalls.CLONE_NEWIPC,
    "net": syscalls.CLONE_NEWNET, "cgroup": syscalls.CLONE_NEWCGROUP, "time": syscalls.CLONE_NEWTIME,
}
#: The name of each flag, as ``/proc/PID/ns/`` calls it.
NAMES: dict[int, str] = {flag: name for name, flag in FLAGS.items() if name != "mount"}
ALL = sum(NAMES)  # distinct bits
#: Namespaces a container can join with ``lxc.namespace.share.NS`` (setns before its mounts).
SHAREABLE = ("net", "ipc", "uts", "cgroup", "time")
#: What sharing the others would take, for their refusal.
_NOT_SHAREABLE = {
    "pid": "the container's init must be pid 1 of a pid namespace of its own (stop, attach and the state's "
           "proofs rely on it)",
    "user": "joining another user namespace is not supported yet",
    "mnt": "the container's rootfs is mounted in a mount namespace of its own",
}
_OFFSET = re.compile(r"\s*([+-]?\d+)\s*(h|m|s|ms|us|ns)\s*")
_UNIT_NS = {"h": 3600 * 10**9, "m": 60 * 10**9, "s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
#: The kernel's bound on an offset (KTIME_SEC_MAX / 2 seconds); beyond it a write is refused anyway.
_MAX_OFFSET_NS = (2**63 - 1) // 2


def namespace_list(value: str) -> int:
    """``lxc.namespace.clone``/``keep``: namespace names separated by blanks, as CLONE_NEW* flags."""
    flags = 0
    for word in value.split():
        flag = FLAGS.get(word.lower())
        if flag is None:
            raise ValueError(f"unknown namespace {word!r} (expected any of user, mnt, pid, uts, ipc, net, "
                             "cgroup, time)")
        flags |= flag
    return flags


def share_target(value: str) -> str:
    """``lxc.namespace.share.NS``: a pid, a container name of the same lxcpath, ``/LXCPATH/NAME``, or the
    path of a namespace file (``/proc/PID/ns/NS``, or one bound elsewhere as ``ip netns`` and CNI do)."""
    text = value.strip()
    if text.isdigit():
        if int(text) <= 0:
            raise ValueError("expected a pid above 0, a container name, /LXCPATH/NAME or the path of a namespace file")
        return text
    if not text or any(ch.isspace() for ch in text) or text.endswith("/") or (
            "/" in text and not text.startswith("/")):
        raise ValueError("expected a pid, a container name, /LXCPATH/NAME or the path of a namespace file")
    return text


def _not_shareable(name: str) -> Callable[[str], str]:
    def refuse(value: str) -> str:
        raise ValueError(f"sharing the {name} namespace is not supported: {_NOT_SHAREABLE[name]}")

    return refuse


def _unknown_share(value: str) -> str:
    raise ValueError(f"unknown namespace (expected lxc.namespace.share.NS with NS one of {', '.join(SHAREABLE)})")


def time_offset(value: str) -> int:
    """``lxc.time.offset.*``: an integer and its unit (h, m, s, ms, us, ns), as nanoseconds."""
    match = _OFFSET.fullmatch(value)
    if match is None:
        raise ValueError("expected an integer and a unit: h, m, s, ms, us or ns (e.g. 3600s)")
    offset = int(match.group(1)) * _UNIT_NS[match.group(2)]
    if abs(offset) > _MAX_OFFSET_NS:
        raise ValueError("the offset is too large")
    return offset


def config_keys() -> list[KeySpec]:
    specs = [
        KeySpec("lxc.namespace.clone", namespace_list,
                doc="the namespaces the container gets, all others are the caller's (user, mnt, pid, uts, ipc, "
                    "net, cgroup, time)"),
        KeySpec("lxc.namespace.keep", namespace_list,
                doc="the namespaces kept from the caller, all others are new (not with lxc.namespace.clone)"),
        KeySpec("lxc.time.offset.boot", time_offset, doc="CLOCK_BOOTTIME offset of a new time namespace "
                "(an integer and h, m, s, ms, us or ns)"),
        KeySpec("lxc.time.offset.monotonic", time_offset, doc="CLOCK_MONOTONIC offset of a new time namespace"),
        KeySpec("lxc.namespace.share.*", _unknown_share, doc="an unknown namespace to share (refused)"),
    ]
    specs += [KeySpec(f"lxc.namespace.share.{name}", share_target,
                      doc=f"join the {name} namespace of a running container (its name) or of a pid")
              for name in SHAREABLE]
    specs += [KeySpec(f"lxc.namespace.share.{name}", _not_shareable(name), doc=f"refused: {why}")
              for name, why in _NOT_SHAREABLE.items()]
    return specs


@attrs.frozen
class Share:
    """One ``lxc.namespace.share.NS``: the namespace's name, its flag, the target and where it was set."""

    name: str
    flag: int
    target: str
    path: str | None
    line: int | None

    @property
    def key(self) -> str:
        return f"lxc.namespace.share.{self.name}"

    @property
    def where(self) -> str:
        """``FILE:LINE: KEY = VALUE``, as a problem found in validation starts."""
        place = f"{self.path}:{self.line}: " if self.path is not None else ""
        return f"{place}{self.key} = {self.target}"


@attrs.frozen
class NamespacesPart:
    """What the child does beyond the core's unshare: join shared namespaces, make a time namespace."""

    shares: tuple[Share, ...] = ()
    #: A new time namespace (``clone``/``keep`` asked for one, or an offset is set).
    new_time: bool = False
    boot_ns: int = 0
    monotonic_ns: int = 0
    #: ``FILE:LINE: `` of the offsets' lines, for the kernel's refusal.
    offsets_where: str = ""


def shares(config: ContainerConfig) -> tuple[Share, ...]:
    found = []
    for name in SHAREABLE:
        key = f"lxc.namespace.share.{name}"
        target = config.get(key)
        if target is not None:
            item = config.located(key)
            found.append(Share(name, FLAGS[name], target, item.path if item else None, item.line if item else None))
    return tuple(found)


def wanted(config: ContainerConfig) -> int | None:
    """The namespaces ``clone``/``keep`` ask for (time included), or ``None`` when neither is set."""
    clone = config.get("lxc.namespace.clone")
    keep = config.get("lxc.namespace.keep")
    if clone:
        return int(clone)
    if keep:
        return ALL & ~int(keep)
    return None


def has_offsets(config: ContainerConfig) -> bool:
    return bool(config.get("lxc.time.offset.boot") or config.get("lxc.time.offset.monotonic"))


def plan_part(config: ContainerConfig) -> NamespacesPart:
    flags = wanted(config)
    joined = shares(config)
    shared_time = any(share.name == "time" for share in joined)
    new_time = not shared_time and (has_offsets(config) or (flags is not None and bool(flags & syscalls.CLONE_NEWTIME)))
    where = " ".join(f"{config.where(key)}{key} = {config.raw(key)}"
                     for key in ("lxc.time.offset.boot", "lxc.time.offset.monotonic") if config.get(key))
    return NamespacesPart(joined, new_time, config.get("lxc.time.offset.boot", 0),
                          config.get("lxc.time.offset.monotonic", 0), where)


def removed_flags(config: ContainerConfig) -> int:
    """The CLONE_NEW* flags the container must not unshare: those ``clone``/``keep`` leave to the caller
    and those it joins."""
    removed = 0
    flags = wanted(config)
    if flags is not None:
        removed |= ALL & ~flags
    for share in shares(config):
        removed |= share.flag
    # The time namespace is this plugin's own (made in the child, after the core's unshare).
    return removed & ~syscalls.CLONE_NEWTIME


def problems(config: ContainerConfig) -> list[str]:
    found: list[str] = []

    def at(key: str, why: str) -> None:
        found.append(f"{config.where(key)}{key} = {config.raw(key)}: {why}")

    clone, keep = config.get("lxc.namespace.clone"), config.get("lxc.namespace.keep")
    if clone and keep:
        at("lxc.namespace.keep", "lxc.namespace.clone and lxc.namespace.keep cannot both be set")
        return found
    key = "lxc.namespace.clone" if clone else "lxc.namespace.keep"
    flags = wanted(config)
    idmap = bool(config.multi.get("lxc.idmap"))
    if flags is not None:
        if not flags & syscalls.CLONE_NEWNS:
            at(key, "the container needs a mount namespace of its own (its rootfs is mounted there)")
        if not flags & syscalls.CLONE_NEWPID:
            at(key, "the container needs a pid namespace of its own (its init is pid 1 there)")
        if flags & syscalls.CLONE_NEWUSER and not idmap:
            at(key, "a new user namespace needs lxc.idmap (keep the user namespace, or add the maps)")
        if idmap and not flags & syscalls.CLONE_NEWUSER:
            at(key, "lxc.idmap needs a new user namespace")
        if keep and keep & syscalls.CLONE_NEWTIME and has_offsets(config):
            at(key, "the time namespace is kept, so lxc.time.offset.* cannot apply")
        if clone and not clone & syscalls.CLONE_NEWTIME and has_offsets(config):
            at(key, "lxc.time.offset.* needs a new time namespace (add time)")
    joined = shares(config)
    for share in joined:
        if idmap:
            found.append(f"{share.where}: joining a namespace from a container with lxc.idmap is not "
                         "supported yet")
        if share.name == "time" and has_offsets(config):
            found.append(f"{share.where}: a shared time namespace keeps its own offsets (lxc.time.offset.* "
                         "cannot apply)")
    net_kept = flags is not None and not flags & syscalls.CLONE_NEWNET
    if net_kept or any(share.name == "net" for share in joined):
        for index in config.indexes("lxc.net."):
            device = config.get(f"lxc.net.{index}.type")
            if device not in (None, "none", "empty"):
                why = ("the container joins another network namespace" if not net_kept
                       else "the container keeps the caller's network namespace")
                at(f"lxc.net.{index}.type", f"{why}: no device can be configured in it")
    return found
