"""Kernel parameters of the container: ``lxc.sysctl.<key> = value`` written to ``/proc/sys/<key>``.

Only sysctls that belong to a namespace the container has of its own are accepted: ``net.*``
(network namespace), the System V IPC and POSIX message queue ones (IPC namespace) and
``kernel.hostname``/``kernel.domainname`` (UTS namespace). Any other would change the host, so it
is a config error; so is a namespaced one when the container shares that namespace with the host
(``lxc.net.0.type = none`` for ``net.*``), found before anything is created.

Which namespace a write lands in is decided by the writing task's namespaces, not by the proc
mount; writing from init, through the container's own proc, keeps it inside the container either
way. The write goes through a detached copy of the container's proc mount (``open_tree``), because
``lxc.mount.auto = proc:mixed`` puts a read-only ``/proc/sys`` over it; the copy has no submounts.
"""

from __future__ import annotations

import os

import attrs

from lxcframe import syscalls
from lxcframe.config.keys import KeySpec
from lxcframe.config.model import ContainerConfig
from lxcframe.context import ChildContext, HostContext
from lxcframe.errors import StageError
from lxcframe.hooks import hookimpl
from lxcframe.rootfs_paths import write_in_root

PREFIX = "lxc.sysctl."

#: System V IPC sysctls, in the IPC namespace.
IPC_SYSCTLS = (
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.msg_next_id",
    "kernel.sem", "kernel.sem_next_id",
    "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_next_id", "kernel.shm_rmid_forced",
)
UTS_SYSCTLS = ("kernel.hostname", "kernel.domainname")

#: Key name (or pattern, without the ``lxc.sysctl.`` prefix) -> the namespace it lives in.
NAMESPACED: dict[str, int] = {
    "net.*": syscalls.CLONE_NEWNET,
    "fs.mqueue.*": syscalls.CLONE_NEWIPC,
    **{name: syscalls.CLONE_NEWIPC for name in IPC_SYSCTLS},
    **{name: syscalls.CLONE_NEWUTS for name in UTS_SYSCTLS},
}
NAMESPACE_NAMES = {syscalls.CLONE_NEWNET: "network", syscalls.CLONE_NEWIPC: "IPC", syscalls.CLONE_NEWUTS: "UTS"}


def _value(value: str) -> str:
    return value.strip()


def _not_namespaced(value: str) -> str:
    # Reached for every lxc.sysctl.* key none of the namespaced specs matched.
    raise ValueError(
        "not a namespaced sysctl: writing it would change the host "
        "(allowed: net.*, fs.mqueue.*, kernel.msg*/sem*/shm*, kernel.hostname, kernel.domainname)"
    )


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    specs = [KeySpec(PREFIX + name, _value, doc="a namespaced sysctl of the container") for name in NAMESPACED]
    specs.append(KeySpec(PREFIX + "*", _not_namespaced, doc="sysctls written inside the container"))
    return specs


def sysctl_keys(config: ContainerConfig) -> list[str]:
    return config.keys_under(PREFIX)


def namespace_of(key: str) -> int:
    name = key.removeprefix(PREFIX)
    if name in NAMESPACED:
        return NAMESPACED[name]
    return next(flag for pattern, flag in NAMESPACED.items() if name.startswith(pattern.removesuffix("*")))



@hookimpl
def lxcframe_validate(config: ContainerConfig) -> list[str]:
    problems = []
    for key in sysctl_keys(config):
        parts = key.removeprefix(PREFIX).split(".")
        # The key becomes a path under /proc/sys: it must name a file there, nothing else.
        if any(part in ("", "..") or "/" in part for part in parts):
            problems.append(f"{config.where(key)}{key}: not a sysctl name")
    return problems


@attrs.frozen
class Sysctl:
    """One ``lxc.sysctl.*`` line: ``where`` is ``FILE:LINE: `` of it, for the messages of a refusal."""

    key: str
    value: str
    namespace: int
    where: str

    @property
    def path(self) -> str:
        """The file below the container's /proc."""
        return "sys/" + self.key.removeprefix(PREFIX).replace(".", "/")


@attrs.frozen
class SysctlPart:
    """The sysctls init writes, in key order, decided by the caller (``lxcframe_plan``)."""

    sysctls: tuple[Sysctl, ...]


@hookimpl
def lxcframe_plan(config: ContainerConfig) -> SysctlPart | None:
    found = tuple(Sysctl(key, config.get(key), namespace_of(key), config.where(key)) for key in sysctl_keys(config))
    return SysctlPart(found) if found else None


@hookimpl
def lxcframe_pre_start(ctx: HostContext) -> None:
    part = ctx.plan.part_or_none(SysctlPart)
    for sysctl in part.sysctls if part else ():
        if not ctx.plan.clone_flags & sysctl.namespace:
            raise StageError(
                "pre-start", "sysctl",
                f"{sysctl.where}{sysctl.key}: the container shares the host's {NAMESPACE_NAMES[sysctl.namespace]} "
                "namespace, so this would change the host",
            )


def _fs_type(fd: int) -> str | None:
    """The file system type of the mount ``fd`` is on, from its mount id (before pivot_root)."""
    with open(f"/proc/self/fdinfo/{fd}", encoding="ascii") as handle:
        mnt_id = next((line.split()[1] for line in handle if line.startswith("mnt_id:")), None)
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            fields = line.split()
            if fields[0] == mnt_id:
                return fields[fields.index("-") + 1]
    return None


def _open_container_proc(ctx: ChildContext, first: Sysctl) -> int:
    """A detached copy of the container's /proc mount, refused when the container mounts none."""
    try:
        proc_fd = ctx.open_in_rootfs("/proc", os.O_PATH | os.O_DIRECTORY)
    except FileNotFoundError:
        proc_fd = -1
    try:
        if proc_fd < 0 or _fs_type(proc_fd) != "proc":
            raise StageError(
                "pre-pivot", "sysctl",
                f"{first.where}{first.key}: the container has no /proc to write sysctls through "
                "(set lxc.mount.auto = proc:mixed or proc:rw)",
            )
        clone = syscalls.OPEN_TREE_CLONE | syscalls.OPEN_TREE_CLOEXEC | syscalls.AT_EMPTY_PATH
        return syscalls.open_tree(proc_fd, "", clone)
    finally:
        if proc_fd >= 0:
            os.close(proc_fd)


@hookimpl
def lxcframe_child_pre_pivot(ctx: ChildContext) -> None:
    # After the mounts stage (the container's /proc exists) and while the host's /proc still
    # tells which file system that is; before security, which may drop the capabilities needed.
    part = ctx.plan.part_or_none(SysctlPart)
    if part is None:
        return
    tree_fd = _open_container_proc(ctx, part.sysctls[0])
    try:
        for sysctl in part.sysctls:
            key, path, value = sysctl.key, sysctl.path, sysctl.value
            try:
                write_in_root(tree_fd, path, value)
            except OSError as err:
                raise StageError(
                    "pre-pivot", "sysctl",
                    f"{sysctl.where}{key} = {value}: cannot write /proc/{path}: {err.strerror}",
                    err.errno,
                ) from None
            ctx.log.debug("sysctl set", key=key, value=value)
    finally:
        os.close(tree_fd)
