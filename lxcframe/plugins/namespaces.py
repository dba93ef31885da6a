"""Which namespaces a container gets: ``lxc.namespace.clone``/``keep``, ``lxc.namespace.share.NS`` and a time
namespace with ``lxc.time.offset.boot``/``monotonic``.

* ``clone``/``keep`` (one or the other, as LXC) take out of the plan the namespaces the container does
  not get (``lxcframe_clone_flags_remove``); a mount and a pid namespace of its own are required, and a
  user namespace goes with ``lxc.idmap``.
* ``share.NS`` (net, ipc, uts, cgroup, time): the monitor finds the target (a running container's init,
  proven as every command proves it, or a pid), opens ``/proc/PID/ns/NS`` before the fork and hands the
  descriptors over; the child joins them with setns after the core's unshare, before anything is mounted.
  The core leaves a namespace the container does not own alone (no host name in a shared UTS namespace,
  no device in a shared network namespace: such ``lxc.net.N`` lines are refused).
* A new time namespace is made in the child, after the core's unshare: ``unshare(CLONE_NEWTIME)`` moves
  only the children of the caller, and the exec of the payload, into it, so the offsets are written to
  ``/proc/self/timens_offsets`` first, while no process is in it yet.
"""

from __future__ import annotations

import errno
import functools
import os

from lxcframe import syscalls
from lxcframe.config.keys import KeySpec
from lxcframe.config.model import ContainerConfig
from lxcframe.context import ChildContext, HostContext
from lxcframe.hooks import hookimpl
from lxcframe.plugins.namespaces_config import NamespacesPart, config_keys, plan_part, problems, removed_flags
from lxcframe.stash import DescriptorKey


def _key(name: str) -> DescriptorKey:
    return DescriptorKey(f"shared {name} namespace")


_KEYS = {name: _key(name) for name in ("net", "ipc", "uts", "cgroup", "time")}


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    return config_keys()


@hookimpl
def lxcframe_validate(config: ContainerConfig) -> list[str]:
    return problems(config)


@hookimpl
def lxcframe_clone_flags_remove(config: ContainerConfig) -> int:
    return removed_flags(config)


@hookimpl
def lxcframe_plan(config: ContainerConfig) -> NamespacesPart | None:
    part = plan_part(config)
    return part if part.shares or part.new_time else None


@hookimpl
def lxcframe_pre_start(ctx: HostContext) -> None:
    part = ctx.plan.part_or_none(NamespacesPart)
    if part is None or not part.shares:
        return
    from lxcframe.plugins.namespaces_target import open_namespace

    for share in part.shares:
        fd = open_namespace(share, ctx.plan.lxcpath, ctx.plan.name)
        key = _KEYS[share.name]
        ctx.handover.send_fd(key, fd)
        ctx.undo.push(f"{share.key} descriptor", functools.partial(_close_unsent, ctx, key))
        ctx.log.debug("joining a shared namespace", namespace=share.name, target=share.target)


def _close_unsent(ctx: HostContext, key: DescriptorKey) -> None:
    # Sent (and closed) at the ``created`` barrier, unless the start failed before it.
    fd = ctx.handover.take_back_fd(key)
    if fd is not None:
        os.close(fd)


@hookimpl
def lxcframe_child_network(ctx: ChildContext) -> None:
    part = ctx.plan.part_or_none(NamespacesPart)
    if part is None:
        return
    for share in part.shares:
        fd = ctx.received.take_fd(_KEYS[share.name])
        if fd is None:
            raise RuntimeError(f"{share.where}: the monitor handed over no descriptor of that namespace")
        try:
            syscalls.setns(fd, share.flag)
        except OSError as err:
            raise OSError(err.errno, f"{share.where}: cannot join that {share.name} namespace: "
                                     f"{os.strerror(err.errno or errno.EINVAL)}") from None
        finally:
            os.close(fd)
    if part.new_time:
        _new_time_namespace(part)


def _new_time_namespace(part: NamespacesPart) -> None:
    syscalls.unshare(syscalls.CLONE_NEWTIME)
    if not part.boot_ns and not part.monotonic_ns:
        return
    lines = [f"{clock} {offset // 10**9} {offset % 10**9}\n"
             for clock, offset in (("boottime", part.boot_ns), ("monotonic", part.monotonic_ns)) if offset]
    try:
        # One write per clock: the kernel takes a whole write or none of it.
        with open("/proc/self/timens_offsets", "w", encoding="ascii") as handle:
            handle.write("".join(lines))
    except OSError as err:
        # ERANGE: the offset would make the clock negative (a monotonic offset below minus the uptime).
        raise OSError(err.errno, f"{part.offsets_where}: the kernel refused these offsets: "
                                 f"{os.strerror(err.errno or errno.EINVAL)}") from None
