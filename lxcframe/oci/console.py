"""``create --console-socket``: a pty of the container's own devpts as init's terminal, its master sent
to the caller over the unix socket (SCM_RIGHTS), as runc does for ``process.terminal``.

``create`` connects to the socket before the fork (after the pivot the host's path is out of reach);
init, in the ``exec`` stage before it waits on the exec fifo, opens ``/dev/ptmx`` of the container,
makes the pty its controlling terminal and its stdio, and sends the master with the pty's name as the
message (what runc's ``utils.SendFd`` sends).
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios

from lxcframe.context import ChildContext
from lxcframe.hooks import hookimpl

#: linux/tty.h ioctls Python's termios does not name.
TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441


def connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


class ConsoleSocket:
    """An in-process plugin of ``create``: init's stdio becomes a pty whose master goes to the socket."""

    def __init__(self, sock: socket.socket, size: tuple[int, int] | None = None) -> None:
        self.sock = sock
        #: ``process.consoleSize`` as (rows, columns).
        self.size = size

    # Not last in the stage: before ExecFifo's wait (last), so the caller has the pty during create.
    @hookimpl
    def lxcframe_child_pre_exec(self, ctx: ChildContext) -> None:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        try:
            fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
            number = struct.unpack("i", fcntl.ioctl(master, TIOCGPTN, struct.pack("i", 0)))[0]
            name = f"/dev/pts/{number}"
            tty = os.open(name, os.O_RDWR | os.O_NOCTTY)
            if self.size is not None:
                fcntl.ioctl(tty, termios.TIOCSWINSZ, struct.pack("HHHH", self.size[0], self.size[1], 0, 0))
            # A session of its own, with the pty as its controlling terminal (sh's job control, ^C).
            os.setsid()
            fcntl.ioctl(tty, termios.TIOCSCTTY, 0)
            for fd in (0, 1, 2):
                os.dup2(tty, fd)
            os.close(tty)
            socket.send_fds(self.sock, [name.encode()], [master])
        finally:
            os.close(master)
            self.sock.close()
        ctx.log.debug("console sent", pty=name)


def container_pty(init_pid: int) -> tuple[int, int, str]:
    """A pty of the running container's devpts, opened from the host through init's root (``exec
    --tty``): ``(master, slave, name inside)``; the slave comes from the master (TIOCGPTPEER), no path."""
    master = os.open(f"/proc/{init_pid}/root/dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        number = struct.unpack("i", fcntl.ioctl(master, TIOCGPTN, struct.pack("i", 0)))[0]
        slave: int = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except BaseException:
        os.close(master)
        raise
    return master, slave, f"/dev/pts/{number}"


def send_master(path: str, name: str, master: int) -> None:
    with connect(path) as sock:
        socket.send_fds(sock, [name.encode()], [master])
