"""The command line as a thin client of the warm server (``LXCFRAME_SERVER=1``): the command runs in a worker
forked from the server, with the client's descriptors, working directory, umask, environment and cgroups,
and the client ends as the command did."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lxcframe import thin_client
from lxcframe.run_root import socket_path

from .server_fixtures import server_pid, server_up

pytestmark = pytest.mark.container

REPO = str(Path(__file__).resolve().parent.parent)

#: Written into a directory on PYTHONPATH: at exit, whether this process imported the command line's
#: commands (a thin client never does; a command run in the caller's own process always does).
SITECUSTOMIZE = """
import atexit, os, sys
def _note():
    with open(os.environ["THIN_NOTE"], "a") as handle:
        handle.write(f"{os.getpid()} {'lxcframe.cli.commands' in sys.modules}\\n")
atexit.register(_note)
"""


@pytest.fixture
def served_env(rundir, monkeypatch, tmp_path) -> dict[str, str]:
    monkeypatch.setenv(thin_client.ENABLE_ENV, "1")
    # One server for the whole test (the suite's default idle time is 0.2 s).
    monkeypatch.setenv("LXCFRAME_SUPERVISOR_IDLE", "2")
    # Clients import this checkout wherever they run (not a copy installed in the environment), as the
    # server does: else they are another installation to it, and run their commands themselves.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p))
    # A command finding no server starts one for the next and runs itself: the tests' server is up first.
    from lxcframe import supervisor

    supervisor.spawn()
    _wait_until(server_up)
    return dict(os.environ)


def _cli(lxcpath: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "lxcframe", "-P", lxcpath, *args]


def _wait_until(condition: Callable[[], object], timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout} s: {condition}")


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError):
            found |= {int(child) for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split()}
    return found


@contextlib.contextmanager
def _running(argv: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def test_the_command_gets_the_clients_stdio_and_the_client_its_exit_status(make_container, lxcpath, served_env):
    make_container("tcio")
    done = subprocess.run(_cli(lxcpath, "execute", "tcio", "--", "/bin/sh", "-c",
                               'read line; echo "got $line"; echo to-stderr >&2; exit 7'),
                          input="hello\n", capture_output=True, text=True, env=served_env, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (7, "got hello\n", "to-stderr\n")


def test_the_command_runs_in_a_worker_of_the_server_and_signals_reach_it(make_container, lxcpath, served_env):
    container = make_container("tcsig")
    with _running(_cli(lxcpath, "execute", "tcsig", "--", "/bin/sleep", "60"), served_env) as client:
        _wait_until(lambda: container.state == "RUNNING")
        server = server_pid()
        # The client has no child: its command is a worker of the server, which is the container's monitor.
        assert _children(client.pid) == set()
        monitor = container.current_state().monitor_pid
        assert monitor in _children(server)
        client.send_signal(signal.SIGTERM)
        assert client.wait(timeout=30) == 128 + signal.SIGTERM, client.communicate()
    _wait_until(lambda: not container.running)
    assert monitor not in _children(server)


def test_a_client_killed_mid_command_ends_its_worker_and_container(make_container, lxcpath, served_env):
    container = make_container("tckill")
    with _running(_cli(lxcpath, "execute", "tckill", "--", "/bin/sleep", "60"), served_env) as client:
        _wait_until(lambda: container.state == "RUNNING")
        monitor = container.current_state().monitor_pid
        client.kill()
        client.wait(timeout=30)
    _wait_until(lambda: not os.path.exists(f"/proc/{monitor}"))
    _wait_until(lambda: not container.running)


def test_working_directory_umask_and_environment_are_the_clients(make_container, lxcpath, served_env, tmp_path):
    container = make_container("tcenv")
    (tmp_path / "relative.conf").write_text("lxc.uts.name = relative\n")
    done = subprocess.run(_cli(lxcpath, "config", "validate", "relative.conf"), capture_output=True, text=True,
                          env=served_env, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    container.start()
    try:
        done = subprocess.run(_cli(lxcpath, "attach", "tcenv", "--", "/bin/sh", "-c", 'echo "$CALLER_VAR"'),
                              capture_output=True, text=True, env={**served_env, "CALLER_VAR": "from the client"},
                              timeout=60)
        assert (done.returncode, done.stdout) == (0, "from the client\n")
    finally:
        container.stop(kill=True)
    done = subprocess.run(["/bin/sh", "-c", 'umask 027; exec "$@"', "sh",
                           *_cli(lxcpath, "create", "tcmask", "-t", "busybox")],
                          capture_output=True, text=True, env=served_env, timeout=120)
    assert done.returncode == 0, done.stderr
    try:
        assert os.stat(os.path.join(lxcpath, "tcmask", "config")).st_mode & 0o777 == 0o640
    finally:
        subprocess.run(_cli(lxcpath, "destroy", "tcmask"), env=served_env, check=True, timeout=60)


def test_the_client_imports_no_command_and_another_installation_runs_it_itself(make_container, lxcpath,
                                                                              served_env, tmp_path):
    make_container("tcinst")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    note = tmp_path / "note"
    server = server_pid()
    # A client whose module search path differs is another installation to the server: it runs the
    # command itself, with the same result.
    other = {**served_env, "PYTHONPATH": os.pathsep.join([str(site), served_env.get("PYTHONPATH", "")]),
             "THIN_NOTE": str(note)}
    done = subprocess.run(_cli(lxcpath, "ls"), env=other, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "tcinst\n")
    [(_pid, imported)] = [line.split() for line in note.read_text().splitlines()]
    assert imported == "True"
    assert server_pid() == server  # refused, not taken down
    # A client of the server's installation is served, and imports none of the commands itself.
    done = subprocess.run([sys.executable, "-c", "import sys; from lxcframe.cli.main import main; "
                           f"code = main(['-P', {lxcpath!r}, 'ls']); "
                           "print('lxcframe.cli.commands' in sys.modules, file=sys.stderr); sys.exit(code)"],
                          env=served_env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "tcinst\n", "False\n")


def test_a_client_in_other_namespaces_than_the_server_runs_its_command_itself(make_container, lxcpath,
                                                                             served_env):
    make_container("tcns")
    server = server_pid()
    probe = ("import sys; from lxcframe.cli.main import main; "
             f"code = main(['-P', {lxcpath!r}, 'ls']); "
             "print('lxcframe.cli.commands' in sys.modules, file=sys.stderr); sys.exit(code)")
    # In a network namespace of its own, the server's worker would act on the wrong network: the client
    # runs the command itself (and leaves the server as it was).
    done = subprocess.run(["unshare", "--net", sys.executable, "-c", probe], env=served_env, capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "tcns\n", "True\n")
    assert server_pid() == server
    # The same client in the server's namespaces is served.
    done = subprocess.run([sys.executable, "-c", probe], env=served_env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "tcns\n", "False\n")


def test_terminal_commands_stay_in_the_callers_process(monkeypatch):
    monkeypatch.setenv(thin_client.ENABLE_ENV, "1")
    assert thin_client.served("ls", ["ls"])
    assert not thin_client.served("console", ["console", "c1"])
    assert not thin_client.served(None, ["--help"])
    master, slave = os.openpty()
    saved = os.dup(0)
    try:
        os.dup2(slave, 0)
        assert not thin_client.served("execute", ["execute", "c1"])
        assert not thin_client.served("attach", ["attach", "c1"])
        assert not thin_client.served("start", ["start", "-F", "c1"])
        assert thin_client.served("start", ["start", "c1"])  # a daemon start takes no terminal
        # An ephemeral copy runs in the foreground (or attaches its command) unless -d.
        assert not thin_client.served("copy", ["copy", "c1", "-e"])
        assert not thin_client.served("copy", ["copy", "c1", "-e", "--", "ls"])
        assert thin_client.served("copy", ["copy", "c1", "-e", "-d"])
        assert thin_client.served("copy", ["copy", "c1", "-N", "c2"])
        assert thin_client.served("ls", ["ls"])
    finally:
        os.dup2(saved, 0)
        for fd in (saved, master, slave):
            os.close(fd)
    monkeypatch.setenv(thin_client.ENABLE_ENV, "0")
    assert not thin_client.served("ls", ["ls"])


def test_the_worker_joins_the_clients_cgroup(make_container, lxcpath, served_env):
    unified = next((line for line in Path("/proc/self/cgroup").read_text().splitlines() if line.startswith("0::")),
                   None)
    mount = next((line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
                  if line.split(" - ")[1].startswith("cgroup2 ")), None)
    assert unified is not None and mount is not None
    own = unified[3:]
    child = os.path.join(mount, own.lstrip("/"), "lxcframe-thin-client")
    os.mkdir(child)
    container = make_container("tccg")
    try:
        argv = ["/bin/sh", "-c", f'echo $$ > {child}/cgroup.procs && exec "$@"', "sh",
                *_cli(lxcpath, "execute", "tccg", "--", "/bin/sleep", "60")]
        with _running(argv, served_env) as client:
            _wait_until(lambda: container.state == "RUNNING")
            init = container.init_pid
            [path] = [line[3:] for line in Path(f"/proc/{init}/cgroup").read_text().splitlines()
                      if line.startswith("0::")]
            # lxc.cgroup.relative = 1 (the suite's default config): below the client's cgroup, not the server's.
            assert path.startswith(os.path.join(own, "lxcframe-thin-client") + "/"), path
            client.send_signal(signal.SIGTERM)
            client.wait(timeout=30)
        _wait_until(lambda: not container.running)
    finally:
        _wait_until(lambda: _rmdir(child), timeout=10)


def _rmdir(path: str) -> bool:
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def test_a_malformed_command_is_refused_and_nothing_runs(lxcpath, served_env):
    server = server_pid()
    from lxcframe.installation import installation

    for command, expected in (
        ({"argv": "ls", "env": {}, "umask": 18, "path0": "", "pass_fds": []},
         b"no: malformed command: argv: not a list of strings"),
        ({"argv": ["ls"], "env": {}, "umask": 0o1777, "path0": "", "pass_fds": []},
         b"no: malformed command: umask: not a mode"),
        ({"argv": ["ls"], "env": {}, "umask": 18, "path0": "", "pass_fds": [1]},
         b"no: malformed command: pass_fds: not at most 64 distinct descriptor numbers from 3"),
        ({"argv": ["ls"], "env": {}, "umask": 18, "path0": "", "pass_fds": [5]},
         b"no: a command carries stdin, stdout, stderr, its directory and the 1 descriptors it passes"),
        ({"argv": ["ls"], "env": {}, "umask": 18}, b"no: malformed command: a command holds argv, env, umask"),
    ):
        with contextlib.closing(socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)) as conn:
            conn.connect(socket_path())
            message = json.dumps({"installation": installation(), "command": command}).encode()
            socket.send_fds(conn, [message], [0, 1, 2, 0])
            conn.settimeout(10)
            assert conn.recv(4096).startswith(expected)
    assert _children(server) == set()


def test_the_first_command_runs_itself_and_starts_the_server_for_the_next(lxcpath, rundir, monkeypatch):
    monkeypatch.setenv(thin_client.ENABLE_ENV, "1")
    monkeypatch.setenv("LXCFRAME_SUPERVISOR_IDLE", "2")
    assert not server_up()
    done = subprocess.run(_cli(lxcpath, "ls"), env=dict(os.environ), capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "")
    _wait_until(server_up)


def test_a_command_takes_the_warm_plugins_only_when_it_would_load_the_same(monkeypatch):
    from lxcframe import plugin_manager
    from lxcframe.hostconfig import load_host_config

    monkeypatch.delenv(plugin_manager.DISABLE_ENV, raising=False)
    monkeypatch.delenv(plugin_manager.TRACE_ENV, raising=False)
    monkeypatch.setattr(plugin_manager, "_WARM", [])
    host = load_host_config()
    warm = plugin_manager.Plugins(host=host)
    plugin_manager.keep_warm(warm)
    assert plugin_manager.for_command([], host=host, disable_origin="-p no:{name}", trace=None) is warm
    other = plugin_manager.for_command(["keyring"], host=host, disable_origin="-p no:{name}", trace=None)
    assert other is not warm and "keyring" in other.disabled
    assert plugin_manager.for_command([], host=host, disable_origin="-p no:{name}", trace=True) is not warm
    monkeypatch.setenv(plugin_manager.DISABLE_ENV, "keyring")
    assert plugin_manager.for_command([], host=host, disable_origin="-p no:{name}", trace=None) is not warm


#: Started as systemd's socket activation starts a service: the socket at descriptor 3, LISTEN_PID its own pid.
ACTIVATED = ("import os, sys; os.dup2(int(sys.argv[1]), 3); "
             "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1'); "
             "os.execv(sys.executable, [sys.executable, '-m', 'lxcframe.supervisor'])")


def test_a_socket_activated_server_serves_the_socket_it_was_given_and_leaves_it(make_container, lxcpath, rundir,
                                                                               monkeypatch):
    monkeypatch.setenv(thin_client.ENABLE_ENV, "1")
    monkeypatch.setenv("LXCFRAME_SUPERVISOR_IDLE", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p))
    container = make_container("tcact")
    os.makedirs(rundir, mode=0o700, exist_ok=True)
    path = socket_path()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(8)
    server = subprocess.Popen([sys.executable, "-c", ACTIVATED, str(listener.fileno())],
                              pass_fds=[listener.fileno()], cwd="/")
    listener.close()
    try:
        with _running(_cli(lxcpath, "execute", "tcact", "--", "/bin/sleep", "60"), dict(os.environ)) as client:
            _wait_until(lambda: container.state == "RUNNING")
            # Not started by the command: the activated server took it, its worker is the monitor.
            assert container.current_state().monitor_pid in _children(server.pid)
            client.send_signal(signal.SIGTERM)
            assert client.wait(timeout=30) == 128 + signal.SIGTERM
        _wait_until(lambda: not container.running)
        assert server.wait(timeout=30) == 0  # idle: it leaves, and the socket stays for the next one
        assert os.path.exists(path)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        os.unlink(path)


def test_a_threaded_callers_attach_is_a_worker_of_the_server_not_an_interpreter(make_container, monkeypatch):
    from lxcframe import attach

    from .conftest import another_thread

    container = make_container("tcatt")
    container.start()  # a daemon: its monitor is the server's child, and the server stays while it runs
    try:
        def no_helper(_request: object) -> int:
            raise AssertionError("a helper interpreter was started")

        monkeypatch.setattr(attach, "_spawn_helper", no_helper)
        read_end, write_end = os.pipe()
        try:
            with another_thread():
                assert container.attach_wait(["/bin/sh", "-c", f"echo passed >&{write_end}; exit 5"],
                                             pass_fds=[write_end]) == 5
            os.close(write_end)
            write_end = -1
            assert os.read(read_end, 100) == b"passed\n"
        finally:
            for fd in (read_end, write_end):
                if fd >= 0:
                    os.close(fd)
    finally:
        container.stop(kill=True)


def test_an_attach_of_another_installation_is_refused(make_container):
    container = make_container("tcattno")
    container.start()
    try:
        with contextlib.closing(socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)) as conn:
            conn.connect(socket_path())
            socket.send_fds(conn, [json.dumps({"fingerprint": "another", "attach_by_name": {}}).encode()], [0, 1, 2])
            conn.settimeout(10)
            assert conn.recv(4096) == b"no: this supervisor runs another installation of lxcframe"
    finally:
        container.stop(kill=True)


def test_a_threaded_callers_attach_by_name_raises_the_workers_preparation_error(make_container):
    from lxcframe import attach, supervisor_client
    from lxcframe.errors import ContainerError

    from .conftest import another_thread

    keeper = make_container("tckeep")
    stopped = make_container("tcstopped")
    keeper.start()  # the server stays while its monitor runs
    sent: list[str] = []
    real = supervisor_client._submit_work

    def spy(message: dict[str, object], pass_fds: tuple[int, ...]) -> int | None:
        sent.append(next(key for key in message if key != "fingerprint"))
        return real(message, pass_fds)

    try:
        with pytest.MonkeyPatch.context() as patched:
            patched.setattr(supervisor_client, "_submit_work", spy)
            patched.setattr(attach, "_spawn_helper", lambda _request: pytest.fail("a helper interpreter was started"))
            with another_thread():
                with pytest.raises(ContainerError, match="tcstopped: not running"):
                    stopped.attach_wait(["/bin/true"])
                assert keeper.attach_wait(["/bin/sh", "-c", "exit 3"]) == 3
        assert sent == ["attach_by_name", "attach_by_name"]
    finally:
        keeper.stop(kill=True)


#: SIGPIPE and SIGXFSZ: what any Python interpreter ignores, and nothing else.
PYTHON_IGNORES = (1 << (signal.SIGPIPE - 1)) | (1 << (signal.SIGXFSZ - 1))


def test_a_server_started_by_a_background_job_keeps_none_of_its_ignored_signals(lxcpath, rundir, monkeypatch):
    monkeypatch.setenv(thin_client.ENABLE_ENV, "1")
    monkeypatch.setenv("LXCFRAME_SUPERVISOR_IDLE", "2")
    # As a shell starts a background job: SIGINT and SIGQUIT ignored, and the job's first command
    # starts the server.
    as_background_job = ("import signal, subprocess, sys; "
                         "[signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGQUIT)]; "
                         "sys.exit(subprocess.run(sys.argv[1:], restore_signals=False).returncode)")
    done = subprocess.run([sys.executable, "-c", as_background_job, *_cli(lxcpath, "ls")], env=dict(os.environ),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    _wait_until(server_up)
    status = Path(f"/proc/{server_pid()}/status").read_text()
    [ignored] = [int(line.split()[1], 16) for line in status.splitlines() if line.startswith("SigIgn:")]
    [blocked] = [int(line.split()[1], 16) for line in status.splitlines() if line.startswith("SigBlk:")]
    assert (ignored, blocked) == (PYTHON_IGNORES, 0)
