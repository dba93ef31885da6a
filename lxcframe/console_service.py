"""A running container's console: the pty masters, the ring buffer and log file, and the console socket.

Core code, not the console plugin's: the plugin builds the server in the process that starts the
container (:meth:`ConsoleServer.open` at pre-start, the child's masters taken by
:meth:`ConsoleServer.collect` at post-start), and a long-lived process in which no plugin code runs
can go on serving it: :meth:`ConsoleServer.export` gives everything the console is (JSON-able data
and descriptors), :meth:`ConsoleServer.restore` builds the same server from them in the other
process, and :meth:`ConsoleServer.forget` closes the exporter's copies without ending the console.

Whichever process holds it, the server is single-threaded and driven by a poll loop through
:meth:`ConsoleServer.watch`. Clients speak the JSON records of :class:`lxcframe.channel.Channel` on a
SEQPACKET socket in the container's runtime directory (``lxcframe.plugins.console.client``).
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

import attrs

from lxcframe.channel import Channel
from lxcframe.errors import LxcframeError

SOCKET_NAME = "console.sock"
_READ = 64 * 1024
#: The version of :meth:`ConsoleServer.export`'s data; :meth:`ConsoleServer.restore` takes only its own.
EXPORT_FORMAT = 1


def socket_address(dir_fd: int) -> str:
    # Through the directory's descriptor: a runtime directory below a deep $TMPDIR can be longer
    # than the 108 bytes sun_path allows.
    return f"/proc/self/fd/{dir_fd}/{SOCKET_NAME}"


@attrs.frozen
class ConsoleOptions:
    """What the server is told by the container's config (the console plugin builds it from its keys)."""

    #: Bytes of output the ring buffer keeps (``lxc.console.buffer.size``); 0: no ring buffer.
    buffer_size: int = 0
    #: The host file the output is appended to (``lxc.console.logfile``), or "".
    logfile: str = ""
    #: Size at which the log file is rotated or started anew (``lxc.console.size``); 0: no limit.
    log_limit: int = 0
    #: Rotate the log file to FILE.1 at its limit (``lxc.console.rotate``) rather than truncate it.
    rotate: bool = False
    #: A host device that mirrors the console (``lxc.console.path`` other than ``none``), or "".
    mirror: str = ""


class ExportError(LxcframeError):
    """A console server that cannot be exported now, or data that is no export to restore from."""


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

    def __init__(self, path: str, limit: int, rotate: bool, fd: int = -1) -> None:
        self.path, self.limit, self.rotate = path, limit, rotate
        #: -1 once reopening at a rotation failed: the log stops there. Opened with O_APPEND, its
        #: size is the only position a rotation needs, so a restored server goes on from the descriptor.
        self.fd = fd

    @classmethod
    def open(cls, path: str, limit: int, rotate: bool) -> LogFile:
        log = cls(path, limit, rotate)
        log.fd = log._open()
        return log

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
    """One pty: the console (number 0) or ``/dev/ttyN``, with the master and a peer (slave) kept open."""

    def __init__(self, number: int, master: int, peer: int) -> None:
        self.number, self.master, self.peer = number, master, peer
        #: The client connection holding this tty; the tty is free again when it closes.
        self.holder: socket.socket | None = None
        #: Console only: the monitor's end of the stream the client reads and writes.
        self.stream: socket.socket | None = None


class ConsoleServer:
    def __init__(self, options: ConsoleOptions, log: Any, dir_fd: int, listener: socket.socket,
                 logfile: LogFile | None = None, mirror: int = -1) -> None:
        """The server made of what it holds (:meth:`open` makes them, :meth:`restore` receives them)."""
        self.options = options
        self.log = log
        self.ttys: dict[int, Tty] = {}
        self.ring = Ring(options.buffer_size) if options.buffer_size else None
        self.logfile = logfile
        self.mirror = mirror
        self.child_link: socket.socket | None = None
        #: The runtime directory (O_PATH): the socket file is bound and unlinked through it.
        self.dir_fd = dir_fd
        self.listener = listener
        #: Descriptors made by :meth:`export` only to carry something across (the ring's memfd).
        self._export_fds: list[int] = []
        self._closed = False

    @classmethod
    def open(cls, options: ConsoleOptions, runtime_dir: str, log: Any) -> ConsoleServer:
        """A new console of the container whose runtime directory is ``runtime_dir``: its socket bound
        there (replacing a stale one), its log file and mirror opened; the ttys come with :meth:`collect`."""
        dir_fd = os.open(runtime_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        server = cls(options, log, dir_fd, socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET))
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(SOCKET_NAME, dir_fd=dir_fd)
            server.listener.bind(socket_address(dir_fd))
            server.listener.listen(8)
            server.listener.setblocking(False)
            if options.logfile:
                server.logfile = LogFile.open(options.logfile, options.log_limit, options.rotate)
            if options.mirror:
                server.mirror = os.open(options.mirror, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
        except BaseException:
            server.close()
            raise
        return server

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

    # --- to another process ------------------------------------------------------------------------

    def export(self) -> tuple[dict[str, Any], list[int]]:
        """Everything another process needs to go on serving this console: JSON-able data and the
        descriptors it refers to by their index in the list.

        The descriptors are this process's own (no duplicates): send them (SCM_RIGHTS), then
        :meth:`forget`. Until then the server must not be polled, or it would change what was exported.
        A tty a client holds, and the console's stream to it, travel too: the client keeps it across
        the move. The data::

            {"format": 1,
             "options": {buffer_size, logfile, log_limit, rotate, mirror},   # ConsoleOptions' fields
             "dir": I, "listener": I,        # the runtime directory (O_PATH), the listening socket
             "logfile": I | None,            # the log file (None: none, or it stopped at a failed rotation)
             "mirror": I | None,             # the lxc.console.path device
             "ring": I | None,               # a memfd holding the ring buffer's bytes
             "ttys": [{"number": N, "master": I, "peer": I, "holder": I | None, "stream": I | None}, ...]}

        The ring travels as a memfd rather than in the data: ``lxc.console.buffer.size`` may be
        megabytes, more than one JSON record on a SEQPACKET socket carries.
        """
        if self._closed:
            raise ExportError("the console server is closed or was handed over already")
        if self.child_link is not None:
            raise ExportError("the child's pty masters were not collected yet (collect() first)")
        fds: list[int] = []

        def index(fd: int) -> int:
            fds.append(fd)
            return len(fds) - 1

        def index_of(sock: socket.socket | None) -> int | None:
            return None if sock is None else index(sock.fileno())

        ring = None
        if self.ring is not None:
            memfd = os.memfd_create("console-ring", os.MFD_CLOEXEC)
            self._export_fds.append(memfd)
            _write_all(memfd, bytes(self.ring.data))
            ring = index(memfd)
        logfile = self.logfile.fd if self.logfile is not None else -1
        data = {
            "format": EXPORT_FORMAT,
            "options": attrs.asdict(self.options),
            "dir": index(self.dir_fd),
            "listener": index(self.listener.fileno()),
            "logfile": index(logfile) if logfile >= 0 else None,
            "mirror": index(self.mirror) if self.mirror >= 0 else None,
            "ring": ring,
            "ttys": [{"number": tty.number, "master": index(tty.master), "peer": index(tty.peer),
                      "holder": index_of(tty.holder), "stream": index_of(tty.stream)}
                     for _, tty in sorted(self.ttys.items())],
        }
        return data, fds

    @classmethod
    def restore(cls, data: dict[str, Any], fds: list[int], log: Any) -> ConsoleServer:
        """The server :meth:`export` described, in this process. It owns ``fds`` from here on: a
        restore that fails closes them all, but leaves the socket file to the exporter, which may
        still be serving it."""
        sockets: list[socket.socket] = []
        try:
            server = cls._restore(data, fds, log, sockets)
        except BaseException:
            for sock in sockets:
                sock.detach()  # closed below, by number, with the rest
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            raise
        if data["ring"] is not None:
            os.close(fds[data["ring"]])  # read into the ring
        return server

    @classmethod
    def _restore(cls, data: dict[str, Any], fds: list[int], log: Any, sockets: list[socket.socket]) -> ConsoleServer:
        if data.get("format") != EXPORT_FORMAT:
            raise ExportError(f"not an exported console of format {EXPORT_FORMAT}: format {data.get('format')!r}")
        ttys = data["ttys"]
        named = [data["dir"], data["listener"], data["logfile"], data["mirror"], data["ring"],
                 *(tty[role] for tty in ttys for role in ("master", "peer", "holder", "stream"))]
        used = sorted(i for i in named if i is not None)
        if used != list(range(len(fds))):
            raise ExportError(f"{len(fds)} descriptors given; the export names indices {used}")
        options = ConsoleOptions(**data["options"])
        ring = b""
        if data["ring"] is not None:
            ring = _read_all(fds[data["ring"]])
        logfile = None
        if options.logfile:
            at = data["logfile"]
            logfile = LogFile(options.logfile, options.log_limit, options.rotate, fds[at] if at is not None else -1)
        mirror = fds[data["mirror"]] if data["mirror"] is not None else -1
        listener = _nonblocking(fds[data["listener"]], sockets)
        server = cls(options, log, fds[data["dir"]], listener, logfile, mirror)
        if server.ring is not None:
            server.ring.write(ring)
        for entry in ttys:
            tty = Tty(int(entry["number"]), fds[entry["master"]], fds[entry["peer"]])
            if entry["holder"] is not None:
                tty.holder = socket.socket(fileno=fds[entry["holder"]])
                sockets.append(tty.holder)
            if entry["stream"] is not None:
                tty.stream = _nonblocking(fds[entry["stream"]], sockets)
            server.ttys[tty.number] = tty
        log.debug("console restored", ttys=sorted(server.ttys))
        return server

    # --- end ------------------------------------------------------------------------------------

    def forget(self) -> None:
        """Close this process's descriptors of the console, not the console: after :meth:`export`,
        once the other process holds them. The socket file stays, served by the other process."""
        self._shut(unlink=False)

    def close(self) -> None:
        """End the console: every descriptor closed, the socket file unlinked (not after :meth:`forget`)."""
        self._shut(unlink=True)

    def _shut(self, unlink: bool) -> None:
        if self._closed:
            return  # forget() then close() (the start's undo) must not unlink the new holder's socket
        self._closed = True
        for tty in self.ttys.values():
            self._release(tty)
            os.close(tty.master)
            os.close(tty.peer)
        self.ttys.clear()
        if self.child_link is not None:
            self.child_link.close()
            self.child_link = None
        self.listener.close()
        if unlink:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(SOCKET_NAME, dir_fd=self.dir_fd)
        os.close(self.dir_fd)
        if self.logfile is not None:
            self.logfile.close()
            self.logfile = None
        if self.mirror >= 0:
            os.close(self.mirror)
            self.mirror = -1
        for fd in self._export_fds:
            os.close(fd)
        self._export_fds.clear()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_all(fd: int) -> bytes:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, _READ, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _nonblocking(fd: int, made: list[socket.socket]) -> socket.socket:
    # A socket made from a descriptor takes the default timeout, whatever the descriptor's flags say.
    sock = socket.socket(fileno=fd)
    made.append(sock)
    sock.setblocking(False)
    return sock
