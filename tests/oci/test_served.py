"""Which process runs an OCI command: ``create`` in the caller's (init must be its child), the commands
on a created container in a worker of the warm server of the ``--root`` when one runs; no command
starts a server, which would outlive it in the orchestrator's cgroups."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcframe.run_root import SOCKET_NAME, listening_pid
from lxcframe.testing import wait_for_supervisor_exit

from .test_lifecycle import TIMEOUT, Runtime, _devnull, rootfs, runtime_env  # noqa: F401 (rootfs: a fixture)

#: A module the command's own process imports only when it runs the command itself.
COMMAND_MODULE = "lxcframe.oci.lifecycle"


@pytest.fixture
def served(tmp_path: Path, rootfs: Path, host: object) -> Iterator[Runtime]:  # noqa: F811
    env = runtime_env(tmp_path, "lxcframe")
    env["LXCFRAME_SUPERVISOR_IDLE"] = "5"
    env.pop("LXCFRAME_SERVER", None)
    made = Runtime("lxcframe", tmp_path, rootfs, env)
    made.argv = [sys.executable, "-m", "lxcframe.oci.entry", "--root", str(made.root)]
    try:
        yield made
    finally:
        for container_id in made.ids:
            made.run("delete", "--force", container_id)
        _stop_server(made.root / ".run")


def _server_pid(rundir: Path, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    while (pid := listening_pid(str(rundir / SOCKET_NAME))) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"no server of {rundir} within {timeout} s")
        time.sleep(0.02)
    return pid


def _stop_server(rundir: Path) -> None:
    """The server leaves when idle; one that does not is ended by its pid (it is this test's)."""
    try:
        wait_for_supervisor_exit(rundir, timeout=15)
    except TimeoutError:
        with contextlib.suppress(AssertionError, ProcessLookupError):
            os.kill(_server_pid(rundir, timeout=0), 9)
        raise


def _imports(runtime: Runtime, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], bool]:
    """Run the command with ``-X importtime``: its result, and whether this process imported the command."""
    argv = [runtime.argv[0], "-X", "importtime", *runtime.argv[1:], *args]
    done = subprocess.run(argv, capture_output=True, text=True, env={**runtime.env, **env}, timeout=TIMEOUT,
                          check=False)
    return done, f"| {COMMAND_MODULE}\n" in done.stderr


def _spawn_server(runtime: Runtime) -> int:
    """The root's server, started as an operator would (``python -m lxcframe.supervisor``)."""
    env = {**runtime.env, "LXCFRAME_RUNDIR": str(runtime.root / ".run")}
    (runtime.root / ".run").mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "lxcframe.supervisor"], env=env, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=TIMEOUT, check=True)
    return _server_pid(runtime.root / ".run")


def test_commands_on_a_created_container_run_in_the_roots_server(served: Runtime) -> None:
    bundle = served.bundle(["sleep", "100"])
    assert served.create("s1", bundle, **_devnull()).returncode == 0
    server = _spawn_server(served)

    done, imported = _imports(served, "state", "s1")
    assert done.returncode == 0, done.stderr
    assert (json.loads(done.stdout)["status"], imported) == ("created", False)
    # LXCFRAME_SERVER=0: the same command, run by the caller's own process.
    done, imported = _imports(served, "state", "s1", LXCFRAME_SERVER="0")
    assert (json.loads(done.stdout)["status"], imported) == ("created", True)

    done, imported = _imports(served, "start", "s1")
    assert (done.returncode, imported) == (0, False), done.stderr
    assert served.state("s1")["status"] == "running"
    done, imported = _imports(served, "kill", "s1", "KILL")
    assert (done.returncode, imported) == (0, False), done.stderr
    assert served.wait_status("s1", "stopped")["status"] == "stopped"
    done, imported = _imports(served, "delete", "s1")
    assert (done.returncode, imported) == (0, False), done.stderr
    assert not (served.root / "s1").exists()
    # A failure reaches the caller as runc's: its message on stderr, exit status 1.
    done, imported = _imports(served, "state", "s1")
    assert (done.returncode, imported) == (1, False)
    assert "container s1 does not exist" in done.stderr
    assert _server_pid(served.root / ".run") == server


def test_no_command_starts_a_server_and_none_outlives_the_container(served: Runtime) -> None:
    """Without a server every command runs in its caller's process, and nothing of the runtime is left
    once ``delete`` returned: no process in the caller's cgroup (an orchestrator removes it), no server."""
    bundle = served.bundle(["sleep", "100"])
    assert served.create("s2", bundle, **_devnull()).returncode == 0
    for args in (("state", "s2"), ("start", "s2"), ("kill", "s2", "KILL")):
        done, imported = _imports(served, *args)
        assert (done.returncode, imported) == (0, True), done.stderr
    served.wait_status("s2", "stopped")
    done, imported = _imports(served, "delete", "s2")
    assert (done.returncode, imported) == (0, True), done.stderr
    assert not (served.root / ".run" / "supervisor.sock").exists()
    assert _processes_of(served.root) == []


def _processes_of(root: Path) -> list[str]:
    """Processes whose environment names ``root``'s run directory (what lxcframe-oci gives what it starts)."""
    mark = f"LXCFRAME_RUNDIR={root / '.run'}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        with contextlib.suppress(OSError), open(f"/proc/{entry}/environ", "rb") as handle:
            if mark in handle.read().split(b"\0"):
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    words = cmdline.read().split(b"\0")
                found.append(f"{entry}: {b' '.join(words).decode(errors='replace')}")
    return found
