"""A private podman for tier 1: its own containers.conf, storage.conf, storage, run and temporary dirs.

Nothing of the host's podman is used or changed: the image is imported from a busybox tarball, the
storage is vfs (no overlay mounts left in the host's mount table), locks are files below ``tmp_dir``,
containers have no network, and every cgroup lands below a parent named for this test (podman's
``--cgroup-parent``, which it also uses for conmon's own ``<parent>/conmon``), removed at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from lxcframe.oci.layout import RUN_DIR
from lxcframe.testing import wait_for_supervisor_exit

IMAGE = "localhost/lxcframe-bb:test"
SUPPORTS_JSON = ["crun", "runc", "kata", "runsc", "youki", "krun", "lxcframe-oci"]
CALL_TIMEOUT = 60.0
#: Where each runtime keeps its containers' state when podman calls it (no ``--root``).
DEFAULT_ROOTS = {"runc": "/run/runc", "crun": "/run/crun", "lxcframe-oci": "/run/lxcframe-oci"}


def cgroup_hierarchies() -> list[Path]:
    """The mount point of every cgroup hierarchy (v1 controllers, named ones and the v2 one)."""
    found = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            before, _, after = line.partition(" - ")
            if after.split()[:1] in (["cgroup"], ["cgroup2"]) and before.split()[3] == "/":
                found.append(Path(before.split()[4]))
    return found


def remove_cgroup_tree(name: str, timeout: float = 10.0) -> list[str]:
    """rmdir ``/name`` and what is below it in every hierarchy, deepest first; returns what stayed."""
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for top in cgroup_hierarchies():
            path = top / name
            if not path.is_dir():
                continue
            for directory, _subdirs, _files in sorted(os.walk(path), key=lambda entry: -len(entry[0])):
                with contextlib.suppress(OSError):
                    os.rmdir(directory)
            if path.is_dir():
                left.append(str(path))
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


class Podman:
    """podman with private configuration in a directory of its own, running containers on ``runtime`` (a path)."""

    def __init__(self, runtime: str) -> None:
        # Short: with a long tmp_dir, conmon's sockets and exit files get paths podman never sees
        # answered in time, and every run waits out conmon's 20 s timeout.
        work = self.work = Path(tempfile.mkdtemp(prefix="lxf-pm-", dir="/tmp"))
        self.runtime = runtime
        self.cgroup_parent = f"lxcframe-oci-tier1-{uuid.uuid4().hex[:12]}"
        for sub in ("storage", "runroot", "tmp", "libpod", "cni", "vartmp"):
            (work / sub).mkdir(parents=True, exist_ok=True)
        (work / "containers.conf").write_text(f"""\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "none"
[network]
network_config_dir = "{work / 'cni'}"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{work / 'events.log'}"
tmp_dir = "{work / 'libpod'}"
lock_type = "file"
runtime_supports_json = {SUPPORTS_JSON!r}
""".replace("'", '"'))
        (work / "storage.conf").write_text(f"""\
[storage]
driver = "vfs"
graphroot = "{work / 'storage'}"
runroot = "{work / 'runroot'}"
""")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": str(work),
            "CONTAINERS_CONF": str(work / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(work / "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(work / "registries.conf"),
            "TMPDIR": str(work / "tmp"),
            # lxcframe-oci's server (of its default root) leaves a second after the last command.
            "LXCFRAME_SUPERVISOR_IDLE": "1",
        }
        (work / "registries.conf").write_text('unqualified-search-registries = []\n')

    def argv(self, *args: str) -> list[str]:
        # No --runtime-flag=root=…: podman's cleanup process (conmon's exit command) calls ``delete
        # --force`` without it, so the runtime keeps its state in its default root, as in real use.
        return ["podman", "--runtime", self.runtime, *args]

    def __call__(self, *args: str, stdin: str | None = None,
                 timeout: float = CALL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(self.argv(*args), input=stdin,
                                  stdin=None if stdin is not None else subprocess.DEVNULL, capture_output=True,
                                  text=True, env=self.env, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as err:
            return subprocess.CompletedProcess(err.cmd, -1, str(err.stdout or ""), f"timed out after {timeout}s")

    def run_args(self, *args: str) -> list[str]:
        """``run`` with no network and this test's cgroup parent, then ``args``."""
        return ["run", "--network", "none", f"--cgroup-parent=/{self.cgroup_parent}", *args]

    def import_image(self, tarball: Path) -> None:
        done = self("import", "--change", 'CMD ["/bin/sh"]', str(tarball), IMAGE)
        assert done.returncode == 0, f"podman import: {done.stderr}"

    def teardown(self) -> list[str]:
        """Remove every container and image and the storage, then this test's cgroups; returns problems."""
        problems = []
        for args in (("rm", "-af", "-t", "0"), ("rmi", "-af"), ("system", "reset", "-f")):
            done = self(*args)
            if done.returncode != 0:
                problems.append(f"podman {' '.join(args)}: {done.stderr.strip()}")
        try:
            wait_for_supervisor_exit(Path(DEFAULT_ROOTS["lxcframe-oci"]) / RUN_DIR)
        except TimeoutError as err:
            problems.append(str(err))
        left = remove_cgroup_tree(self.cgroup_parent)
        if left:
            problems.append(f"cgroups left: {left}")
        shutil.rmtree(self.work, ignore_errors=True)
        return problems
