"""The warm server under load and failure: two installations of lxcframe sharing one run directory, clients
that die in the middle of a request, and one process whose eight threads start, attach to and stop 160
containers through the server.

What the server did is read from the kernel (who is whose parent, which cgroups exist, which processes
live), and which code ran a start or an attach from a plugin that notes it (``server_fixtures``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from lxcframe import state as st
from lxcframe.container import Container
from lxcframe.version import __version__

from .conftest import _netns_ids
from .server_fixtures import (
    REPO,
    Installation,
    alive,
    cgroup_dirs,
    children,
    client_env,
    copy_of_the_checkout,
    descendants,
    ended_processes_of,
    install_marker_plugin,
    installation_of,
    living,
    netns_id_of,
    parent_of,
    processes_of_run_directory,
    read_notes,
    running_server,
    runtime_env,
    server_pid,
    socket_path,
    wait_until,
)

# Serial: it times the server's answers and counts its memory, which a second shard's load skews.
pytestmark = [pytest.mark.container, pytest.mark.serial]

#: What every container of these tests is: busybox with no network device, its cgroups below the test's.
CONFIG = (("lxc.net.0.type", "empty"), ("lxc.cgroup.relative", "1"))
#: Seconds a server started by a test stays once idle: long enough to bridge the gaps between commands.
SERVER_IDLE = "3"
COPY_VERSION = f"{__version__}+copy"


@attrs.frozen
class Started:
    """A running container as the kernel shows it: its init, the cgroups init is in, and its monitor."""

    name: str
    lxcpath: str
    init: int
    cgroups: tuple[str, ...]
    #: The container's own monitor process; ``None`` when the server itself is its monitor (it adopted
    #: the container), whose end is checked apart.
    monitor: int | None

    @classmethod
    def of(cls, container: Container, server: int) -> Started:
        state = container.current_state()
        assert state is not None and state.state == "RUNNING", f"{container.name}: {state}"
        assert state.monitor_pid is not None and state.init_pid is not None
        return cls(container.name, container.lxcpath, state.init_pid, tuple(cgroup_dirs(state.init_pid)),
                   None if state.monitor_pid == server else state.monitor_pid)

    def leftovers(self) -> list[str]:
        """What of this container is still there: its processes, its runtime directory, its cgroups."""
        found = [f"{what} {pid}" for what, pid in (("monitor", self.monitor), ("init", self.init))
                 if pid is not None and alive(pid)]
        runtime = st.runtime_dir(self.lxcpath, self.name)
        if os.path.exists(runtime):
            found.append(f"runtime directory {runtime}: {sorted(os.listdir(runtime))}")
        found += [f"cgroup {path}" for path in self.cgroups if os.path.exists(path)]
        return found

    def gone(self) -> bool:
        return not self.leftovers()


@contextlib.contextmanager
def destroyed_at_the_end(lxcpath: str, names: list[str]) -> Iterator[None]:
    """Whatever happens in the block, every container named in ``names`` (read at the end) is killed and
    destroyed after it."""
    try:
        yield
    finally:
        for name in names:
            container = Container(name, lxcpath)
            if container.defined:
                try:
                    container.destroy(force=True)
                except Exception as err:  # the others must still go; the host check reports what stayed
                    print(f"teardown of {name}: {err}", file=sys.stderr)


def create(lxcpath: str, name: str, plugins: object = None) -> Container:
    container = Container(name, lxcpath, plugins=plugins)
    container.create("busybox", config=CONFIG)
    return container


# --- two installations, one run directory ------------------------------------------------------------------


@pytest.mark.parametrize("serving", ["checkout", "copy"])
def test_two_installations_share_a_run_directory_and_each_runs_only_its_own_code(serving, lxcpath, rundir, host,
                                                                                 tmp_path):
    notes = tmp_path / "notes.jsonl"
    site = tmp_path / "site"
    install_marker_plugin(site, notes)
    copy_root = copy_of_the_checkout(tmp_path / "copy", COPY_VERSION)
    installations = [
        Installation("checkout", REPO, __version__, client_env(REPO, site, idle=float(SERVER_IDLE))),
        Installation("copy", copy_root, COPY_VERSION, client_env(copy_root, site, idle=float(SERVER_IDLE))),
    ]
    # The serving installation's server first, then its commands: the other's find it and must not use it.
    installations.sort(key=lambda inst: inst.label != serving)
    server_of = installations[0]
    names = [f"{kind}-{inst.label}" for inst in installations for kind in ("daemon", "once")]
    started: dict[str, Started] = {}
    with destroyed_at_the_end(lxcpath, names):
        for name in names:  # in this process: a command finding no server would start one of its own
            create(lxcpath, name)
        # The containers go before the server is waited for: it stays while one runs.
        with running_server({**server_of.server_env, "LXCFRAME_SUPERVISOR_IDLE": SERVER_IDLE}) as server, \
                destroyed_at_the_end(lxcpath, names):
            client_pids: dict[tuple[str, str], int] = {}
            for inst in installations:
                daemon = f"daemon-{inst.label}"
                pid, done = inst.cli("-P", lxcpath, "start", daemon, cwd=tmp_path)
                assert (done.returncode, done.stderr) == (0, ""), done
                started[daemon] = Started.of(Container(daemon, lxcpath), server)
            for inst in installations:
                daemon, once = f"daemon-{inst.label}", f"once-{inst.label}"
                pid, done = inst.cli("-P", lxcpath, "execute", once, "--", "/bin/sh", "-c",
                                     'echo "in $(hostname)"; exit 4', cwd=tmp_path)
                assert (done.returncode, done.stdout) == (4, f"in {once}\n"), done
                client_pids[("pre_start", once)] = pid
                pid, done = inst.cli("-P", lxcpath, "attach", daemon, "--", "/bin/sh", "-c",
                                     'echo "in $(hostname)"; exit 3', cwd=tmp_path)
                assert (done.returncode, done.stdout) == (3, f"in {daemon}\n"), done
                client_pids[("attach", daemon)] = pid
                # Each sees the other's containers in the shared lxcpath, and their states.
                _, done = inst.cli("-P", lxcpath, "ls", "--fancy", "--format", "json", cwd=tmp_path)
                assert done.returncode == 0, done.stderr
                assert {row["name"]: row["state"] for row in json.loads(done.stdout)} == {
                    name: "RUNNING" if name.startswith("daemon-") else "STOPPED" for name in names}
                # The code that ran the command tells its version: each installation's own.
                _, done = inst.cli("-P", lxcpath, "plugins", "--format", "json", cwd=tmp_path)
                assert done.returncode == 0, done.stderr
                records = json.loads(done.stdout)
                assert {r["version"] for r in records if r["builtin"]} == {inst.version}
                assert [r["state"] for r in records if r["name"] == "installation-marker"] == ["enabled"]

            by_what = {(note.hook, note.name): note for note in read_notes(notes)}
            assert len(by_what) == len(read_notes(notes)) == 6, read_notes(notes)
            for inst in installations:
                daemon, once = f"daemon-{inst.label}", f"once-{inst.label}"
                for key in (("pre_start", daemon), ("pre_start", once), ("attach", daemon)):
                    note = by_what[key]
                    assert (note.package, note.version) == (inst.package, inst.version), note
                    if inst is server_of:
                        # Served: a worker or monitor forked by the server ran it, not the client.
                        assert note.ppid == server and note.pid != client_pids.get(key), note
                    elif key[0] == "pre_start" and key[1] == daemon:
                        # Refused: the client forked the daemon's monitor itself (detached).
                        assert note.ppid != server and note.pid not in children(server), note
                    else:
                        # Refused: the client ran the command in its own process.
                        assert note.pid == client_pids[key], note
                # Its monitor: the process that ran its start, or the server that adopted the container.
                monitor = started[daemon].monitor
                if inst is server_of:
                    assert monitor in (None, by_what[("pre_start", daemon)].pid)
                else:
                    assert monitor == by_what[("pre_start", daemon)].pid
            # No process the server forked ever ran the other installation's code.
            assert {note.package for note in read_notes(notes) if note.ppid == server} == {server_of.package}

            for inst in installations:
                daemon, once = f"daemon-{inst.label}", f"once-{inst.label}"
                _, done = inst.cli("-P", lxcpath, "stop", daemon, cwd=tmp_path)
                assert (done.returncode, done.stderr) == (0, ""), done
                wait_until(started[daemon].gone, 30, f"{daemon} cleaned after its stop",
                           found=started[daemon].leftovers)
                for name in (daemon, once):
                    _, done = inst.cli("-P", lxcpath, "destroy", name, cwd=tmp_path)
                    assert (done.returncode, done.stderr) == (0, ""), done
        # The server has left (running_server waited for it): nothing of either installation runs.
        assert not os.path.exists(socket_path())
        assert processes_of_run_directory(rundir) == {}
        for name in names:
            assert not os.path.exists(st.runtime_dir(lxcpath, name))


# --- clients that die mid-request ---------------------------------------------------------------------------

#: A command that says when it runs and, given SIGTERM, writes so before it ends (inside the rootfs).
TERM_NOTING = 'trap "echo TERM > /got-term; exit 0" TERM; echo running > /running; sleep 60 & wait'

#: A command line client that reports whether the server took its command (status 99 when not).
SERVED_CLIENT = ("import sys; from lxcframe import thin_client; "
                 "code = thin_client.run(sys.argv[1:]); sys.exit(99 if code is None else code)")


def served(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SERVED_CLIENT, *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)


def test_a_client_killed_during_execute_ends_its_worker_and_leaves_nothing_of_the_container(lxcpath, rundir,
                                                                                            host, tmp_path):
    env = client_env(REPO, None, idle=float(SERVER_IDLE))
    name = "killed-execute"
    rootfs = Path(lxcpath, name, "rootfs")
    with destroyed_at_the_end(lxcpath, [name]):
        container = create(lxcpath, name)
        with running_server({**runtime_env(str(REPO)), "LXCFRAME_SUPERVISOR_IDLE": SERVER_IDLE}) as server, \
                destroyed_at_the_end(lxcpath, [name]):
            client = subprocess.Popen([sys.executable, "-c", SERVED_CLIENT, "-P", lxcpath, "execute", name, "--",
                                       "/bin/sh", "-c", TERM_NOTING], env=env, cwd=tmp_path,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_until((rootfs / "running").exists, 60, "the command runs in the container")
                # The command may run before its monitor has recorded RUNNING (after the exec handshake).
                wait_until(lambda: getattr(container.current_state(), "state", None) == "RUNNING", 30,
                           "the start recorded as RUNNING")
                running = Started.of(container, server)
                # The command runs in a worker of the server (the monitor of the execute, or what the
                # server adopted from it).
                [worker] = children(server) - {running.init}
                assert running.monitor in (None, worker)
                inside = descendants(running.init)
                assert len(inside) == 2, inside  # the shell and its sleep, below init (tini)
            finally:
                client.kill()
                client.wait()
            wait_until(lambda: not running.leftovers() and not living({worker, *inside}), 30,
                       "the worker, the container's processes, its state and cgroups are gone",
                       found=lambda: [*running.leftovers(), living({worker, *inside})])
            # The worker got SIGTERM (not SIGKILL): it passed it on to init, which passed it to the command.
            assert (rootfs / "got-term").read_text() == "TERM\n"
            assert container.state == "STOPPED"
            # The same server serves the next client.
            done = served(env, tmp_path, "-P", lxcpath, "execute", name, "--", "/bin/sh", "-c", "exit 6")
            assert (done.returncode, done.stderr) == (6, "")
            assert server_pid() == server


def test_a_client_killed_during_attach_ends_its_worker_and_the_attached_processes(lxcpath, rundir, host,
                                                                                  tmp_path):
    env = client_env(REPO, None, idle=float(SERVER_IDLE))
    name = "killed-attach"
    rootfs = Path(lxcpath, name, "rootfs")
    with destroyed_at_the_end(lxcpath, [name]):
        container = create(lxcpath, name)
        with running_server({**runtime_env(str(REPO)), "LXCFRAME_SUPERVISOR_IDLE": SERVER_IDLE}) as server, \
                destroyed_at_the_end(lxcpath, [name]):
            done = served(env, tmp_path, "-P", lxcpath, "start", name)
            assert (done.returncode, done.stderr) == (0, "")
            running = Started.of(container, server)
            assert running.monitor is None or parent_of(running.monitor) == server
            before = children(server)
            client = subprocess.Popen([sys.executable, "-c", SERVED_CLIENT, "-P", lxcpath, "attach", name, "--",
                                       "/bin/sh", "-c", TERM_NOTING], env=env, cwd=tmp_path,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_until((rootfs / "running").exists, 60, "the attached command runs")
                [worker] = children(server) - before
                attached = descendants(worker)
                assert len(attached) == 3, attached  # the attach's init (tini), the shell and its sleep
            finally:
                client.kill()
                client.wait()
            try:
                wait_until(lambda: not living({worker, *attached}), 30,
                           "the worker and the attached command's processes end",
                           found=lambda: living({worker, *attached}))
                # The container itself runs on: only the attach was the client's.
                assert Started.of(container, server) == running
                done = served(env, tmp_path, "-P", lxcpath, "attach", name, "--", "/bin/sh", "-c", "exit 6")
                assert (done.returncode, done.stderr) == (6, "")
                assert server_pid() == server
            finally:
                with contextlib.suppress(Exception):
                    container.stop(kill=True)
            wait_until(running.gone, 30, "the container is cleaned after its stop", found=running.leftovers)


def _command_request(installation: list[object], lxcpath: str, env: dict[str, str]) -> bytes:
    command = {"argv": ["-P", lxcpath, "ls"], "env": env, "umask": 0o022, "path0": "", "pass_fds": []}
    return json.dumps({"installation": installation, "command": command}).encode()


def _connected() -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    conn.connect(socket_path())
    return conn


#: Connects, sends ``sys.argv[1]`` (nothing when empty), says so on stdout and waits to be killed.
HALF_CLIENT = ("import socket, sys, time; s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); "
               "s.connect(sys.argv[2]); sys.argv[1] and s.send(sys.argv[1].encode()); print('sent', flush=True); "
               "time.sleep(600)")


def test_a_client_that_connects_and_sends_half_a_request_or_nothing_delays_nobody(lxcpath, rundir, host,
                                                                                  tmp_path):
    """Each connection has its own deadline in one poll set: silent or cut-off clients, alive or killed,
    hold up neither the server nor the next client, who is answered at once."""
    env = client_env(REPO, None, idle=float(SERVER_IDLE))
    with destroyed_at_the_end(lxcpath, ["listed"]):
        create(lxcpath, "listed")
        installation = installation_of(env, tmp_path)
        whole = _command_request(installation, lxcpath, env).decode()
        with running_server({**runtime_env(str(REPO)), "LXCFRAME_SUPERVISOR_IDLE": SERVER_IDLE}) as server, \
                destroyed_at_the_end(lxcpath, ["listed"]):
            silent_open = _connected()  # stays connected, says nothing, for the whole test
            clients = [subprocess.Popen([sys.executable, "-c", HALF_CLIENT, request, socket_path()],
                                        stdout=subprocess.PIPE, text=True)
                       for request in ("", whole[: len(whole) // 2], "")]
            try:
                for client in clients:
                    assert client.stdout is not None and client.stdout.readline() == "sent\n"
                clients[0].kill()  # killed after saying nothing
                clients[1].kill()  # killed after half a request
                # clients[2] stays connected, silent, while the next client is served.
                for round_ in range(3):
                    elapsed, code, output = _ls_through(installation, lxcpath, env, tmp_path)
                    assert (code, output) == (0, b"listed\n")
                    # At once: not after the silent clients' deadline (5 s), nor behind anyone.
                    assert elapsed < 2.0, f"round {round_}: the server took {elapsed:.2f} s to take the command"
                assert server_pid() == server
            finally:
                for client in clients:
                    client.kill()
                    client.wait()
                    if client.stdout is not None:
                        client.stdout.close()
                silent_open.close()


def _ls_through(installation: list[object], lxcpath: str, env: dict[str, str], cwd: Path) -> tuple[float, int, bytes]:
    """Send ``ls`` as a thin client does; seconds until the server took it, its exit status and output."""
    from lxcframe.supervisor_client import exit_status

    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    directory = os.open(cwd, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with _connected() as conn:
            began = time.monotonic()
            socket.send_fds(conn, [_command_request(installation, lxcpath, env)], [null, write_end, write_end,
                                                                                    directory])
            conn.settimeout(30)
            answer, fds, _, _ = socket.recv_fds(conn, 4096, 1, socket.MSG_CMSG_CLOEXEC)
            elapsed = time.monotonic() - began
            for fd in fds:
                os.close(fd)
            assert answer == b"ok", answer
            os.close(write_end)
            write_end = -1
            code = exit_status(conn.recv(4096))
        output = b""
        while chunk := os.read(read_end, 4096):
            output += chunk
        return elapsed, code, output
    finally:
        for fd in (read_end, write_end, directory, null):
            if fd >= 0:
                os.close(fd)


# --- eight threads, 160 containers ------------------------------------------------------------------------

THREADS = 8
PER_THREAD = 20


@attrs.frozen
class Outcome:
    started: Started
    #: The server listening right after the start, and whether it started the container: it forked the
    #: container's monitor, or is the monitor itself.
    server: int
    through_server: bool
    expected_status: int
    status: int


def test_eight_threads_start_attach_and_stop_twenty_containers_each_through_the_server(lxcpath, rundir, host,
                                                                                     monkeypatch):
    from lxcframe import attach
    from lxcframe.plugin_manager import Plugins

    def no_helper(_request: object) -> int:
        raise AssertionError("an attach went to a helper interpreter, not to the server")

    monkeypatch.setattr(attach, "_spawn_helper", no_helper)
    monkeypatch.setenv("LXCFRAME_SUPERVISOR_IDLE", SERVER_IDLE)
    netns_before = _netns_ids()
    names = [f"load-{t}-{i}" for t in range(THREADS) for i in range(PER_THREAD)]
    outcomes: dict[str, Outcome] = {}
    #: The ids the host gave the containers' network namespaces while they ran.
    netns_ids: set[int | None] = set()
    failures: list[str] = []
    lock = threading.Lock()

    def one_thread(index: int) -> None:
        try:
            plugins = Plugins()  # one caller's plugins, for its twenty containers
            started = []
            for i in range(PER_THREAD):
                container = create(lxcpath, f"load-{index}-{i}", plugins)
                container.start()  # the first start finding no server starts one and waits for it
                server = server_pid()
                running = Started.of(container, server)
                through = running.monitor is None or parent_of(running.monitor) == server
                nsid = netns_id_of(running.init)
                with lock:
                    netns_ids.add(nsid)
                started.append((container, running, server, through))
            for i, (container, running, server, through) in enumerate(started):
                expected = index * PER_THREAD + i  # 0..159: each container's own exit status
                status = container.attach_wait(
                    ["/bin/sh", "-c", f'test "$(hostname)" = {container.name} && exit {expected}; exit 255'])
                with lock:
                    outcomes[container.name] = Outcome(running, server, through, expected, status)
            for container, *_ in started:
                container.stop(kill=True)
            for container, *_ in started:
                container.destroy()
        except BaseException as err:
            with lock:
                failures.append(f"thread {index}: {type(err).__name__}: {err}")

    with ended_processes_of(rundir), destroyed_at_the_end(lxcpath, names):
        began = time.monotonic()
        threads = [threading.Thread(target=one_thread, args=(index,)) for index in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        wall = time.monotonic() - began
        assert not [thread for thread in threads if thread.is_alive()], "threads still running after 600 s"
        servers = {o.server for o in outcomes.values()}
        print(f"\n{THREADS} threads x {PER_THREAD} containers (create, start, attach, stop -k, destroy): "
              f"{wall:.1f} s, {len(servers)} server(s)")
        assert failures == []
        assert sorted(outcomes) == sorted(names)
        assert {name: o.status for name, o in outcomes.items()} == {
            name: o.expected_status for name, o in outcomes.items()}
        # Every start went through the server, none was run by the caller.
        assert [name for name, o in outcomes.items() if not o.through_server] == []
        leftovers = {name: o.started.leftovers() for name, o in outcomes.items()}
        assert {name: found for name, found in leftovers.items() if found} == {}
        assert [name for name in names if Container(name, lxcpath).defined] == []
    # ended_processes_of waited for the server to leave: nothing of the run directory runs.
    assert not os.path.exists(socket_path())
    # Each had a netns id of its own (a namespace without one would say nothing here), and none is left.
    assert None not in netns_ids and len(netns_ids) > 1
    ours = {nsid for nsid in netns_ids if nsid is not None} - netns_before  # others' come and go meanwhile
    wait_until(lambda: not ours & _netns_ids(), 10, "the containers' netns ids are released",
               found=lambda: sorted(ours & _netns_ids()))
