"""Plugin ``console``: /dev/console and /dev/ttyN from the container's devpts, served by the monitor.

``lxc.console.*``, ``lxc.tty.max``, ``lxc.tty.dir``. The child allocates the ptys (see :mod:`.ptys`)
and sends the masters to the monitor, which logs the console (ring buffer, ``lxc.console.logfile``)
and hands ttys to ``lxcframe console`` / ``Container.console_getfd`` (the core's
:mod:`lxcframe.console_service`, which a long-lived process can take over without this plugin).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from lxcframe import state as st
from lxcframe.channel import Channel
from lxcframe.config.keys import KeySpec
from lxcframe.config.model import ContainerConfig
from lxcframe.context import ChildContext, HostContext
from lxcframe.errors import ConfigError
from lxcframe.hooks import hookimpl
from lxcframe.stash import DescriptorKey, StashKey
from lxcframe.state import ContainerState

from .settings import KEYS, LOGFILE_KEY, ConsoleSettings

if TYPE_CHECKING:
    from lxcframe.console_service import ConsoleOptions, ConsoleServer

NAME = "console"


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    return list(KEYS)


@hookimpl
def lxcframe_api_extensions() -> list[str]:
    return ["console_log"]


#: The monitor's console server, for the container's life.
_SERVER: StashKey[ConsoleServer] = StashKey("console server")
#: The child's end of the link over which it sends the pty masters to the monitor.
_LINK = DescriptorKey("console link")
#: The console's slave in the child, for init's stdio.
_SLAVE = StashKey[int]("console slave")


@hookimpl
def lxcframe_plan(config: ContainerConfig) -> ConsoleSettings:
    return ConsoleSettings.from_config(config)


@hookimpl
def lxcframe_pre_start(ctx: HostContext) -> None:
    from lxcframe.console_service import ConsoleServer, LogFileRefused

    settings = ctx.plan.part(ConsoleSettings)
    if not settings.enabled:
        return
    try:
        server = ConsoleServer.open(_options(settings), st.runtime_dir(ctx.plan.lxcpath, ctx.plan.name), ctx.log)
    except LogFileRefused as err:
        raise ConfigError(str(err), path=settings.logfile_path, line=settings.logfile_line, key=LOGFILE_KEY,
                          value=settings.logfile) from None
    ctx.undo.push("console", server.close)
    ctx.stash[_SERVER] = server
    # Under a server that adopts the running container, the server serves the console from then on.
    ctx.served["console"] = server
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.child_link = ours
    ctx.handover.send_fd(_LINK, theirs.detach())

    def forget_unsent() -> None:
        # Sent (and closed) at the ``created`` barrier, unless the start failed before it.
        fd = ctx.handover.take_back_fd(_LINK)
        if fd is not None:
            os.close(fd)

    ctx.undo.push("console link", forget_unsent)


def _options(settings: ConsoleSettings) -> ConsoleOptions:
    from lxcframe.console_service import ConsoleOptions

    return ConsoleOptions(buffer_size=settings.buffer_size, logfile=settings.logfile, log_limit=settings.log_limit,
                          rotate=settings.rotate, mirror=settings.mirror)


@hookimpl
def lxcframe_child_devices(ctx: ChildContext) -> None:
    # Last (lxcframe.stages.PLUGIN_ORDER): after the devices plugin has mounted devpts and made /dev.
    fd = ctx.received.take_fd(_LINK)
    if fd is None:
        return
    from .ptys import allocate

    link = Channel(socket.socket(fileno=fd))
    try:
        try:
            os.close(ctx.open_in_rootfs("/dev/pts/ptmx"))
        except FileNotFoundError:
            ctx.log.warning("no devpts in the container (lxc.pty.max = 0?): no console, no ttys")
            return
        try:
            ctx.stash[_SLAVE] = allocate(ctx, ctx.plan.part(ConsoleSettings), link)
        except PermissionError as err:
            # The container's own policy (e.g. lxc.cgroup.devices.deny without c 5:2) forbids ptys:
            # it runs, like one with lxc.console.path = none.
            ctx.log.warning("the container may not open ptys: no console, no ttys", error=str(err))
    finally:
        link.close()


@hookimpl
def lxcframe_child_pre_exec(ctx: ChildContext) -> None:
    slave = ctx.stash.get(_SLAVE, None)
    if slave is None or ctx.plan.mode != "daemon":
        return  # start -F and execute keep the caller's stdio, as LXC
    # A session of its own without a controlling terminal: init (busybox, systemd) makes the
    # console the controlling terminal of the sessions it starts.
    with contextlib.suppress(PermissionError):
        os.setsid()
    for target in (0, 1, 2):
        os.dup2(slave, target)


@hookimpl
def lxcframe_post_start(ctx: HostContext, pid: int) -> None:
    server = ctx.stash.get(_SERVER, None)
    if server is not None:
        server.collect()


@hookimpl
def lxcframe_monitor_fds(ctx: HostContext) -> list[tuple[int, Callable[[], None]]]:
    server = ctx.stash.get(_SERVER, None)
    return server.watch() if server is not None else []


@hookimpl
def lxcframe_stopped(ctx: HostContext, status: int) -> None:
    server = ctx.stash.get(_SERVER, None)
    if server is not None:
        server.drain()


@hookimpl
def lxcframe_cleanup(state: ContainerState) -> None:
    # A monitor that died left its console socket behind; nothing else of ours outlives it.
    from lxcframe.console_service import SOCKET_NAME

    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(state.runtime_dir, SOCKET_NAME))
