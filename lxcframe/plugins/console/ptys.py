"""Child side: the console and the ttys, allocated from the container's own devpts.

Why the container's devpts rather than the host's ``/dev/ptmx`` (LXC 3's way): a pty of the
container's instance is owned inside (its uid/gid are the container's, even in a user namespace)
and ``/dev/pts/N`` inside names it, so ``tty`` and ``ls -l /dev/pts`` agree with ``/dev/console``.
A host pty bind-mounted into a user namespace would show up as owned by nobody and could not be
chowned or re-opened through ``/dev/pts`` by the container. The masters cross back to the monitor
over a socket it handed over at the ``created`` barrier (as LXC 4+ sends them to its monitor).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct

from lxcframe import syscalls
from lxcframe.channel import Channel
from lxcframe.context import ChildContext
from lxcframe.rootfs_paths import create_file_in_root, fd_path, makedirs_in_root, open_in_root

from .settings import ConsoleSettings

TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441


def open_pty(ctx: ChildContext) -> tuple[int, int, int]:
    """A new pty of the container's devpts: (master, slave, index). The slave needs no path lookup."""
    master = open_in_root(ctx.root_fd, "/dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        index = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except BaseException:
        os.close(master)
        raise
    return master, int(slave), int(index)


def _replace_with_symlink(ctx: ChildContext, name: str, target: str) -> None:
    dev_fd = open_in_root(ctx.root_fd, "/dev", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dev_fd)
        os.symlink(target, name, dir_fd=dev_fd)
    finally:
        os.close(dev_fd)


def bind_slave(ctx: ChildContext, slave: int, name: str, tty_dir: str) -> None:
    """Bind the pty over /dev/NAME, or over /dev/DIR/NAME with /dev/NAME a symlink to it (``lxc.tty.dir``)."""
    if tty_dir:
        os.close(makedirs_in_root(ctx.root_fd, f"/dev/{tty_dir}"))
        target = create_file_in_root(ctx.root_fd, f"/dev/{tty_dir}/{name}", 0o000)
    else:
        target = create_file_in_root(ctx.root_fd, f"/dev/{name}", 0o000)
    try:
        syscalls.mount(fd_path(slave), fd_path(target), None, syscalls.MS_BIND)
    finally:
        os.close(target)
    if tty_dir:
        _replace_with_symlink(ctx, name, f"{tty_dir}/{name}")


def allocate(ctx: ChildContext, settings: ConsoleSettings, link: Channel) -> int:
    """Make /dev/console and /dev/tty1..N; send each master (and a slave the monitor keeps open, so a
    master never reads as hung up while nobody inside holds the tty) to the monitor. Returns the
    console's slave, for init's stdio."""
    console_slave = -1
    for number in range(settings.tty_max + 1):
        master, slave, index = open_pty(ctx)
        try:
            bind_slave(ctx, slave, "console" if number == 0 else f"tty{number}", settings.tty_dir)
            link.send({"tty": number, "pts": index}, {"master": master, "peer": slave})
        finally:
            os.close(master)
            if number != 0:
                os.close(slave)
        if number == 0:
            console_slave = slave
    return console_slave
