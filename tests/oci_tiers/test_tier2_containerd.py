"""Tier 2: containerd's runc v2 shim driving an OCI runtime given by path (``ctr run --runc-binary``).

The shim is what Kubernetes reaches through containerd's CRI plugin (``options.BinaryName``), so this
is the tested part of running under Kubernetes. Each test starts a private containerd
(tests/oci_tiers/containerd.py) and ends it by PID; containers run on the busybox rootfs directly
(``--rootfs``), with no image. Every call has a timeout: a runtime that loses an exit hangs ctr.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .containerd import Containerd
from .runtimes import resolve, runtime_params

pytestmark = [pytest.mark.serial, pytest.mark.container]
LOOP = "while :; do sleep 0.1; done"


@pytest.fixture(params=runtime_params())
def containerd(request: pytest.FixtureRequest) -> Iterator[Containerd]:
    daemon = Containerd(resolve(request.param))
    try:
        daemon.start()
        yield daemon
    finally:
        problems = daemon.stop()
    assert not problems, "; ".join(problems)


def _ok(done: subprocess.CompletedProcess[str], rc: int = 0) -> subprocess.CompletedProcess[str]:
    assert done.returncode == rc, f"{shlex.join(done.args)} exited {done.returncode}, not {rc}:\n{done.stderr}"
    return done


def test_run_exit_status_and_stdout(containerd: Containerd, busybox_rootfs: Path) -> None:
    rootfs = str(busybox_rootfs)
    _ok(containerd.ctr(*containerd.run_argv("--rm", "--rootfs", rootfs, "t2true", "/bin/true")))
    _ok(containerd.ctr(*containerd.run_argv("--rm", "--rootfs", rootfs, "t2exit", "sh", "-c", "exit 3")), 3)
    done = _ok(containerd.ctr(*containerd.run_argv("--rm", "--rootfs", rootfs, "t2echo", "sh", "-c", "echo ok")))
    assert done.stdout == "ok\n"


def test_run_missing_executable_fails(containerd: Containerd, busybox_rootfs: Path) -> None:
    done = containerd.ctr(*containerd.run_argv("--rm", "--rootfs", str(busybox_rootfs), "t2miss", "/nonexistent"))
    assert done.returncode != 0
    assert "no such file or directory" in done.stderr.lower(), done.stderr
    assert containerd.ctr("container", "ls", "-q").stdout.split() == []


def test_run_tty(containerd: Containerd, busybox_rootfs: Path) -> None:
    """``-t``: the shim passes ``--console-socket`` and copies the pty; script(1) gives ctr a terminal."""
    inner = shlex.join(["ctr", *containerd.run_argv("--rm", "-t", "--rootfs", str(busybox_rootfs), "t2tty",
                                                     "sh", "-c", "tty; test -t 1 && echo tty=yes")])
    done = subprocess.run(["script", "-qec", inner, "/dev/null"], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, env=containerd.env, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "/dev/pts/0" in done.stdout and "tty=yes" in done.stdout, done.stdout


def test_detached_task_exec_pause_ps_kill_delete(containerd: Containerd, busybox_rootfs: Path) -> None:
    ctr = containerd.ctr
    _ok(ctr(*containerd.run_argv("-d", "--rootfs", str(busybox_rootfs), "t2d", "sh", "-c", LOOP)))
    assert containerd.wait_status("t2d", "RUNNING") == "RUNNING"
    _ok(ctr("task", "exec", "--exec-id", "e5", "--fifo-dir", str(containerd.work / "fifo"), "t2d", "sh", "-c",
            "exit 5"), 5)
    done = _ok(ctr("task", "exec", "--exec-id", "echo", "--fifo-dir", str(containerd.work / "fifo"), "t2d",
                   "echo", "inside"))
    assert done.stdout == "inside\n"
    _ok(ctr("task", "pause", "t2d"))
    assert containerd.task_status("t2d") == "PAUSED"
    _ok(ctr("task", "resume", "t2d"))
    assert containerd.task_status("t2d") == "RUNNING"
    ps = _ok(ctr("task", "ps", "t2d")).stdout.split("\n")[1:]
    init = next(line.split()[1] for line in _ok(ctr("task", "ls")).stdout.splitlines() if line.startswith("t2d "))
    assert any(line.split()[:1] == [init] for line in ps), ps
    metrics = _ok(ctr("task", "metrics", "t2d")).stdout
    assert "memory" in metrics.lower() or "pids" in metrics.lower(), metrics
    _ok(ctr("task", "kill", "-s", "SIGKILL", "t2d"))
    assert containerd.wait_status("t2d", "STOPPED") == "STOPPED"
    _ok(ctr("task", "delete", "t2d"))
    _ok(ctr("container", "delete", "t2d"))
    assert ctr("task", "ls", "-q").stdout.split() == []


def test_exec_tty_and_kill_all(containerd: Containerd, busybox_rootfs: Path) -> None:
    """``task exec -t`` (``exec --tty --console-socket``) and ``task kill --all`` (``kill --all ID 9``)."""
    ctr = containerd.ctr
    _ok(ctr(*containerd.run_argv("-d", "--rootfs", str(busybox_rootfs), "t2a", "sh", "-c",
                                 "sleep 1000 & sleep 1000 & wait")))
    assert containerd.wait_status("t2a", "RUNNING") == "RUNNING"
    inner = shlex.join(["ctr", "task", "exec", "-t", "--exec-id", "tty", "--fifo-dir", str(containerd.work / "fifo"),
                        "t2a", "sh", "-c", "tty; exit 3"])
    done = subprocess.run(["script", "-qec", inner, "/dev/null"], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, env=containerd.env, timeout=60, check=False)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "/dev/pts/" in done.stdout, done.stdout
    assert len(_ok(ctr("task", "ps", "t2a")).stdout.split("\n")[1:-1]) == 3
    _ok(ctr("task", "kill", "--all", "-s", "SIGKILL", "t2a"))
    assert containerd.wait_status("t2a", "STOPPED") == "STOPPED"
    _ok(ctr("task", "delete", "t2a"))
    _ok(ctr("container", "delete", "t2a"))
