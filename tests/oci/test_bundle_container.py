"""Real busybox containers started from a bundle's translated config through lxcframe's library: the
config file holds the bundle's lines, ``Container.start`` runs ``process.args`` in the foreground, and
what the process saw comes back through a bind mount of the bundle."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lxcframe.container import Container
from lxcframe.oci.bundle import read_bundle

from ..oci_tiers.runtimes import make_busybox_rootfs

pytestmark = pytest.mark.usefixtures("host")


@pytest.fixture(scope="module")
def busybox_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox root (docs of the OCI mode, §1.2): the host's static busybox and its applets as links,
    a second user and directories the scripts write to."""
    root = make_busybox_rootfs(tmp_path_factory.mktemp("bundle-root") / "rootfs")
    for sub in ("out", "work"):
        (root / sub).mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nuser:x:1000:\n")
    return root


SCRIPT = """
hostname > /out/hostname
echo "$GREETING" > /out/env
pwd > /out/cwd
id -u > /out/uid
id -g > /out/gid
id -G > /out/groups
cat /proc/self/mountinfo > /out/mountinfo
cat /proc/self/cgroup > /out/cgroup
grep -E '^(Cap|NoNewPrivs)' /proc/self/status > /out/status
ulimit -n > /out/nofile
mkdir /tmp/denied 2> /out/mkdir || echo refused >> /out/mkdir
ls /work > /out/work
"""


def bundle_config(rootfs: Path, out: Path, work: Path) -> dict[str, Any]:
    return {
        "ociVersion": "1.2.0",
        "process": {
            "args": ["/bin/sh", "-c", SCRIPT], "env": ["PATH=/bin", "GREETING=hello from the bundle"],
            "cwd": "/tmp", "user": {"uid": 1000, "gid": 1000, "additionalGids": [5]},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 512}],
        },
        "root": {"path": str(rootfs)},
        "hostname": "bundled",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "nodev", "mode=1777"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]},
            {"destination": "/out", "type": "bind", "source": str(out), "options": ["rbind", "rw"]},
            {"destination": "/work", "type": "bind", "source": "work", "options": ["bind", "ro"]},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "mount", "ipc", "uts", "network")],
            "cgroupsPath": "oci-bundle/c1",
            "resources": {"pids": {"limit": 64}},
            # /proc/kcore is not on every kernel: a masked path that is not there is skipped, as runc does.
            "maskedPaths": ["/proc/timer_list", "/proc/acpi", "/proc/kcore"],
            "readonlyPaths": ["/proc/sys"],
            "seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]},
        },
    }


def test_a_container_started_from_a_bundles_config(tmp_path: Path, lxcpath: str, busybox_root: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)  # the process runs as uid 1000
    bundle_dir = tmp_path / "bundle"
    (bundle_dir / "work").mkdir(parents=True)
    (bundle_dir / "work" / "from-the-bundle").write_text("x")
    (bundle_dir / "config.json").write_text(json.dumps(bundle_config(busybox_root, out, bundle_dir / "work"),
                                                       indent=1))
    container = Container("c1", lxcpath)
    state = tmp_path / "state"
    state.mkdir()
    bundle = read_bundle(str(bundle_dir), "c1", state_dir=str(state))
    os.makedirs(os.path.dirname(container.config_file_name))
    with open(container.config_file_name, "w", encoding="utf-8") as handle:
        handle.writelines(f"{key} = {value}\n" for key, value in bundle.lines())
    status = container.start(list(bundle.args), foreground=True)
    assert status == 0
    seen = {path.name: path.read_text() for path in out.iterdir()}
    assert seen["hostname"] == "bundled\n"
    assert seen["env"] == "hello from the bundle\n"
    assert seen["cwd"] == "/tmp\n"
    assert (seen["uid"], seen["gid"], seen["groups"].split()) == ("1000\n", "1000\n", ["1000", "5"])
    assert seen["nofile"] == "512\n"
    # The seccomp policy translated from the bundle refused mkdir with EPERM.
    assert "Operation not permitted" in seen["mkdir"] and "refused" in seen["mkdir"]
    assert seen["work"] == "from-the-bundle\n"
    mounts = {line.split(" - ")[0].split()[4]: line for line in seen["mountinfo"].splitlines()}
    # Mounts below /dev are made once autodev made /dev: they are not covered by its tmpfs.
    assert " - tmpfs " in mounts["/dev/shm"] and " - mqueue " in mounts["/dev/mqueue"]
    assert " - devpts " in mounts["/dev/pts"]
    assert " - tmpfs " in mounts["/tmp"]
    assert mounts["/work"].split()[5].startswith("ro")
    assert mounts["/proc/sys"].split()[5].startswith("ro")
    assert mounts["/proc/timer_list"].split()[3] == "/null"
    assert " - tmpfs " in mounts["/proc/acpi"] and mounts["/proc/acpi"].split()[5].startswith("ro")
    assert os.path.exists("/proc/kcore") == ("/proc/kcore" in mounts)
    assert mounts["/sys"].split()[5].startswith("ro")
    # cgroupsPath, relative: below the caller's own cgroup in every hierarchy (pids here).
    pids = next(line for line in seen["cgroup"].splitlines() if ":pids:" in line or line.startswith("0::"))
    assert pids.endswith("/oci-bundle/c1"), pids


def test_mount_entries_below_dev_with_autodev(tmp_path: Path, make_container: Any) -> None:
    """An LXC config's entries below /dev land on autodev's tmpfs, as in LXC, rather than under it."""
    out = tmp_path / "out"
    out.mkdir()
    container = make_container("c2", config=(
        ("lxc.autodev", "1"),
        ("lxc.mount.entry", "shm dev/shm tmpfs nosuid,nodev,mode=1777,create=dir 0 0"),
        ("lxc.mount.entry", f"{out} dev/out none bind,create=dir 0 0"),
    ))
    status = container.start(["/bin/sh", "-c", "cat /proc/self/mountinfo > /dev/out/mountinfo; ls /dev > /dev/out/dev"],
                             foreground=True)
    assert status == 0
    mounts = {line.split(" - ")[0].split()[4]: line for line in (out / "mountinfo").read_text().splitlines()}
    assert " - tmpfs " in mounts["/dev/shm"]
    assert "/dev/out" in mounts
    # autodev's nodes are there as well: the entries went on top of its /dev, not under it.
    assert {"null", "zero", "shm", "out"} <= set((out / "dev").read_text().split())


@pytest.mark.parametrize(("uid", "bounding"), [
    # runc spec's default set: no CAP_SETUID/CAP_SETGID for init to take uid 1000 with.
    (1000, ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]),
    # podman's default set as root: no CAP_SYS_ADMIN to load the seccomp policy with, no no_new_privs.
    (0, ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE",
         "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"]),
])
def test_capabilities_seccomp_and_ids_together(tmp_path: Path, lxcpath: str, busybox_root: Path, uid: int,
                                               bounding: list[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)
    bundle_dir = tmp_path / "bundle"
    bundle_dir.mkdir()
    script = "id -u > /out/uid; grep -E '^Cap(Bnd|Eff)' /proc/self/status > /out/caps; mkdir /tmp/x 2> /out/mkdir; true"
    config = {
        "ociVersion": "1.0.2", "root": {"path": str(busybox_root)},
        "process": {"args": ["/bin/sh", "-c", script], "env": ["PATH=/bin"], "cwd": "/",
                    "user": {"uid": uid, "gid": uid},
                    "capabilities": {"bounding": bounding, "effective": bounding if uid == 0 else [],
                                     "permitted": bounding if uid == 0 else []}},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]},
                   {"destination": "/out", "type": "bind", "source": str(out), "options": ["bind"]}],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "mount", "ipc", "uts", "network")],
                  "seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                              "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}},
    }
    (bundle_dir / "config.json").write_text(json.dumps(config))
    (tmp_path / "state").mkdir()
    bundle = read_bundle(str(bundle_dir), "c1", state_dir=str(tmp_path / "state"))
    container = Container("c1", lxcpath)
    os.makedirs(os.path.dirname(container.config_file_name))
    with open(container.config_file_name, "w", encoding="utf-8") as handle:
        handle.writelines(f"{key} = {value}\n" for key, value in [*bundle.lines(), ("lxc.cgroup.relative", "1")])
    assert container.start(list(bundle.args), foreground=True) == 0
    assert (out / "uid").read_text() == f"{uid}\n"
    caps = dict(line.split(":\t") for line in (out / "caps").read_text().splitlines())
    from lxcframe import syscalls

    wanted = sum(1 << syscalls.cap_number(name) for name in bounding)
    assert int(caps["CapBnd"], 16) == wanted
    assert int(caps["CapEff"], 16) == (wanted if uid == 0 else 0)
    assert "Operation not permitted" in (out / "mkdir").read_text()


def test_runc_spec_default_bundle_runs(tmp_path: Path, lxcpath: str, busybox_root: Path) -> None:
    """``runc spec``'s config.json, with a command and a way out added: read-only rootfs, the spec's mounts,
    masked and read-only paths, three capabilities, no_new_privs, a device cgroup denying all but the defaults."""
    out = tmp_path / "out"
    out.mkdir()
    bundle_dir = tmp_path / "bundle"
    bundle_dir.mkdir()
    subprocess.run(["/usr/sbin/runc", "spec"], cwd=bundle_dir, check=True)
    config = json.loads((bundle_dir / "config.json").read_text())
    script = ("grep -E '^(CapEff|NoNewPrivs)' /proc/self/status > /out/status; cat /proc/self/mountinfo > /out/mounts;"
              " echo x > /dev/null && echo null-ok > /out/null; touch /file 2> /out/rootfs; true")
    config["process"].update(terminal=False, args=["/bin/sh", "-c", script])
    config["root"]["path"] = str(busybox_root)
    config["mounts"].append({"destination": "/out", "type": "bind", "source": str(out), "options": ["bind"]})
    config["linux"]["cgroupsPath"] = "oci-spec/c1"
    (bundle_dir / "config.json").write_text(json.dumps(config))
    (tmp_path / "state").mkdir()
    bundle = read_bundle(str(bundle_dir), "c1", state_dir=str(tmp_path / "state"))
    container = Container("c1", lxcpath)
    os.makedirs(os.path.dirname(container.config_file_name))
    with open(container.config_file_name, "w", encoding="utf-8") as handle:
        handle.writelines(f"{key} = {value}\n" for key, value in bundle.lines())
    assert container.start(list(bundle.args), foreground=True) == 0
    status = dict(line.split(":\t") for line in (out / "status").read_text().splitlines())
    from lxcframe import syscalls

    caps = sum(1 << syscalls.cap_number(name) for name in ("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"))
    assert (int(status["CapEff"], 16), status["NoNewPrivs"]) == (caps, "1")
    assert (out / "null").read_text() == "null-ok\n"
    assert "Read-only file system" in (out / "rootfs").read_text()
    mounts = {line.split(" - ")[0].split()[4] for line in (out / "mounts").read_text().splitlines()}
    assert {"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/proc/sys"} <= mounts
