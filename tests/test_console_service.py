"""The console server moved to another process: export here, restore there, served as before.

No container: pty pairs from ``os.openpty`` stand in for the masters the child sends, the slaves kept
here stand in for the container's side. The server is built and collected as the console plugin does,
exported, and its data and descriptors cross a real socket (SCM_RIGHTS) to a fresh interpreter
(``tests/console_peer.py``) that restores and serves it; everything is then checked from outside,
through the console socket with the plugin's own client.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lxcframe import state as st
from lxcframe.channel import Channel
from lxcframe.console_service import SOCKET_NAME, ConsoleOptions, ConsoleServer, ExportError
from lxcframe.errors import ContainerError
from lxcframe.log import get_logger
from lxcframe.plugins.console.client import connect, open_tty, read_log

from .console_peer import send_export

NAME = "moved"
ROOT = Path(__file__).resolve().parent.parent
LOG = get_logger("console-test")


@pytest.fixture
def runtime(lxcpath: str) -> Iterator[str]:
    """The container's runtime directory, where the console socket lives."""
    path = st.runtime_dir(lxcpath, NAME)
    os.makedirs(path)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def opened() -> Iterator[list[object]]:
    """What a test opens here (servers, peers, descriptors), closed at its end whatever happened."""
    things: list[object] = []
    yield things
    for thing in reversed(things):
        if isinstance(thing, int):
            os.close(thing)
        else:
            thing.close()  # type: ignore[attr-defined]


def console(runtime: str, options: ConsoleOptions, ttys: int, opened: list[object]) -> tuple[ConsoleServer, list[int]]:
    """A server that collected ``ttys`` ptys (0: the console) as from the child; their slaves, raw."""
    server = ConsoleServer.open(options, runtime, LOG)
    opened.append(server)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.child_link = ours
    link = Channel(theirs)
    slaves = []
    for number in range(ttys):
        master, slave = os.openpty()
        tty.setraw(slave)  # bytes as written: no \r added to a \n
        opened.append(slave)
        slaves.append(slave)
        link.send({"tty": number, "pts": number}, {"master": master, "peer": slave})
        os.close(master)
    link.close()
    server.collect()
    return server, slaves


def serve_here(server: ConsoleServer, done: Callable[[], bool], timeout: float = 5.0) -> None:
    """Run ``server``'s poll loop in this process until ``done()``."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the server here did not get there"
        watched = dict(server.watch())
        ready, _, _ = select.select(list(watched), [], [], 0.05)
        if ready:
            watched[ready[0]]()


def held(server: ConsoleServer, number: int) -> Callable[[], bool]:
    return lambda: server.ttys[number].holder is not None


def read_exactly(fd: int, expected: bytes, timeout: float = 5.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while len(seen) < len(expected) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            seen += os.read(fd, 4096)
    return seen


def eventually(read: Callable[[], object], expected: object, timeout: float = 5.0) -> object:
    """``read()`` once it returns ``expected``, or its last answer after ``timeout``. A file that is not
    there (a log file between its rotation and its next write) reads as None meanwhile."""
    deadline = time.monotonic() + timeout
    while (seen := _or_none(read)) != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return seen


def _or_none(read: Callable[[], object]) -> object:
    try:
        return read()
    except FileNotFoundError:
        return None


class Peer:
    """The other process, with the server handed over to it: exported, sent, restored there, forgotten here."""

    def __init__(self, server: ConsoleServer) -> None:
        self.link, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.process = subprocess.Popen([sys.executable, "-m", "tests.console_peer", str(theirs.fileno())],
                                        pass_fds=[theirs.fileno()], cwd=ROOT, stderr=subprocess.PIPE)
        theirs.close()
        data, fds = server.export()
        send_export(self.link, data, fds)
        self.link.settimeout(30)
        reply = self.link.recv(65536)
        assert reply, f"the peer did not restore the console: {self._stderr()}"
        self.ttys = json.loads(reply)["ttys"]
        server.forget()

    def _stderr(self) -> str:
        self.link.close()
        self.process.wait(timeout=30)
        assert self.process.stderr is not None
        return self.process.stderr.read().decode()

    def close(self) -> None:
        """Ask the peer to close the console; it exits 0 once it did."""
        if self.process.poll() is None:
            try:
                self.link.send(b"close")
                assert json.loads(self.link.recv(64)) == {"closed": True}
            finally:
                assert self.process.wait(timeout=30) == 0, self._stderr()
                self.link.close()
                assert self.process.stderr is not None
                self.process.stderr.close()


def test_the_ring_holds_output_from_before_and_after_the_move(runtime: str, lxcpath: str, opened: list[object]) -> None:
    server, (slave,) = console(runtime, ConsoleOptions(buffer_size=4096), 1, opened)
    os.write(slave, b"before\n")
    serve_here(server, lambda: server.ring is not None and server.ring.data == b"before\n")
    os.write(slave, b"unread\n")  # still in the pty when the server moves
    peer = Peer(server)
    opened.append(peer)
    assert peer.ttys == [0]
    os.write(slave, b"after\n")
    assert eventually(lambda: read_log(lxcpath, NAME, clear=False), "before\nunread\nafter\n") == \
        "before\nunread\nafter\n"
    # Cleared there, as the original clears.
    assert read_log(lxcpath, NAME, clear=True) == "before\nunread\nafter\n"
    assert read_log(lxcpath, NAME, clear=False) == ""


def test_ttys_are_taken_through_the_socket_after_the_move(runtime: str, lxcpath: str, opened: list[object]) -> None:
    server, (console_slave, tty1_slave) = console(runtime, ConsoleOptions(buffer_size=4096), 2, opened)
    peer = Peer(server)
    opened.append(peer)
    assert peer.ttys == [0, 1]
    holder, fd, number = open_tty(lxcpath, NAME, -1)  # the first free tty
    opened.extend([holder, fd])
    assert number == 1
    os.write(fd, b"typed\n")
    assert read_exactly(tty1_slave, b"typed\n") == b"typed\n"
    os.write(tty1_slave, b"shown\n")
    assert read_exactly(fd, b"shown\n") == b"shown\n"
    with pytest.raises(ContainerError, match=r"^tty 1 is in use$"):
        open_tty(lxcpath, NAME, 1)
    # The console: a stream fed by the server, which also keeps the output in the ring.
    stream_holder, stream, number = open_tty(lxcpath, NAME, 0)
    opened.extend([stream_holder, stream])
    assert number == 0
    os.write(console_slave, b"out\n")
    assert read_exactly(stream, b"out\n") == b"out\n"
    os.write(stream, b"in\n")
    assert read_exactly(console_slave, b"in\n") == b"in\n"
    assert read_log(lxcpath, NAME, clear=False) == "out\n"


def test_a_held_tty_and_the_console_stream_move_with_their_clients(runtime: str, lxcpath: str,
                                                                   opened: list[object]) -> None:
    server, (console_slave, tty1_slave) = console(runtime, ConsoleOptions(buffer_size=4096), 2, opened)
    clients = {}
    for number in (0, 1):
        channel = connect(lxcpath, NAME)
        opened.append(channel)
        channel.send({"op": "tty", "tty": number})
        serve_here(server, held(server, number))
        reply = channel.recv(timeout=5)
        assert reply is not None and reply["ok"] and reply["tty"] == number
        clients[number] = (channel, reply["_fds"]["tty"])
        opened.append(reply["_fds"]["tty"])
    peer = Peer(server)
    opened.append(peer)
    _, stream = clients[0]
    os.write(console_slave, b"still streamed\n")
    assert read_exactly(stream, b"still streamed\n") == b"still streamed\n"
    with pytest.raises(ContainerError, match=r"^tty 1 is in use$"):
        open_tty(lxcpath, NAME, 1)
    channel, _master = clients[1]
    channel.close()  # its holder went: the server there frees tty 1

    deadline = time.monotonic() + 5
    while True:
        try:
            holder, again, _number = open_tty(lxcpath, NAME, 1)
            break
        except ContainerError as err:
            assert str(err) == "tty 1 is in use" and time.monotonic() < deadline, err
            time.sleep(0.02)
    opened.extend([holder, again])
    os.write(again, b"free again\n")
    assert read_exactly(tty1_slave, b"free again\n") == b"free again\n"


def test_the_log_file_and_the_mirror_go_on_after_the_move(runtime: str, lxcpath: str, tmp_path: Path,
                                                          opened: list[object]) -> None:
    mirror_master, mirror_slave = os.openpty()
    opened.extend([mirror_master, mirror_slave])
    tty.setraw(mirror_slave)
    logfile = tmp_path / "console.log"
    options = ConsoleOptions(logfile=str(logfile), log_limit=8, rotate=True, mirror=os.ttyname(mirror_slave))
    server, (slave,) = console(runtime, options, 1, opened)
    os.write(slave, b"one\n")
    serve_here(server, lambda: logfile.read_bytes() == b"one\n")
    opened.append(Peer(server))
    os.write(slave, b"two\n")
    assert eventually(logfile.read_bytes, b"one\ntwo\n") == b"one\ntwo\n"
    os.write(slave, b"three\n")  # over the 8-byte limit: rotated to .1, as configured
    rotated = tmp_path / "console.log.1"
    assert eventually(lambda: rotated.exists() and rotated.read_bytes(), b"one\ntwo\n") == b"one\ntwo\n"
    assert eventually(logfile.read_bytes, b"three\n") == b"three\n"  # made anew, then written
    assert read_exactly(mirror_master, b"one\ntwo\nthree\n") == b"one\ntwo\nthree\n"
    os.write(mirror_master, b"from the mirror\n")
    assert read_exactly(slave, b"from the mirror\n") == b"from the mirror\n"
    with pytest.raises(ContainerError, match=r"^no console ring buffer \(set lxc.console.buffer.size\)$"):
        read_log(lxcpath, NAME, clear=False)


def test_close_there_removes_the_socket_and_forget_here_does_not(runtime: str, lxcpath: str,
                                                                 opened: list[object]) -> None:
    server, (slave,) = console(runtime, ConsoleOptions(buffer_size=4096), 1, opened)
    peer = Peer(server)  # forget() done here
    opened.append(peer)
    sock_path = os.path.join(runtime, SOCKET_NAME)
    assert os.path.exists(sock_path)
    server.close()  # after forget(): nothing more (the start's undo may still call it)
    assert os.path.exists(sock_path)
    os.write(slave, b"served\n")
    assert eventually(lambda: read_log(lxcpath, NAME, clear=False), "served\n") == "served\n"
    peer.close()
    assert not os.path.exists(sock_path)
    with pytest.raises(ContainerError, match=r"has no console"):
        read_log(lxcpath, NAME, clear=False)


def test_export_is_refused_before_collect_and_after_forget(runtime: str, opened: list[object]) -> None:
    server = ConsoleServer.open(ConsoleOptions(buffer_size=4096), runtime, LOG)
    opened.append(server)
    server.child_link, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with pytest.raises(ExportError, match=r"^the child's pty masters were not collected yet \(collect\(\) first\)$"):
        server.export()
    theirs.close()
    server.collect()
    data, fds = server.export()
    assert data["ttys"] == [] and len(fds) == 3  # the directory, the listener, the ring's memfd
    server.forget()
    with pytest.raises(ExportError, match=r"^the console server is closed or was handed over already$"):
        server.export()
    os.unlink(os.path.join(runtime, SOCKET_NAME))  # forget() left it to a restored server


def _closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


def test_restore_refuses_what_is_no_export_and_closes_what_it_got(runtime: str, opened: list[object]) -> None:
    server, _slaves = console(runtime, ConsoleOptions(buffer_size=4096), 1, opened)
    data, fds = server.export()
    assert len(fds) == 5  # the directory, the listener, the ring's memfd, the console's master and peer
    copies = [os.dup(fd) for fd in fds]
    with pytest.raises(ExportError, match=r"^not an exported console of format 1: format 2$"):
        ConsoleServer.restore({**data, "format": 2}, copies, LOG)
    assert all(_closed(fd) for fd in copies)
    copies = [os.dup(fd) for fd in fds[:-1]]
    with pytest.raises(ExportError, match=r"^4 descriptors given; the export names indices \[0, 1, 2, 3, 4\]$"):
        ConsoleServer.restore(data, copies, LOG)
    assert all(_closed(fd) for fd in copies)
    # The exporter still serves: a failed restore leaves it the socket file.
    assert os.path.exists(os.path.join(runtime, SOCKET_NAME))
