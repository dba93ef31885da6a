"""Tier 1: podman and conmon end to end on an OCI runtime given by path (``podman --runtime PATH``).

Each test has a private podman (tests/oci_tiers/podman.py) with a busybox image imported from a
tarball; runc runs every case as the control, the runtime under test the same ones. Serial: podman
writes cgroups at the top of every hierarchy (below a parent named for the test, removed after).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .podman import DEFAULT_ROOTS, IMAGE, Podman
from .runtimes import lxcframe_oci_path, resolve, runtime_params

pytestmark = [pytest.mark.serial, pytest.mark.container]


@pytest.fixture(scope="session")
def busybox_tarball(busybox_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oci-image") / "busybox-rootfs.tar"
    with tarfile.open(path, "w") as tar:
        tar.add(busybox_rootfs, arcname=".")
    return path


@pytest.fixture(scope="session")
def runtime_roots() -> None:
    """The runtimes' default state roots (podman passes no ``--root``), made before the first test's
    host snapshot: the runtime makes its root on first use and keeps it, as runc does /run/runc."""
    for name in ("runc", "lxcframe-oci") if lxcframe_oci_path() else ("runc",):
        os.makedirs(DEFAULT_ROOTS[name], mode=0o700, exist_ok=True)


@pytest.fixture(params=runtime_params())
def podman(request: pytest.FixtureRequest, busybox_tarball: Path, runtime_roots: None) -> Iterator[Podman]:
    runtime = resolve(request.param)
    root = Path(DEFAULT_ROOTS[request.param])
    before = set(os.listdir(root))
    engine = Podman(runtime)
    try:
        engine.import_image(busybox_tarball)
        yield engine
    finally:
        problems = engine.teardown()
    left = set(os.listdir(root)) - before
    assert not problems and not left, "; ".join(problems) + f" runtime state left in {root}: {sorted(left)}"


def _ok(done: subprocess.CompletedProcess[str], rc: int = 0) -> subprocess.CompletedProcess[str]:
    assert done.returncode == rc, f"{shlex.join(done.args)} exited {done.returncode}, not {rc}:\n{done.stderr}"
    return done


def test_run_true(podman: Podman) -> None:
    _ok(podman(*podman.run_args("--rm", IMAGE, "/bin/true")))


def test_exit_status_and_stdout(podman: Podman) -> None:
    _ok(podman(*podman.run_args("--rm", IMAGE, "sh", "-c", "exit 3")), 3)
    done = _ok(podman(*podman.run_args("--rm", IMAGE, "sh", "-c", "echo hello from $(hostname)")))
    assert done.stdout.startswith("hello from "), done.stdout


def test_stdin(podman: Podman) -> None:
    done = _ok(podman(*podman.run_args("--rm", "-i", IMAGE, "sh", "-c", 'read line; echo "got $line"'), stdin="abc\n"))
    assert done.stdout == "got abc\n"


def test_tty(podman: Podman) -> None:
    """``-t``: the runtime hands conmon a pty (``--console-socket``); run under script(1) for a terminal."""
    command = ["sh", "-c", "test -t 0 && tty && echo tty=yes"]
    inner = shlex.join(podman.argv(*podman.run_args("--rm", "-t", IMAGE, *command)))
    done = subprocess.run(["script", "-qec", inner, "/dev/null"], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, env=podman.env, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "/dev/pts/0" in done.stdout and "tty=yes" in done.stdout, done.stdout


def test_detached_exec_pause_stop_rm(podman: Podman) -> None:
    _ok(podman(*podman.run_args("-d", "--name", "t1d", IMAGE, "sh", "-c", "while :; do sleep 0.1; done")))
    _ok(podman("exec", "t1d", "sh", "-c", "exit 5"), 5)
    assert _ok(podman("exec", "t1d", "echo", "inside")).stdout == "inside\n"
    _ok(podman("pause", "t1d"))
    assert _ok(podman("inspect", "--format", "{{.State.Status}}", "t1d")).stdout.strip() == "paused"
    _ok(podman("unpause", "t1d"))
    assert _ok(podman("inspect", "--format", "{{.State.Status}}", "t1d")).stdout.strip() == "running"
    _ok(podman("stop", "-t", "1", "t1d"))
    assert _ok(podman("inspect", "--format", "{{.State.Status}}", "t1d")).stdout.strip() == "exited"
    _ok(podman("rm", "t1d"))
    assert _ok(podman("ps", "-aq")).stdout == ""


def test_create_then_start_attached(podman: Podman) -> None:
    _ok(podman("create", "--network", "none", f"--cgroup-parent=/{podman.cgroup_parent}", "--name", "t1c", IMAGE,
               "sh", "-c", "echo attached; exit 4"))
    done = _ok(podman("start", "-a", "t1c"), 4)
    assert done.stdout == "attached\n"
    _ok(podman("rm", "t1c"))


@pytest.mark.parametrize(("command", "rc"), [("/nonexistent", 127), ("/etc/passwd", 126)],
                         ids=["not-found", "not-executable"])
def test_exec_errors_map(podman: Podman, command: str, rc: int) -> None:
    """podman turns the runtime's message into 127 (no such file) or 126 (permission denied)."""
    _ok(podman(*podman.run_args("--rm", IMAGE, command)), rc)


def test_stats_and_top_read_the_cgroups(podman: Podman) -> None:
    # One long sleep: a short one in a loop leaves moments with no sleep process for top to see.
    _ok(podman(*podman.run_args("-d", "--name", "t1s", IMAGE, "sh", "-c", "while :; do sleep 3600; done")))
    inspect = json.loads(_ok(podman("inspect", "t1s")).stdout)[0]
    cid = inspect["Id"]
    cgroup = f"/{podman.cgroup_parent}/libpod-{cid}"
    pid = inspect["State"]["Pid"]
    with open(f"/proc/{pid}/cgroup") as handle:
        memory = [line.split(":", 2)[2].strip() for line in handle if line.split(":")[1] == "memory"]
    assert memory == [cgroup], "the runtime must honour linux.cgroupsPath literally"
    stats = json.loads(_ok(podman("stats", "--no-stream", "--format", "json", "t1s")).stdout)
    assert stats and stats[0]["id"].startswith(cid[:12]) and stats[0]["pids"] not in ("0", "", 0), stats
    deadline = time.monotonic() + 10
    while True:  # the shell may not have started its sleep yet
        top = _ok(podman("top", "t1s", "pid", "comm")).stdout
        if "sleep" in top or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert "sh" in top and "sleep" in top, top
    _ok(podman("rm", "-f", "-t", "0", "t1s"))


def test_kill_signal_wait_restart(podman: Podman) -> None:
    """``podman kill -s USR1`` reaches the runtime as ``kill ID 10``; ``wait`` gives the exit; ``restart`` reruns."""
    trap = "trap 'exit 7' USR1; echo up; while :; do sleep 0.1; done"
    _ok(podman(*podman.run_args("-d", "--name", "t1k", IMAGE, "sh", "-c", trap)))
    _ok(podman("kill", "-s", "USR1", "t1k"))
    assert _ok(podman("wait", "t1k")).stdout.strip() == "7"
    _ok(podman("restart", "-t", "1", "t1k"))
    assert _ok(podman("inspect", "--format", "{{.State.Status}}", "t1k")).stdout.strip() == "running"
    _ok(podman("kill", "-s", "SIGUSR1", "t1k"))
    assert _ok(podman("wait", "t1k")).stdout.strip() == "7"
    assert _ok(podman("logs", "t1k")).stdout == "up\nup\n"
    _ok(podman("rm", "t1k"))


def test_update_cpu_shares(podman: Podman) -> None:
    """``podman update`` hands the runtime a LinuxResources file; the cgroup podman reads shows it."""
    _ok(podman(*podman.run_args("-d", "--name", "t1u", IMAGE, "sh", "-c", "while :; do sleep 0.1; done")))
    cid = _ok(podman("inspect", "--format", "{{.Id}}", "t1u")).stdout.strip()
    _ok(podman("update", "--cpu-shares", "512", "t1u"))
    shares = Path(f"/sys/fs/cgroup/cpu/{podman.cgroup_parent}/libpod-{cid}/cpu.shares")
    assert shares.read_text().strip() == "512"
    _ok(podman("rm", "-f", "-t", "0", "t1u"))


def test_init_process(podman: Podman) -> None:
    """``--init``: catatonit is bind-mounted in as /run/podman-init, the container's init, the command below it."""
    done = _ok(podman(*podman.run_args("--rm", "--init", IMAGE, "sh", "-c", "cat /proc/1/comm; exit 2")), 2)
    assert done.stdout.strip() == "podman-init"
