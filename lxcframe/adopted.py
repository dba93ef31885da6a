"""The server's side of adoption: it is the parent and the monitor of every container it started.

A start worker (:mod:`lxcframe.adoption`) forks init as the server's child and gives the running
container to the server, which from then on holds the container's locks, its console (a core
:class:`lxcframe.console_service.ConsoleServer`, served from the server's one poll loop) and the
descriptors plugins keep for the end. No plugin code runs here: when init exits, the server reaps it
and forks a worker from its warm state to end the container (:mod:`lxcframe.after_stop`).

What outlives the server is on disk: ``<run root>/adopted/<key>.json`` names each adopted container,
and its runtime directory holds ``start.json`` (the start request as the server received it) and
``state.json``. A server started after one that died (SIGKILL, a crash) adopts those containers
again: a live init is proven by its pid namespace and start time (as after a dead monitor) and
watched through a pidfd; one that died meanwhile is ended at once. A re-adopted container has no
console (the pty masters died with the server that held them), and its init is no longer the
server's child: its exit status is unknown.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import select
import signal
import sys
from collections.abc import Callable
from typing import Any

import attrs

from lxcframe import process_proof, syscalls
from lxcframe import state as st
from lxcframe.channel import Channel
from lxcframe.hashing import sha256
from lxcframe.log import get_logger
from lxcframe.spawning import MONITOR_UMASK, fork_worker

#: Most descriptors one hand-over carries (a console with lxc.tty.max ttys has two per tty).
MAX_HANDED_FDS = 250

Callback = Callable[[], None]


def registry_dir() -> str:
    return os.path.join(st.run_root(), "adopted")


def _registry_path(lxcpath: str, name: str) -> str:
    key = sha256(f"{os.path.abspath(lxcpath)}\0{name}".encode()).hexdigest()[:32]
    return os.path.join(registry_dir(), f"{key}.json")


@attrs.define
class Adopted:
    """One container the server monitors."""

    name: str
    lxcpath: str
    init_pid: int
    #: The server's child whose end is the container's: init, or with a user namespace init's parent
    #: (which ends as init did); ``init_pidfd`` is its pidfd, None once it exited.
    child_pid: int
    init_pidfd: int | None
    locks: list[int]
    document: Any  # the start request as received (``start.json``)
    request: Any
    plugins: Any
    kept: dict[str, int] = attrs.field(factory=dict)
    console: Any = None
    #: False until the start worker handed over (or left): the end waits for both.
    handed_over: bool = False
    exited: bool = False
    status: int | None = None
    #: Adopted again by a later server: not our child.
    reparented: bool = False


@attrs.define
class _Starting:
    """A start worker's link, and the inits it said it forked (pid -> pidfd)."""

    worker_pid: int
    channel: Channel
    document: Any
    request: Any
    plugins: Any
    inits: dict[int, int] = attrs.field(factory=dict)
    statuses: dict[int, int] = attrs.field(factory=dict)
    adopted: Adopted | None = None


class Adoptions:
    """Every container this server adopted, the start workers that will hand one over, and the
    workers ending them; :meth:`watched` gives the poll loop their descriptors."""

    def __init__(self, close_server: Callable[[], None], plugins_for: Callable[..., Any],
                 restart: Callable[[Adopted], None] | None = None) -> None:
        self.close_server = close_server
        self.plugins_for = plugins_for
        #: Starts a container again from its start request, once the worker ending it left (a reboot).
        self.restart = restart
        self.starting: dict[int, _Starting] = {}  # link fd ->
        self.adopted: dict[tuple[str, str], Adopted] = {}
        self.enders: dict[int, tuple[int, Adopted]] = {}  # pidfd -> (pid, what it ends)
        self.log = get_logger("server")

    def active(self) -> bool:
        return bool(self.starting or self.adopted or self.enders)

    # -- the start worker's link --

    def link_start(self, worker_pid: int, channel: Channel, document: Any, request: Any, plugins: Any) -> None:
        self.starting[channel.fileno()] = _Starting(worker_pid, channel, document, request, plugins)

    def watched(self) -> dict[int, Callback]:
        watched: dict[int, Callback] = {}
        for fd, starting in self.starting.items():
            watched[fd] = functools.partial(self._on_link, starting)
            for pid, pidfd in starting.inits.items():
                watched[pidfd] = functools.partial(self._on_init_during_start, starting, pid)
        for adopted in self.adopted.values():
            if adopted.init_pidfd is not None:
                watched[adopted.init_pidfd] = functools.partial(self._on_init_exit, adopted)
            if adopted.console is not None:
                for fd, callback in adopted.console.watch():
                    watched[fd] = self._guarded(adopted, callback)
        for pidfd in self.enders:
            watched[pidfd] = functools.partial(self._on_ender_exit, pidfd)
        return watched

    def _guarded(self, adopted: Adopted, callback: Callback) -> Callback:
        def run() -> None:
            try:
                callback()
            except Exception as err:  # one console's trouble must not end the server
                self.log.error("console", container=adopted.name, error=str(err))
        return run

    def _on_link(self, starting: _Starting) -> None:
        try:
            record = starting.channel.recv(timeout=0, max_fds=MAX_HANDED_FDS)
        except (BlockingIOError, TimeoutError):
            return
        except (OSError, ValueError):
            record = None
        if record is None:  # the worker left
            self._worker_left(starting)
            return
        fds = record.pop("_fds", {})
        kind = record.get("t")
        try:
            if kind == "born":
                self._born(starting, int(record["pid"]))
            elif kind == "adopt":
                self._adopt(starting, record, [fds.pop(f"lock{i}") for i in range(len(fds)) if f"lock{i}" in fds])
                starting.channel.send({"t": "adopted"})
            elif kind == "hand-over" and starting.adopted is not None:
                self._hand_over(starting.adopted, record, fds)
                fds = {}
                starting.channel.send({"t": "handed-over"})
            else:
                starting.channel.send({"t": "refused", "why": f"unexpected {kind!r}"})
        except Exception as err:
            with contextlib.suppress(OSError):
                starting.channel.send({"t": "refused", "why": str(err)})
        finally:
            for fd in fds.values():
                os.close(fd)

    def _born(self, starting: _Starting, pid: int) -> None:
        # Our own child (the worker forked it as such), not reaped yet: the pid names nobody else.
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        starting.inits[pid] = syscalls.pidfd_open(pid)

    def _on_init_during_start(self, starting: _Starting, pid: int) -> None:
        pidfd = starting.inits.pop(pid)
        os.close(pidfd)
        status = _reap(pid)
        if status is not None:
            starting.statuses[pid] = status
            with contextlib.suppress(OSError):
                starting.channel.send({"t": "exited", "pid": pid, "status": status})

    def _adopt(self, starting: _Starting, record: dict[str, Any], locks: list[int]) -> None:
        name, lxcpath = str(record["name"]), str(record["lxcpath"])
        child, init_pid = int(record["child"]), int(record["init"])
        if (lxcpath, name) in self.adopted:
            raise ValueError(f"{name}: already adopted")
        if child not in starting.inits and child not in starting.statuses:
            raise ValueError(f"{name}: pid {child} is not a child the worker forked")
        adopted = Adopted(name, lxcpath, init_pid, child, starting.inits.pop(child, None), locks,
                          starting.document, starting.request, starting.plugins)
        if adopted.init_pidfd is None:
            adopted.exited, adopted.status = True, starting.statuses.get(child)
        st.write_private_file(st.runtime_dir(lxcpath, name), st.START_FILE, json.dumps(starting.document).encode())
        entry = _registry_path(lxcpath, name)  # its directory made private by write_private_file
        st.write_private_file(os.path.dirname(entry), os.path.basename(entry),
                              json.dumps({"lxcpath": lxcpath, "name": name}).encode())
        starting.adopted = adopted
        self.adopted[(lxcpath, name)] = adopted

    def _hand_over(self, adopted: Adopted, record: dict[str, Any], fds: dict[str, int]) -> None:
        for name in record.get("kept", []):
            adopted.kept[str(name)] = fds.pop(f"kept:{name}")
        if "console" in record:
            from lxcframe.console_service import ConsoleServer

            console_fds = [fds.pop(f"console:{index}") for index in range(len(fds)) if f"console:{index}" in fds]
            log = self.log.bind(container=adopted.name)
            adopted.console = ConsoleServer.restore(record["console"], console_fds, log)
        adopted.handed_over = True
        if adopted.exited:
            self._end(adopted)

    def _worker_left(self, starting: _Starting) -> None:
        del self.starting[starting.channel.fileno()]
        starting.channel.close()
        if starting.adopted is not None and not starting.adopted.handed_over:
            starting.adopted.handed_over = True  # with nothing: it died between the two messages
            if starting.adopted.exited:
                self._end(starting.adopted)
        for pid, pidfd in starting.inits.items():
            # Killed by the worker as its start failed, or about to die without it: reaped here.
            select.select([pidfd], [], [], 5.0)
            os.close(pidfd)
            _reap(pid)

    # -- adopted containers --

    def _on_init_exit(self, adopted: Adopted) -> None:
        assert adopted.init_pidfd is not None
        os.close(adopted.init_pidfd)
        adopted.init_pidfd = None
        adopted.exited = True
        adopted.status = None if adopted.reparented else _reap(adopted.child_pid)
        if adopted.handed_over:
            self._end(adopted)

    def _end(self, adopted: Adopted) -> None:
        """Fork the worker that ends the container; it holds the locks from now on."""
        if adopted.console is not None:
            with contextlib.suppress(Exception):
                adopted.console.drain()
            adopted.console.close()
            adopted.console = None
        restarting = self.restart is not None and rebooted(adopted.status)

        def in_worker() -> int:
            self._close_in_child(keep=adopted)
            return _end_in_worker(adopted, restarting)

        pid = fork_worker(in_worker)
        # The monitor lock stays held here too until the worker is done: the state names this server as
        # the monitor until the worker records itself. The key lock is the worker's alone: it lets go of
        # it with the runtime directory, and a start right after the stop must find it free.
        for fd in [*adopted.kept.values(), *adopted.locks[1:]]:
            os.close(fd)
        adopted.kept, adopted.locks = {}, adopted.locks[:1]
        del self.adopted[(adopted.lxcpath, adopted.name)]
        self.enders[syscalls.pidfd_open(pid)] = (pid, adopted)

    def _on_ender_exit(self, pidfd: int) -> None:
        pid, adopted = self.enders.pop(pidfd)
        os.close(pidfd)
        _reap(pid)
        for fd in adopted.locks:
            os.close(fd)
        adopted.locks = []
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_registry_path(adopted.lxcpath, adopted.name))
        if self.restart is not None and rebooted(adopted.status):
            self.log.info("container rebooted: starting it again", container=adopted.name)
            try:
                self.restart(adopted)
            except Exception as err:
                self.log.error("starting a rebooted container again failed", container=adopted.name, error=str(err))

    # -- a forked process keeps nothing of this --

    def close_all(self) -> None:
        """In a process the server forked: close every descriptor of the adoptions."""
        self._close_in_child(keep=None)

    def _close_in_child(self, keep: Adopted | None) -> None:
        if keep is not None:
            self.close_server()
        for starting in self.starting.values():
            starting.channel.close()
            for pidfd in starting.inits.values():
                os.close(pidfd)
        for adopted in self.adopted.values():
            if adopted is keep:
                continue
            for fd in [*adopted.locks, *adopted.kept.values()]:
                os.close(fd)
            if adopted.init_pidfd is not None:
                os.close(adopted.init_pidfd)
            if adopted.console is not None:
                adopted.console.forget()
        for pidfd, (_, ended) in self.enders.items():
            os.close(pidfd)
            if ended is not keep:
                for fd in ended.locks:
                    os.close(fd)

    # -- after a server died --

    def adopt_again(self) -> None:
        """Adopt the containers a server before this one adopted, or end those whose init died."""
        try:
            entries = sorted(os.listdir(registry_dir()))
        except FileNotFoundError:
            return
        for entry in entries:
            path = os.path.join(registry_dir(), entry)
            try:
                with open(path, encoding="utf-8") as handle:
                    named = json.load(handle)
                lxcpath, name = str(named["lxcpath"]), str(named["name"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if (lxcpath, name) in self.adopted:
                continue
            try:
                self._adopt_again(lxcpath, name, path)
            except Exception as err:  # one container's trouble must not keep the server from serving
                self.log.error("adopting a running container again failed", container=name, error=str(err))

    def _adopt_again(self, lxcpath: str, name: str, registry_path: str) -> None:
        lock = _try_lock(os.path.join(st.runtime_dir(lxcpath, name), "monitor.lock"))
        if lock is None:
            return  # held: its end is under way (or another server has it)
        recorded = st.read_state(lxcpath, name)
        document = _read_start(lxcpath, name)
        if recorded is None or document is None:
            os.close(lock)
            os.unlink(registry_path)  # nothing left to end here; a stale state is the next command's
            return
        from lxcframe import start_request

        request, plugins = start_request.decode(document, self.plugins_for)
        pidfd = process_proof.open_init(recorded.init_pid, recorded.init_start, None, recorded.init_pidns)
        init_pid = recorded.init_pid or 0
        adopted = Adopted(name, lxcpath, init_pid, init_pid, pidfd, [lock], document, request, plugins,
                          handed_over=True, reparented=True)
        self.adopted[(lxcpath, name)] = adopted
        if pidfd is None:
            adopted.exited = True
            self.log.warning("ending a container whose init died with no server", container=name)
            self._end(adopted)
            return
        own = os.getpid()
        st.write_state(attrs.evolve(recorded, monitor_pid=own, monitor_start=st.process_start_time(own),
                                    adopted=True))
        self.log.info("adopted a running container again", container=name, init_pid=recorded.init_pid)


def _end_in_worker(adopted: Adopted, restarting: bool) -> int:
    from lxcframe import after_stop, entering

    request = adopted.request
    os.environ.clear()
    os.environ.update(dict(request.env))
    request.log.apply()
    os.umask(MONITOR_UMASK)
    os.setsid()
    os.chdir("/")
    entering.default_signals()
    syscalls.set_process_name(f"lxcf-end:{adopted.name}")
    if len(adopted.locks) > 1:
        st.adopt_key_lock(adopted.lxcpath, adopted.name, adopted.locks[1])
    sys.stdout.flush()
    return after_stop.end_container(request, adopted.plugins, adopted.status, dict(adopted.kept), restarting)


def rebooted(status: int | None) -> bool:
    """Whether init ended as a reboot inside its pid namespace ends it: killed by SIGHUP (reboot(2)
    there; SIGINT is a halt), which LXC's monitor answers by starting the container again."""
    return status is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGHUP


def _reap(pid: int) -> int | None:
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return status if done else None


def _try_lock(path: str) -> int | None:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _read_start(lxcpath: str, name: str) -> Any:
    data = st.read_private_file(os.path.join(st.runtime_dir(lxcpath, name), st.START_FILE), name, "start request")
    return None if data is None else json.loads(data)


__all__ = ["Adopted", "Adoptions", "rebooted"]
