"""Monitor side: the pty masters, the console's ring buffer and log file, and the console socket.

The monitor is single-threaded: everything here is driven by its poll loop through
``lxcframe_monitor_fds``. Clients speak the JSON records of :class:`lxcframe.channel.Channel` on a
SEQPACKET socket in the container's runtime directory (see :mod:`.client`).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import socket
import stat
import struct
import termios
from collections.abc import Callable
from typing import Any

from lxcframe.channel import Channel

from .settings import ConsoleSettings

SOCKET_NAME = "console.sock"
_READ = 64 * 1024


def socket_address(dir_fd: int) -> str:
    # Through the directory's descriptor: a runtime directory below a deep $TMPDIR can be longer
    # than the 108 bytes sun_path allows.
    return f"/proc/self/fd/{dir_fd}/{SOCKET_NAME}"


class Ring:
    """The newest ``size`` bytes of console output."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data = bytearray()

    def write(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > self.size:
            del self.data[: len(self.data) - self.size]


class LogFileRefused(OSError):
    """``lxc.console.logfile`` names something that is not a regular file, or cannot be opened."""


class LogFile:
    """``lxc.console.logfile``: appended to; at ``lxc.console.size`` rotated to FILE.1 or started anew.

    Only a regular file (or none yet, then it is made): a FIFO would block the monitor's open until
    someone reads it, leaving the container STARTING; a device or a directory is no log. Unlike LXC, a
    symbolic link is refused too: the monitor, as root, reopens the path on every rotation for the
    container's whole life, and a link planted there meanwhile must not send the output elsewhere.
    """

    def __init__(self, path: str, limit: int, rotate: bool) -> None:
        self.path, self.limit, self.rotate = path, limit, rotate
        self.fd = self._open()

    def _open(self) -> int:
        from lxcframe.input_limits import kind_of

        try:
            mode = os.lstat(self.path).st_mode
        except FileNotFoundError:
            mode = stat.S_IFREG  # made by the open below
        if not stat.S_ISREG(mode):
            raise LogFileRefused(f"is {kind_of(mode)}, not a regular file")
        try:
            # O_NONBLOCK: a FIFO swapped in after the lstat fails (ENXIO) instead of blocking;
            # O_NOFOLLOW: likewise for a link. fstat then checks what was actually opened.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOCTTY
                         | os.O_NONBLOCK | os.O_NOFOLLOW, 0o600)
        except OSError as err:
            raise LogFileRefused(f"cannot open it: {err.strerror}") from None
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise LogFileRefused(f"is {kind_of(mode)}, not a regular file")
        return fd

    def write(self, chunk: bytes) -> None:
        if self.fd < 0:
            return  # reopening at a rotation failed (and was reported): the log stops there
        if self.limit and os.fstat(self.fd).st_size + len(chunk) > self.limit:
            os.close(self.fd)
            self.fd = -1
            if self.rotate:
                os.replace(self.path, self.path + ".1")
            self.fd = self._open()
            if not self.rotate:
                os.ftruncate(self.fd, 0)
            chunk = chunk[-self.limit:]
        os.write(self.fd, chunk)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Tty:
    def __init__(self, number: int, master: int, peer: int) -> None:
        self.number, self.master, self.peer = number, master, peer
        #: The client connection holding this tty; the tty is free again when it closes.
        self.holder: socket.socket | None = None
        #: Console only: the monitor's end of the stream the client reads and writes.
        self.stream: socket.socket | None = None


class ConsoleServer:
    def __init__(self, settings: ConsoleSettings, runtime_dir: str, log: Any) -> None:
        self.settings = settings
        self.log = log
        self.ttys: dict[int, Tty] = {}
        self.ring = Ring(settings.buffer_size) if settings.buffer_size else None
        self.logfile: LogFile | None = None
        self.mirror = -1
        self.child_link: socket.socket | None = None
        self.dir_fd = os.open(runtime_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(SOCKET_NAME, dir_fd=self.dir_fd)
            self.listener.bind(socket_address(self.dir_fd))
            self.listener.listen(8)
            self.listener.setblocking(False)
            if settings.logfile:
                self.logfile = LogFile(settings.logfile, settings.log_limit, settings.rotate)
            if settings.mirror:
                self.mirror = os.open(settings.mirror, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
        except BaseException:
            self.close()
            raise

    # --- from the child -------------------------------------------------------------------------

    def collect(self) -> None:
        """Take the masters the child sent (all sent before it executed init)."""
        if self.child_link is None:
            return
        link = Channel(self.child_link)
        while True:
            try:
                record = link.recv(timeout=0)
            except (BlockingIOError, TimeoutError):
                break
            if record is None:
                break
            fds = record.get("_fds", {})
            number = int(record["tty"])
            self.ttys[number] = Tty(number, fds["master"], fds["peer"])
            os.set_blocking(fds["master"], False)
        link.close()
        self.child_link = None
        self.log.debug("console ready", ttys=sorted(self.ttys))

    # --- poll loop --------------------------------------------------------------------------------

    def watch(self) -> list[tuple[int, Callable[[], None]]]:
        watched: list[tuple[int, Callable[[], None]]] = [(self.listener.fileno(), self._accept)]
        console = self.ttys.get(0)
        if console is not None:
            watched.append((console.master, self._on_console))
            if console.stream is not None:
                watched.append((console.stream.fileno(), self._stream_input))
            if self.mirror >= 0:
                watched.append((self.mirror, self._mirror_input))
        for tty in self.ttys.values():
            # A holder says nothing after its request: readable means it went away.
            if tty.holder is not None:
                watched.append((tty.holder.fileno(), functools.partial(self._release, tty)))
        return watched

    def drain(self) -> None:
        """Take what the console still holds (init has exited)."""
        console = self.ttys.get(0)
        while console is not None and self._console_output():
            pass

    def _on_console(self) -> None:
        self._console_output()

    def _console_output(self) -> bool:
        console = self.ttys[0]
        try:
            chunk = os.read(console.master, _READ)
        except (BlockingIOError, OSError):
            return False
        if not chunk:
            return False
        if self.ring is not None:
            self.ring.write(chunk)
        if self.logfile is not None:
            try:
                self.logfile.write(chunk)
            except OSError as err:
                self.log.warning("console log file not written", error=str(err))
        if console.stream is not None:
            try:
                console.stream.sendall(chunk)
            except OSError:
                self._release(console)
        if self.mirror >= 0:
            with contextlib.suppress(OSError):
                os.write(self.mirror, chunk)
        return True

    def _stream_input(self) -> None:
        console = self.ttys[0]
        assert console.stream is not None
        try:
            data = console.stream.recv(_READ)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._release(console)
            return
        with contextlib.suppress(OSError):
            os.write(console.master, data)

    def _mirror_input(self) -> None:
        with contextlib.suppress(OSError):
            data = os.read(self.mirror, _READ)
            if data:
                os.write(self.ttys[0].master, data)

    def _release(self, tty: Tty) -> None:
        for sock in (tty.holder, tty.stream):
            if sock is not None:
                sock.close()
        tty.holder = tty.stream = None

    # --- requests ---------------------------------------------------------------------------------

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        try:
            channel = Channel(conn)
            request = channel.recv(timeout=2.0)
            keep = request is not None and self._answer(channel, request)
        except (OSError, ValueError, KeyError, TypeError) as err:
            self.log.warning("console request failed", error=str(err))
            keep = False
        if not keep:
            conn.close()

    def _answer(self, channel: Channel, request: dict[str, Any]) -> bool:
        """Reply to one request; True when the connection now holds a tty."""
        op = request.get("op")
        if op == "log":
            if self.ring is None:
                channel.send({"ok": False, "error": "no console ring buffer (set lxc.console.buffer.size)"})
                return False
            memfd = os.memfd_create("console-log", os.MFD_CLOEXEC)
            try:
                os.write(memfd, bytes(self.ring.data))
                os.lseek(memfd, 0, os.SEEK_SET)
                channel.send({"ok": True}, {"log": memfd})
            finally:
                os.close(memfd)
            if request.get("clear"):
                self.ring.data.clear()
            return False
        if op != "tty":
            channel.send({"ok": False, "error": f"unknown request {op!r}"})
            return False
        tty = self._pick(int(request.get("tty", -1)))
        if isinstance(tty, str):
            channel.send({"ok": False, "error": tty})
            return False
        rows, cols = int(request.get("rows") or 0), int(request.get("cols") or 0)
        if rows and cols:
            with contextlib.suppress(OSError):
                fcntl.ioctl(tty.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        if tty.number == 0:
            # Output of the console also goes to the ring buffer and the log: the client gets a
            # stream fed by the monitor, never the master itself.
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            ours.setblocking(False)
            try:
                channel.send({"ok": True, "tty": 0}, {"tty": theirs.fileno()})
            finally:
                theirs.close()
            tty.stream = ours
        else:
            channel.send({"ok": True, "tty": tty.number}, {"tty": tty.master})
        tty.holder = channel.sock
        return True

    def _pick(self, wanted: int) -> Tty | str:
        if wanted < 0:
            free = [t for n, t in sorted(self.ttys.items()) if n > 0 and t.holder is None]
            if free:
                return free[0]
            if len(self.ttys) > 1:
                return "all ttys are in use"
            wanted = 0  # no lxc.tty.max: the console is the only terminal there is
        tty = self.ttys.get(wanted)
        if tty is None:
            return f"no tty {wanted} (lxc.tty.max = {max(len(self.ttys) - 1, 0)})" if self.ttys else "no console"
        if tty.holder is not None:
            return f"tty {wanted} is in use"
        return tty

    # --- end ------------------------------------------------------------------------------------

    def close(self) -> None:
        for tty in self.ttys.values():
            self._release(tty)
            os.close(tty.master)
            os.close(tty.peer)
        self.ttys.clear()
        if self.child_link is not None:
            self.child_link.close()
            self.child_link = None
        self.listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(SOCKET_NAME, dir_fd=self.dir_fd)
        os.close(self.dir_fd)
        if self.logfile is not None:
            self.logfile.close()
            self.logfile = None
        if self.mirror >= 0:
            os.close(self.mirror)
            self.mirror = -1
