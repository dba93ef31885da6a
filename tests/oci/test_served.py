"""Which process runs an OCI command: ``create`` in the caller's (init must be its child), the commands
on a created container in a worker of the warm server of the ``--root``, which ``create`` starts."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

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
    while True:
        with contextlib.closing(socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)) as probe:
            try:
                probe.connect(str(rundir / "supervisor.sock"))
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"no server of {rundir} within {timeout} s") from None
                time.sleep(0.02)
                continue
            pid, _, _ = struct.unpack("3i", probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            return int(pid)


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


def test_commands_on_a_created_container_run_in_the_roots_server(served: Runtime) -> None:
    bundle = served.bundle(["sleep", "100"])
    assert served.create("s1", bundle, **_devnull()).returncode == 0
    server = _server_pid(served.root / ".run")  # started by create for the commands after it

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
    # A failure reaches the caller as runc's: its message on stderr, exit status 1 (served while the
    # root holds a container).
    assert served.create("s0", bundle, **_devnull()).returncode == 0
    done, imported = _imports(served, "state", "s1")
    assert (done.returncode, imported) == (1, False)
    assert "container s1 does not exist" in done.stderr
    assert _server_pid(served.root / ".run") == server


def test_without_the_server_every_command_runs_in_the_callers_process(served: Runtime) -> None:
    served.env["LXCFRAME_SERVER"] = "0"
    bundle = served.bundle(["sleep", "100"])
    assert served.create("s2", bundle, **_devnull()).returncode == 0
    done, imported = _imports(served, "delete", "--force", "s2")
    assert (done.returncode, imported) == (0, True), done.stderr
    assert not (served.root / ".run" / "supervisor.sock").exists()


def test_a_root_that_holds_no_container_starts_no_server(served: Runtime) -> None:
    done, imported = _imports(served, "state", "nothing-here")
    assert (done.returncode, imported) == (1, True)  # run here: there is nothing to serve
    assert "container nothing-here does not exist" in done.stderr
    assert not (served.root / ".run" / "supervisor.sock").exists()
