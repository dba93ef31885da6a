"""The OCI runtime command line and its process model, with runc as the control for every scenario.

Each scenario runs on ``runc`` and on ``lxcframe-oci`` (``python -m lxcframe.oci.cli`` of this checkout)
with the same busybox bundle: create -> state -> start -> state -> kill -> state -> delete with their
exit statuses and state fields, init reparented to the caller's subreaper once ``create`` returned, the
container's stdio being create's, pause/resume, ps, and runc's exit codes for unknown and repeated
commands. Every container is below this test's own cgroups (a relative ``linux.cgroupsPath``, which both
runtimes read below their own cgroup) and deleted with ``delete --force`` at teardown.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..oci_tiers.runtimes import make_busybox_rootfs

CHECKOUT = Path(__file__).resolve().parent.parent.parent
RUNC = shutil.which("runc") or "/usr/sbin/runc"
RUNTIMES = ("runc", "lxcframe")
TIMEOUT = 60


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox root (oci.md §1.2): the host's static busybox and its applets as links."""
    return make_busybox_rootfs(tmp_path_factory.mktemp("bundle-root") / "rootfs")


class Runtime:
    """One runtime's command line with a private --root, and the bundles it runs."""

    def __init__(self, name: str, tmp: Path, rootfs: Path, env: dict[str, str]) -> None:
        self.name = name
        self.tmp = tmp
        self.rootfs = rootfs
        self.root = tmp / f"{name}-root"
        self.env = env
        self.ids: list[str] = []
        base = [RUNC] if name == "runc" else [sys.executable, "-m", "lxcframe.oci.cli"]
        self.argv = [*base, "--root", str(self.root)]

    def bundle(self, args: list[str], name: str = "b", terminal: bool = False, devpts: bool = False) -> Path:
        directory = self.tmp / f"{self.name}-{name}"
        directory.mkdir()
        mounts: list[dict[str, object]] = [{"destination": "/proc", "type": "proc", "source": "proc"}]
        if terminal or devpts:
            mounts += [{"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                       {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}]
        # A relative path is read below the runtime's own cgroups: this test's.
        linux: dict[str, object] = {"namespaces": [{"type": t} for t in ("pid", "mount", "ipc", "uts", "network")],
                                    "cgroupsPath": self.cgroups_path(name)}
        config = {
            "ociVersion": "1.0.2",
            "process": {"terminal": terminal, "user": {"uid": 0, "gid": 0}, "args": args,
                        "env": ["PATH=/bin:/usr/bin", "TERM=xterm"], "cwd": "/"},
            "root": {"path": str(self.rootfs), "readonly": False},
            "hostname": "ocitest",
            "mounts": mounts,
            "linux": linux,
        }
        (directory / "config.json").write_text(json.dumps(config, indent=1))
        return directory

    def cgroups_path(self, name: str) -> str:
        return f"lxcframe-oci-test-{os.getpid()}-{self.name}-{name}"

    def run(self, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.argv, *args], capture_output=True, text=True, env=self.env,
                              timeout=TIMEOUT, check=False, **kwargs)  # type: ignore[call-overload]

    def create(self, container_id: str, bundle: Path, *more: str, **kwargs: object) -> subprocess.Popen[str]:
        """``create`` with the given stdio (pipes the caller made); returns once create exited."""
        self.ids.append(container_id)
        process = subprocess.Popen([*self.argv, "create", "--bundle", str(bundle), *more, container_id],
                                   env=self.env, text=True, **kwargs)  # type: ignore[call-overload]
        process.wait(TIMEOUT)
        return process

    def state(self, container_id: str) -> dict[str, object]:
        result = self.run("state", container_id)
        assert result.returncode == 0, result.stderr
        document: dict[str, object] = json.loads(result.stdout)
        return document

    def wait_status(self, container_id: str, wanted: str) -> dict[str, object]:
        deadline = time.monotonic() + 10
        while True:
            document = self.state(container_id)
            if document["status"] == wanted or time.monotonic() > deadline:
                return document
            time.sleep(0.02)

    def cleanup(self) -> None:
        for container_id in self.ids:
            self.run("delete", "--force", container_id)
        shutil.rmtree(self.root, ignore_errors=True)


def runtime_env(tmp_path: Path, name: str) -> dict[str, str]:
    """The environment a runtime runs with: this checkout's lxcframe, and a host config whose default
    lines keep every container below this test's own cgroups (the bundles say so too)."""
    if name == "runc" and not os.access(RUNC, os.X_OK):
        pytest.fail("runc is missing: scripts/setup-host.sh installs it")
    defaults = tmp_path / "oci-default.conf"
    defaults.write_text("lxc.cgroup.relative = 1\n")
    host_config = tmp_path / "oci-host.toml"
    host_config.write_text(f'default_config = "{defaults}"\n')
    return {**os.environ, "LXCFRAME_HOST_CONFIG": str(host_config), "PYTHONPATH": str(CHECKOUT)}


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest, tmp_path: Path, rootfs: Path, host: object) -> Iterator[Runtime]:
    made = Runtime(request.param, tmp_path, rootfs, runtime_env(tmp_path, request.param))
    yield made
    made.cleanup()


def _devnull() -> dict[str, Any]:
    return {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}


def test_lifecycle(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sleep", "100"])
    pid_file = runtime.tmp / f"{runtime.name}.pid"
    created = runtime.create("c1", bundle, "--pid-file", str(pid_file), **_devnull())
    assert created.returncode == 0
    state = runtime.state("c1")
    pid = int(pid_file.read_text())
    assert (state["status"], state["pid"], state["id"]) == ("created", pid, "c1")
    assert state["bundle"] == str(bundle)
    assert str(state["created"]).endswith("Z")
    assert runtime.run("start", "c1").returncode == 0
    assert runtime.state("c1")["status"] == "running"
    second = runtime.run("start", "c1")
    assert second.returncode == 1
    not_stopped = runtime.run("delete", "c1")
    assert not_stopped.returncode == 1
    assert runtime.run("kill", "c1", "KILL").returncode == 0
    stopped = runtime.wait_status("c1", "stopped")
    assert (stopped["status"], stopped["pid"]) == ("stopped", 0)
    assert runtime.run("start", "c1").returncode == 1
    assert runtime.run("delete", "c1").returncode == 0
    gone = runtime.run("state", "c1")
    assert gone.returncode == 1 and "does not exist" in gone.stderr
    assert runtime.run("delete", "--force", "c1").returncode == 0


def test_unknown_and_duplicate(runtime: Runtime) -> None:
    for command in (("state", "nope"), ("kill", "nope", "9"), ("start", "nope"), ("delete", "nope")):
        result = runtime.run(*command)
        assert result.returncode == 1, command
        assert "does not exist" in result.stderr, (command, result.stderr)
    assert runtime.run("delete", "--force", "nope").returncode == 0
    bundle = runtime.bundle(["sleep", "100"])
    assert runtime.create("dup", bundle, **_devnull()).returncode == 0
    # Refused before any container process exists: nothing holds the pipes of the capture.
    again = runtime.run("create", "--bundle", str(bundle), "dup", stdin=subprocess.DEVNULL)
    assert again.returncode == 1
    assert "exists" in again.stderr
    assert runtime.state("dup")["status"] == "created"
    # A created container is deleted with --force (its init waiting on the fifo killed).
    assert runtime.run("delete", "--force", "dup").returncode == 0
    assert runtime.run("state", "dup").returncode == 1


@pytest.mark.parametrize("signal_text", ["9", "KILL", "SIGKILL"])
def test_kill_signal_forms(runtime: Runtime, signal_text: str) -> None:
    bundle = runtime.bundle(["sleep", "100"])
    assert runtime.create("k", bundle, **_devnull()).returncode == 0
    assert runtime.run("start", "k").returncode == 0
    assert runtime.run("kill", "k", signal_text).returncode == 0
    assert runtime.wait_status("k", "stopped")["status"] == "stopped"
    assert runtime.run("delete", "k").returncode == 0


_SUBREAPER = """
import json, os, subprocess, sys
from lxcframe import syscalls
syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)
argv, bundle, pid_file = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
created = subprocess.run([*argv, "create", "--bundle", bundle, "--pid-file", pid_file, "r"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
pid = int(open(pid_file).read())
with open(f"/proc/{pid}/stat") as handle:
    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
started = subprocess.run([*argv, "start", "r"])
_, status = os.waitpid(pid, 0)
print(json.dumps({"create": created.returncode, "start": started.returncode, "me": os.getpid(), "ppid": ppid,
                  "exit": os.waitstatus_to_exitcode(status)}))
"""


def test_init_reparents_to_the_subreaper(runtime: Runtime) -> None:
    """After create, init's parent is the caller's subreaper, which reaps its exit status."""
    bundle = runtime.bundle(["sh", "-c", "sleep 0.2; exit 3"])
    runtime.ids.append("r")
    result = subprocess.run([sys.executable, "-c", _SUBREAPER, json.dumps(runtime.argv), str(bundle),
                             str(runtime.tmp / "r.pid")], capture_output=True, text=True, env=runtime.env,
                            timeout=TIMEOUT, check=False)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert (seen["create"], seen["start"]) == (0, 0)
    assert seen["ppid"] == seen["me"]
    assert seen["exit"] == 3
    assert runtime.state("r")["status"] == "stopped"
    assert runtime.run("delete", "r").returncode == 0


def test_stdio_is_creates(runtime: Runtime) -> None:
    """create's fds 0/1/2 are the container process's stdio."""
    bundle = runtime.bundle(["sh", "-c", "read x; echo got:$x; echo err:$x >&2"])
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    with os.fdopen(stdin_w, "w") as feed, os.fdopen(out_r) as out, os.fdopen(err_r) as err:
        try:
            created = runtime.create("io", bundle, stdin=stdin_r, stdout=out_w, stderr=err_w)
        finally:
            for fd in (stdin_r, out_w, err_w):  # the container's ends are its own now
                os.close(fd)
        assert created.returncode == 0
        feed.write("hello\n")
        feed.close()
        assert runtime.run("start", "io").returncode == 0
        assert (out.read(), err.read()) == ("got:hello\n", "err:hello\n")  # EOF once it exited
    assert runtime.wait_status("io", "stopped")["status"] == "stopped"
    assert runtime.run("delete", "io").returncode == 0


def test_pause_resume_ps(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sh", "-c", "sleep 100 & sleep 100; true"])
    pid_file = runtime.tmp / "p.pid"
    assert runtime.create("p", bundle, "--pid-file", str(pid_file), **_devnull()).returncode == 0
    assert runtime.run("start", "p").returncode == 0
    init = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while True:
        listed = runtime.run("ps", "--format", "json", "p")
        assert listed.returncode == 0, listed.stderr
        pids = json.loads(listed.stdout)
        if len(pids) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert init in pids and len(pids) == 3
    assert runtime.run("pause", "p").returncode == 0
    assert runtime.state("p")["status"] == "paused"
    assert runtime.run("pause", "p").returncode == 1  # not running
    assert runtime.run("resume", "p").returncode == 0
    assert runtime.state("p")["status"] == "running"
    assert runtime.run("kill", "--all", "p", "KILL").returncode == 0
    assert runtime.wait_status("p", "stopped")["status"] == "stopped"
    assert runtime.run("delete", "p").returncode == 0


def test_failed_create_leaves_nothing(runtime: Runtime) -> None:
    """A command not in the rootfs: create fails naming it, in words podman maps to its exit 127."""
    bundle = runtime.bundle(["/nonexistent"])
    log = runtime.tmp / "log.json"
    created = subprocess.run([*runtime.argv, "--log", str(log), "--log-format", "json", "create", "--bundle",
                              str(bundle), "bad"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             env=runtime.env, timeout=TIMEOUT, check=False)
    runtime.ids.append("bad")
    assert created.returncode == 1
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["level"] == "error" and "no such file or directory" in last["msg"]
    assert runtime.run("state", "bad").returncode == 1


def test_features_and_version() -> None:
    env = {**os.environ, "PYTHONPATH": str(CHECKOUT)}
    result = subprocess.run([sys.executable, "-m", "lxcframe.oci.cli", "features"], capture_output=True,
                            text=True, env=env, check=True, timeout=TIMEOUT)
    document = json.loads(result.stdout)
    assert document["ociVersionMin"] == "1.0.0"
    assert "pid" in document["linux"]["namespaces"]
    assert document["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
                                 "poststop"]  # as runc's
    seccomp = document["linux"]["seccomp"]
    assert seccomp["enabled"] and {"SCMP_ACT_ERRNO", "SCMP_ACT_LOG", "SCMP_ACT_KILL_PROCESS"} <= set(seccomp["actions"])
    assert "SCMP_ACT_NOTIFY" not in seccomp["actions"] and seccomp["supportedFlags"] == []
    version = subprocess.run([sys.executable, "-m", "lxcframe.oci.cli", "--version"], capture_output=True,
                             text=True, env=env, check=True, timeout=TIMEOUT)
    assert version.stdout.startswith("lxcframe-oci version ")


def test_a_reader_gone_ends_a_command_quietly() -> None:
    env = {**os.environ, "PYTHONPATH": str(CHECKOUT)}
    reading, writing = os.pipe()
    os.close(reading)  # gone before the command writes
    try:
        done = subprocess.run([sys.executable, "-m", "lxcframe.oci.cli", "features"], stdout=writing,
                              stderr=subprocess.PIPE, text=True, env=env, timeout=TIMEOUT, check=False)
    finally:
        os.close(writing)
    assert (done.returncode, done.stderr) == (141, "")


def _cgroup_of(pid: int, controller: str) -> str:
    with open(f"/proc/{pid}/cgroup") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                return path
    raise AssertionError(f"{pid} has no {controller} cgroup")


def _cgroup_file(pid: int, controller: str, name: str) -> str:
    """A cgroup v1 file of ``pid``'s cgroup, found as podman stats and ctr metrics find it."""
    return (Path("/sys/fs/cgroup") / controller / _cgroup_of(pid, controller).lstrip("/") / name).read_text().strip()


def test_exec_and_update(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sleep", "100"])
    pid_file = runtime.tmp / "e.pid"
    assert runtime.create("e", bundle, "--pid-file", str(pid_file), **_devnull()).returncode == 0
    assert runtime.run("start", "e").returncode == 0
    init = int(pid_file.read_text())
    for controller in ("memory", "pids", "cpu", "freezer"):  # linux.cgroupsPath, literally
        assert _cgroup_of(init, controller).endswith("/" + runtime.cgroups_path("b")), controller
    process = runtime.tmp / "process.json"
    process.write_text(json.dumps({"args": ["sh", "-c", "echo $FOO in $(pwd); exit 5"], "cwd": "/tmp",
                                   "env": ["FOO=bar", "PATH=/bin"], "user": {"uid": 0, "gid": 0}}))
    ran = runtime.run("exec", "--process", str(process), "e", stdin=subprocess.DEVNULL)
    assert (ran.returncode, ran.stdout) == (5, "bar in /tmp\n"), ran.stderr
    process.write_text(json.dumps({"args": ["sleep", "100"], "cwd": "/", "env": ["PATH=/bin"]}))
    exec_pid = runtime.tmp / "exec.pid"
    # Its stdio not a pipe of ours: the detached process keeps what it was given.
    detached = subprocess.run([*runtime.argv, "exec", "--detach", "--pid-file", str(exec_pid), "--process",
                               str(process), "e"], env=runtime.env, timeout=TIMEOUT, check=False, **_devnull())
    assert detached.returncode == 0
    assert int(exec_pid.read_text()) in json.loads(runtime.run("ps", "--format", "json", "e").stdout)
    resources = runtime.tmp / "resources.json"
    resources.write_text(json.dumps({"memory": {"limit": 64 << 20}, "pids": {"limit": 50},
                                     "cpu": {"shares": 512}}))
    assert runtime.run("update", "--resources", str(resources), "e").returncode == 0
    assert _cgroup_file(init, "memory", "memory.limit_in_bytes") == str(64 << 20)
    assert _cgroup_file(init, "pids", "pids.max") == "50"
    assert _cgroup_file(init, "cpu", "cpu.shares") == "512"
    assert runtime.run("kill", "--all", "e", "9").returncode == 0
    assert runtime.wait_status("e", "stopped")["status"] == "stopped"
    assert runtime.run("delete", "e").returncode == 0


def test_console_socket(runtime: Runtime) -> None:
    """With process.terminal, the pty's master comes over --console-socket; init runs on its slave."""
    bundle = runtime.bundle(["sh", "-c", "tty; echo hi"], terminal=True)
    path = str(runtime.tmp / "console.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        listener.settimeout(TIMEOUT)
        assert runtime.create("t", bundle, "--console-socket", path, **_devnull()).returncode == 0
        conn, _ = listener.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    assert len(fds) == 1
    master = fds[0]
    try:
        assert runtime.run("start", "t").returncode == 0
        output = _read_until_hangup(master)
    finally:
        os.close(master)
    name, said = output.split()
    assert name.startswith("/dev/pts/") and said == "hi"
    assert runtime.wait_status("t", "stopped")["status"] == "stopped"
    assert runtime.run("delete", "t").returncode == 0


def _read_until_hangup(master: int) -> str:
    output = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the last holder of the pty's slave is gone
            break
        if not chunk:
            break
        output += chunk
    return output.replace(b"\r", b"").decode()


def test_exec_tty(runtime: Runtime) -> None:
    """exec --tty --detach (as podman and the containerd shim call it): the process runs on a pty of the
    container whose master comes over --console-socket; its pid is in the pid file."""
    bundle = runtime.bundle(["sleep", "100"], devpts=True)  # runc's exec opens the pty of /dev/pts
    assert runtime.create("x", bundle, **_devnull()).returncode == 0
    assert runtime.run("start", "x").returncode == 0
    process = runtime.tmp / "tty-process.json"
    process.write_text(json.dumps({"terminal": True, "args": ["sh", "-c", "tty; echo in-tty"], "cwd": "/",
                                   "env": ["PATH=/bin", "TERM=xterm"]}))
    path = str(runtime.tmp / "exec-console.sock")
    pid_file = runtime.tmp / "exec-tty.pid"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        listener.settimeout(TIMEOUT)
        execed = runtime.run("exec", "--tty", "--detach", "--console-socket", path, "--pid-file", str(pid_file),
                             "--process", str(process), "x", stdin=subprocess.DEVNULL)
        assert execed.returncode == 0, execed.stderr
        conn, _ = listener.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    assert len(fds) == 1 and int(pid_file.read_text()) > 0
    try:
        output = _read_until_hangup(fds[0])
    finally:
        os.close(fds[0])
    name, said = output.split()
    assert name.startswith("/dev/pts/") and said == "in-tty"
    assert runtime.run("kill", "x", "KILL").returncode == 0
    assert runtime.wait_status("x", "stopped")["status"] == "stopped"
    assert runtime.run("delete", "x").returncode == 0
