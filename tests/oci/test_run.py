"""``run``: create and start in one command that waits for the container, passes signals on to it,
deletes it and exits with its status; ``--detach`` leaves it running; on runc and lxcframe-oci alike."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..oci_tiers.runtimes import make_busybox_rootfs
from .test_lifecycle import TIMEOUT, Runtime, rootfs, runtime  # noqa: F401 (fixtures)


def test_run_waits_and_exits_with_the_containers_status(runtime: Runtime) -> None:  # noqa: F811
    bundle = runtime.bundle(["sh", "-c", "echo from-the-container; exit 3"])
    done = runtime.run("run", "--bundle", str(bundle), "r1", stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stdout) == (3, "from-the-container\n"), done.stderr
    assert runtime.run("state", "r1").returncode == 1  # deleted once it stopped


def test_run_keep_leaves_the_stopped_container(runtime: Runtime) -> None:  # noqa: F811
    bundle = runtime.bundle(["true"])
    runtime.ids.append("r2")
    done = runtime.run("run", "--keep", "--bundle", str(bundle), "r2", stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert runtime.state("r2")["status"] == "stopped"
    assert runtime.run("delete", "r2").returncode == 0


def test_run_detach_leaves_it_running(runtime: Runtime) -> None:  # noqa: F811
    bundle = runtime.bundle(["sleep", "100"])
    runtime.ids.append("r3")
    # The container keeps run's stdio: not pipes this test would wait on.
    done = subprocess.run([*runtime.argv, "run", "--detach", "--bundle", str(bundle), "r3"], env=runtime.env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=TIMEOUT, check=False)
    assert done.returncode == 0
    assert runtime.state("r3")["status"] == "running"
    assert runtime.run("kill", "r3", "KILL").returncode == 0
    assert runtime.wait_status("r3", "stopped")["status"] == "stopped"
    assert runtime.run("delete", "r3").returncode == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_run_passes_its_signals_on_to_the_container(runtime: Runtime, tmp_path: Path,  # noqa: F811
                                                    signum: signal.Signals) -> None:
    name = signum.name
    script = f"trap 'echo got-{name}; exit 7' {name[3:]}; echo ready; while :; do sleep 0.05; done"
    bundle = runtime.bundle(["sh", "-c", script])
    running = subprocess.Popen([*runtime.argv, "run", "--bundle", str(bundle), "r4"], env=runtime.env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert running.stdout is not None
        assert running.stdout.readline() == "ready\n"
        running.send_signal(signum)
        out, err = running.communicate(timeout=TIMEOUT)
    finally:
        if running.poll() is None:
            runtime.run("delete", "--force", "r4")
            running.kill()
            running.wait(TIMEOUT)
    assert (running.returncode, out) == (7, f"got-{name}\n"), err
    deadline = time.monotonic() + 10
    while runtime.run("state", "r4").returncode == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runtime.run("state", "r4").returncode == 1


@pytest.mark.parametrize(("action", "status"), [("SCMP_ACT_KILL_PROCESS", 128 + signal.SIGSYS),
                                                ("SCMP_ACT_LOG", 0)])
def test_seccomp_kill_process_and_log_actions(runtime: Runtime, action: str, status: int) -> None:  # noqa: F811
    made = f"made-by-{runtime.name}-{action}"  # the root is shared: each run its own directory
    bundle = runtime.bundle(["mkdir", f"/{made}"])
    config = json.loads((bundle / "config.json").read_text())
    config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                  "syscalls": [{"names": ["mkdir", "mkdirat"], "action": action}]}
    (bundle / "config.json").write_text(json.dumps(config))
    try:
        done = runtime.run("run", "--bundle", str(bundle), "r5", stdin=subprocess.DEVNULL)
    finally:
        with contextlib.suppress(FileNotFoundError):
            (runtime.rootfs / made).rmdir()
    assert done.returncode == status, done.stderr


@pytest.fixture(scope="module")
def open_rootfs() -> Iterator[Path]:
    """A busybox root whose every parent directory others may search: the root of a user namespace is
    nobody on the host (pytest's temporary directories are 0700)."""
    parent = Path(tempfile.mkdtemp(prefix="lxcframe-oci-userns-", dir="/tmp"))
    parent.chmod(0o755)
    try:
        yield make_busybox_rootfs(parent / "rootfs")
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def test_a_user_namespace_from_the_bundles_id_maps(runtime: Runtime, open_rootfs: Path) -> None:  # noqa: F811
    runtime.rootfs = open_rootfs
    bundle = runtime.bundle(["sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; "
                                         "stat -c '%u %g' /bin/busybox; head -1 /sys/fs/cgroup/pids/cgroup.procs"],
                            devpts=True)  # a /dev of its own
    config = json.loads((bundle / "config.json").read_text())
    # No cgroup namespace: cgroupfs cannot be mounted in the user namespace, the container's own cgroup
    # is bound in its place (its init is pid 1 there).
    config["mounts"] += [{"destination": "/sys", "type": "sysfs", "source": "sysfs",
                          "options": ["nosuid", "noexec", "nodev", "ro"]},
                         {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                          "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}]
    config["linux"]["namespaces"].append({"type": "user"})
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    (bundle / "config.json").write_text(json.dumps(config))
    done = runtime.run("run", "--bundle", str(bundle), "r6", stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()
    # Root inside is 200000 outside, with the cgroups of a bundle that has no cgroup namespace.
    assert words[:8] == ["0", "0", "0", "200000", "65536", "0", "200000", "65536"], done.stdout
    # The root's files, the host's root's: runc shows them as nobody's; lxcframe mounts the root
    # idmapped (the map applied to its owners), so they are the container's root's.
    assert words[8:10] == (["65534", "65534"] if runtime.name == "runc" else ["0", "0"]), done.stdout
    assert words[10:] == ["1"], done.stdout
