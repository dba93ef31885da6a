"""A private containerd for tier 2, started by the test and ended by its PID.

The daemon runs in a mount namespace of its own with a tmpfs over /run: the runc v2 shim keeps its
sockets in /run/containerd/s (not configurable in containerd 1.6), and the host's /run/containerd
must stay untouched. Its root, state and socket are in a temporary directory; ``ctr`` gets
``--runc-root`` and ``--fifo-dir`` there too. Each test uses a namespace of its own, so the
containers' cgroups (``/<namespace>/<id>`` in every hierarchy) are its own, removed at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from .podman import remove_cgroup_tree

CALL_TIMEOUT = 60.0


def _mount_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _pids_in_mount_ns(namespace: str) -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit() and _mount_ns(int(name)) == namespace]


class Containerd:
    """The daemon, and ``ctr`` calls against it running tasks on ``runtime`` (a path)."""

    def __init__(self, runtime: str) -> None:
        self.runtime = runtime
        # Short: the daemon's unix socket path must fit in sun_path.
        self.work = Path(tempfile.mkdtemp(prefix="lxf-ctd-", dir="/tmp"))
        self.namespace = f"lxfoci{uuid.uuid4().hex[:10]}"
        self.socket = self.work / "c.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self.mount_ns: str | None = None
        for sub in ("root", "state", "runc", "fifo"):
            (self.work / sub).mkdir()
        (self.work / "config.toml").write_text(f"""\
version = 2
root = "{self.work / 'root'}"
state = "{self.work / 'state'}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""
""")
        self.env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                    "CONTAINERD_ADDRESS": str(self.socket), "CONTAINERD_NAMESPACE": self.namespace}

    def start(self, timeout: float = 20.0) -> None:
        script = f"mount -t tmpfs -o mode=0755 lxf-ctd /run && exec containerd --config {self.work / 'config.toml'}"
        with open(self.work / "containerd.log", "wb") as log:
            self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         # lxcframe-oci's server, started by its shim's calls, leaves a
                                         # second after the last (stop waits for the daemon's processes).
                                         env={**os.environ, "LXCFRAME_SUPERVISOR_IDLE": "1"})
        deadline = time.monotonic() + timeout
        while not self.socket.exists():
            assert self.proc.poll() is None, f"containerd exited {self.proc.returncode}: {self.log()}"
            assert time.monotonic() < deadline, f"containerd did not listen in {timeout}s: {self.log()}"
            time.sleep(0.02)
        self.mount_ns = _mount_ns(self.proc.pid)

    def log(self) -> str:
        return (self.work / "containerd.log").read_text(errors="replace")[-4000:]

    def ctr(self, *args: str, timeout: float = CALL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(["ctr", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  env=self.env, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as err:
            return subprocess.CompletedProcess(err.cmd, -1, str(err.stdout or ""), f"timed out after {timeout}s")

    def run_argv(self, *args: str) -> list[str]:
        """``ctr run`` with the runtime binary, private runc root and FIFO dir; then ``args``."""
        return ["run", "--runc-binary", self.runtime, "--runc-root", str(self.work / "runc"),
                "--fifo-dir", str(self.work / "fifo"), "--env", "PATH=/bin", *args]

    def task_status(self, cid: str) -> str:
        for line in self.ctr("task", "ls").stdout.splitlines()[1:]:
            words = line.split()
            if words and words[0] == cid:
                return words[-1]
        return "none"

    def wait_status(self, cid: str, status: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while (found := self.task_status(cid)) != status and time.monotonic() < deadline:
            time.sleep(0.05)
        return found

    def stop(self) -> list[str]:
        """Remove every task and container, end the daemon and its shims by PID, remove its dirs and cgroups."""
        problems = []
        if self.proc is not None and self.proc.poll() is None:
            for line in self.ctr("task", "ls", "-q").stdout.split():
                self.ctr("task", "kill", "-s", "SIGKILL", line)
                self.wait_status(line, "STOPPED", timeout=10)
                self.ctr("task", "delete", "-f", line)
            for line in self.ctr("container", "ls", "-q").stdout.split():
                self.ctr("container", "delete", line)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                problems.append("containerd did not stop on SIGTERM")
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.mount_ns is not None:  # shims that outlived the daemon: they are in its mount namespace
            deadline = time.monotonic() + 10
            while (left := _pids_in_mount_ns(self.mount_ns)) and time.monotonic() < deadline:
                time.sleep(0.05)
            for pid in left:
                problems.append(f"process {pid} of the daemon's mount namespace left: killed")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        left_cgroups = remove_cgroup_tree(self.namespace)
        if left_cgroups:
            problems.append(f"cgroups left: {left_cgroups}")
        shutil.rmtree(self.work, ignore_errors=True)
        return problems
