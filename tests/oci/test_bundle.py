"""A bundle's config.json translated into lxc.* keys, field family by field family, and validated by the
plugins' own validators (``load_bundle``): what each field becomes, and where a plugin's complaint points."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from lxcframe.errors import ConfigError
from lxcframe.oci.bundle import Bundle, load_bundle, read_bundle
from lxcframe.oci.oci_hooks import BundleHooks, Hook
from lxcframe.plugin_manager import Plugins
from lxcframe.plugins.cgroup.layout import current_layout
from lxcframe.plugins.seccomp.policy import ALLOW, CMP_EQ, CMP_MASKED_EQ, KILL, ArgCmp, errno_action, read_policy


def base_config() -> dict[str, Any]:
    return {
        "ociVersion": "1.0.2",
        "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "env": ["PATH=/bin"], "cwd": "/"},
        "root": {"path": "rootfs"},
        "linux": {"namespaces": [{"type": t} for t in ("pid", "mount", "ipc", "uts", "network")]},
    }


def write(directory: Path, config: dict[str, Any]) -> Path:
    (directory / "rootfs").mkdir(exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    return directory


def translated(tmp_path: Path, **changes: Any) -> Bundle:
    config = base_config()
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = config
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    return read_bundle(str(write(tmp_path, config)), "c1", state_dir=str(state))


@pytest.fixture(scope="module")
def registry() -> Any:
    return Plugins().key_registry()


def test_process_user_and_environment(tmp_path: Path, registry: Any) -> None:
    bundle = translated(tmp_path, process={
        "args": ["sh", "-c", "echo 'two words'"], "env": ["PATH=/bin", "A=b c"], "cwd": "/tmp",
        "user": {"uid": 1000, "gid": 100, "additionalGids": [5, 6], "umask": 18},
        "noNewPrivileges": True, "oomScoreAdj": 300, "terminal": True, "consoleSize": {"height": 24, "width": 80},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096},
                    {"type": "RLIMIT_CORE", "soft": 2**64 - 1, "hard": 2**64 - 1}]})
    assert bundle.values("lxc.environment") == ["PATH=/bin", "A=b c"]
    assert [bundle.values(k) for k in ("lxc.init.cwd", "lxc.init.uid", "lxc.init.gid", "lxc.init.groups")] == [
        ["/tmp"], ["1000"], ["100"], ["5,6"]]
    assert bundle.values("lxc.no_new_privs") == ["1"]
    assert bundle.values("lxc.proc.oom_score_adj") == ["300"]
    assert bundle.values("lxc.prlimit.nofile") == ["1024:4096"]
    assert bundle.values("lxc.prlimit.core") == ["unlimited:unlimited"]
    assert (bundle.terminal, bundle.console_size, bundle.umask) == (True, (24, 80), 18)
    config = bundle.config(registry)
    # The command is the argument list as given, blanks and all.
    assert config.get("lxc.init.cmd") == ("sh", "-c", "echo 'two words'")
    assert bundle.args == ("sh", "-c", "echo 'two words'")
    assert config.get("lxc.init.groups") is None and config.get_all("lxc.init.groups") == ((5, 6),)
    assert config.get("lxc.prlimit.nofile") == (1024, 4096)


def test_capabilities_bounding_is_cap_keep(tmp_path: Path, registry: Any) -> None:
    caps = ["CAP_KILL", "CAP_CHOWN"]
    bundle = translated(tmp_path, process__capabilities={"bounding": caps, "effective": caps, "permitted": caps,
                                                         "ambient": caps})
    assert bundle.values("lxc.cap.keep") == ["CAP_CHOWN CAP_KILL"]
    assert bundle.config(registry).get_all("lxc.cap.keep") == ((0, 5),)
    empty = translated(tmp_path, process__capabilities={"bounding": []})
    assert empty.values("lxc.cap.keep") == ["none"]


def test_root_hostname_and_domainname(tmp_path: Path, registry: Any) -> None:
    bundle = translated(tmp_path, root={"path": "rootfs", "readonly": True}, hostname="box", domainname="example")
    assert bundle.values("lxc.rootfs.path") == [str(tmp_path / "rootfs")]
    assert bundle.rootfs == str(tmp_path / "rootfs")
    assert bundle.values("lxc.rootfs.options") == ["ro"]
    assert bundle.values("lxc.uts.name") == ["box"]
    assert bundle.values("lxc.sysctl.kernel.domainname") == ["example"]
    # Without a hostname the new UTS namespace keeps the runtime's, as runc leaves it.
    assert translated(tmp_path).values("lxc.uts.name") == [socket.gethostname()]


def test_namespaces_new_and_joined(tmp_path: Path, registry: Any) -> None:
    bundle = translated(tmp_path, linux__namespaces=[
        {"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "network", "path": f"/proc/{os.getpid()}/ns/net"},
        {"type": "cgroup"}])
    assert bundle.values("lxc.namespace.clone") == ["pid mnt uts cgroup"]
    assert bundle.values("lxc.namespace.share.net") == [str(os.getpid())]
    config = bundle.config(registry)
    assert config.get("lxc.namespace.share.net") == str(os.getpid())
    # Any other namespace file (a pod's network namespace kept by a bind mount) is joined as it is.
    bundle = translated(tmp_path, linux__namespaces=[
        {"type": "pid"}, {"type": "mount"}, {"type": "network", "path": "/var/run/netns/cni-0123"}])
    assert bundle.values("lxc.namespace.share.net") == ["/var/run/netns/cni-0123"]
    assert bundle.config(registry).get("lxc.namespace.share.net") == "/var/run/netns/cni-0123"


def test_id_maps_and_time_offsets(tmp_path: Path, registry: Any) -> None:
    bundle = translated(tmp_path, linux={
        "namespaces": [{"type": t} for t in ("pid", "mount", "user", "time")],
        "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "timeOffsets": {"monotonic": {"secs": 3600, "nanosecs": 5}, "boottime": {"secs": -2}}})
    assert bundle.values("lxc.idmap") == ["u 0 100000 65536", "g 0 100000 65536"]
    assert bundle.values("lxc.time.offset.monotonic") == ["3600000000005ns"]
    config = bundle.config(registry)
    assert config.get("lxc.time.offset.boot") == -2 * 10**9
    assert len(config.get_all("lxc.idmap")) == 2


def test_mounts_of_the_spec_defaults_and_binds(tmp_path: Path, registry: Any) -> None:
    (tmp_path / "shared dir").mkdir()
    (tmp_path / "hosts").write_text("127.0.0.1 localhost\n")
    bundle = translated(tmp_path, mounts=[
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755",
                                                                               "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "mode=1777", "size=64m"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid"]},
        {"destination": "/mnt/a b", "type": "bind", "source": "shared dir", "options": ["rbind", "ro", "rprivate"]},
        {"destination": "/etc/hosts", "source": str(tmp_path / "hosts"), "options": ["bind"]},
    ])
    assert bundle.values("lxc.autodev") == ["1"]
    assert bundle.values("lxc.autodev.tmpfs.size") == [str(64 * 2**20)]
    assert bundle.values("lxc.mount.auto") == ["sys:ro", "cgroup:ro:force"]
    assert bundle.values("lxc.mount.entry") == [
        "proc proc proc create=dir 0 0",
        "shm dev/shm tmpfs nosuid,mode=1777,size=64m,create=dir 0 0",
        f"{tmp_path}/shared\\040dir mnt/a\\040b none rbind,ro,rprivate,create=dir 0 0",
        f"{tmp_path}/hosts etc/hosts none bind,create=file 0 0",
    ]
    entries = [item.value for item in bundle.config(registry).multi["lxc.mount.entry"]]
    assert (entries[2].source, entries[2].target) == (f"{tmp_path}/shared dir", "mnt/a b")


def test_hooks_are_kept_for_the_runtime_not_translated(tmp_path: Path, registry: Any) -> None:
    bundle = translated(tmp_path, hooks={
        "poststop": [{"path": "/bin/true", "args": ["true", "x"]}],
        "createRuntime": [{"path": "/bin/echo", "args": ["echo", "one two"], "env": ["A=b c"], "timeout": 5}],
        "createContainer": [{"path": "/bin/true"}], "startContainer": [], "poststart": [{"path": "/bin/true"}]})
    assert not [e for e in bundle.entries if e.key.startswith("lxc.hook.")]
    # In the order they run, whatever the document's.
    assert [name for name, _ in bundle.hooks.by_name] == ["createRuntime", "createContainer", "poststart", "poststop"]
    assert bundle.hooks.of("createRuntime") == (Hook("/bin/echo", ("echo", "one two"), ("A=b c",), 5),)
    assert bundle.hooks.of("createContainer") == (Hook("/bin/true"),)
    assert BundleHooks.decode(json.loads(json.dumps(bundle.hooks.encode()))) == bundle.hooks
    bundle.config(registry)


def test_load_bundle_refuses_hooks_it_cannot_run(tmp_path: Path) -> None:
    """Only lxcframe-oci runs a bundle's hooks: a config loaded from it for the library would lose them."""
    config = base_config()
    config["hooks"] = {"poststop": [{"path": "/bin/true"}]}
    write(tmp_path, config)
    with pytest.raises(ConfigError, match=r"config.json: hooks: not supported outside lxcframe-oci"):
        load_bundle(str(tmp_path), "c1")


def test_devices_bind_the_hosts_node(tmp_path: Path, registry: Any) -> None:
    info = os.stat("/dev/null")
    bundle = translated(tmp_path, linux__devices=[
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": info.st_mode & 0o7777,
         "uid": 0, "gid": 0}])
    [entry] = bundle.values("lxc.mount.entry")
    # The host's node of that number: /dev/char/1:3 where udev made it, else /dev/null itself.
    assert entry in ("/dev/char/1:3 dev/mynull none bind,create=file 0 0",
                     "/dev/null dev/mynull none bind,create=file 0 0")
    bundle.config(registry)


def test_resources_go_to_the_hierarchy_of_their_controller(tmp_path: Path, registry: Any) -> None:
    layout = current_layout()
    bundle = translated(tmp_path, linux__resources={
        "memory": {"limit": 64 * 2**20}, "pids": {"limit": 50},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000},
        "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 10, "minor": 229,
                                                        "access": "rwm"}]})
    v1 = {c for h in layout.v1 for c in h.controllers}
    if "memory" in v1:
        assert bundle.values("lxc.cgroup.memory.limit_in_bytes") == [str(64 * 2**20)]
    else:
        assert bundle.values("lxc.cgroup2.memory.max") == [str(64 * 2**20)]
    if "cpu" in v1:
        assert bundle.values("lxc.cgroup.cpu.shares") == ["512"]
        assert bundle.values("lxc.cgroup.cpu.cfs_quota_us") == ["20000"]
        assert bundle.values("lxc.cgroup.cpu.cfs_period_us") == ["100000"]
    else:
        assert bundle.values("lxc.cgroup2.cpu.weight") == ["20"]
        assert bundle.values("lxc.cgroup2.cpu.max") == ["20000 100000"]
    prefix = "lxc.cgroup.devices." if "devices" in v1 else "lxc.cgroup2.devices."
    assert bundle.values(prefix + "deny") == ["a"]
    # The bundle's rules in order, then the spec's default devices.
    assert bundle.values(prefix + "allow")[:3] == ["c 10:229 rwm", "c 1:3 rwm", "c 1:5 rwm"]
    assert bundle.values(prefix + "allow")[-1] == "c 136:* rwm"
    pids = "lxc.cgroup.pids.max" if "pids" in v1 else "lxc.cgroup2.pids.max"
    assert bundle.values(pids) == ["50"]
    bundle.config(registry)


@pytest.mark.parametrize(("path", "relative", "container", "monitor"), [
    ("/libpod_parent/libpod-abc", "0", "libpod_parent/libpod-abc", "libpod_parent/lxc.monitor.libpod-abc"),
    ("k8s/pod1/c1", "1", "k8s/pod1/c1", "k8s/pod1/lxc.monitor.c1"),
    ("/default", "0", "default", "lxc.monitor.default"),
])
def test_cgroups_path_is_the_containers_cgroup(tmp_path: Path, registry: Any, path: str, relative: str,
                                              container: str, monitor: str) -> None:
    bundle = translated(tmp_path, linux__cgroupsPath=path)
    assert bundle.values("lxc.cgroup.relative") == [relative]
    assert bundle.values("lxc.cgroup.dir.container") == [container]
    assert bundle.values("lxc.cgroup.dir.monitor") == [monitor]
    bundle.config(registry)


def test_sysctl_masked_and_readonly_paths(tmp_path: Path, registry: Any) -> None:
    (tmp_path / "rootfs" / "secret").mkdir(parents=True)
    bundle = translated(tmp_path, linux__sysctl={"net.ipv4.ip_forward": "1", "kernel.shmmax": "65536"},
                        linux__maskedPaths=["/proc/kcore", "/proc/acpi", "/secret"],
                        linux__readonlyPaths=["/proc/sys", "/proc/sysrq-trigger"])
    assert bundle.values("lxc.sysctl.net.ipv4.ip_forward") == ["1"]
    assert bundle.values("lxc.sysctl.kernel.shmmax") == ["65536"]
    acpi = "tmpfs" if os.path.isdir("/proc/acpi") else "/dev/null"
    entries = bundle.values("lxc.mount.entry")
    assert entries[0] == "/dev/null proc/kcore none bind,optional 0 0"
    assert entries[1].startswith(f"{acpi} proc/acpi ")
    assert entries[2] == "tmpfs secret tmpfs ro,nosuid,nodev,noexec,optional 0 0"
    assert entries[3] == "/run/lxcframe.rootfs/proc/sys proc/sys none bind,ro,optional 0 0" or \
        entries[3].endswith("/proc/sys proc/sys none bind,ro,optional 0 0")
    bundle.config(registry)


def test_seccomp_becomes_an_lxc_policy_the_plugin_reads(tmp_path: Path, registry: Any) -> None:
    bundle = translated(tmp_path, linux__seccomp={
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},  # the default: left out
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["reboot"], "action": "SCMP_ACT_KILL"}]})
    path = tmp_path / "state" / "seccomp.policy"
    assert bundle.values("lxc.seccomp.profile") == [str(path)]
    policy = read_policy(str(path))
    assert policy.default_action == errno_action(38)
    assert [(r.syscall, r.action, r.args) for r in policy.rules] == [
        ("read", ALLOW, ()), ("write", ALLOW, ()), ("mkdir", errno_action(1), ()),
        # Two comparisons of one argument: one rule each (libseccomp ANDs a rule's comparisons).
        ("personality", ALLOW, (ArgCmp(0, CMP_EQ, 0),)), ("personality", ALLOW, (ArgCmp(0, CMP_EQ, 8),)),
        # MASKED_EQ: the spec's value is the mask, valueTwo the datum.
        ("clone", ALLOW, (ArgCmp(0, CMP_MASKED_EQ, 0, 2114060288),)), ("reboot", KILL, ())]
    bundle.config(registry)


def test_annotations_kept_and_located_values(tmp_path: Path, registry: Any) -> None:
    bundle = translated(tmp_path, annotations={"org.example/a": "1", "io.unknown": "x"}, hostname="h1")
    assert bundle.annotations == (("org.example/a", "1"), ("io.unknown", "x"))
    config = bundle.config(registry)
    lines = (tmp_path / "config.json").read_text().splitlines()
    # Each key is located at its field's line of config.json, as a config file's keys are.
    item = config.located("lxc.uts.name")
    assert item is not None and item.path == str(tmp_path / "config.json")
    assert '"hostname": "h1"' in lines[item.line - 1]
    cwd = config.located("lxc.init.cwd")
    assert cwd is not None and '"cwd"' in lines[cwd.line - 1]


def test_load_bundle_uses_the_installed_plugins_keys(tmp_path: Path) -> None:
    write(tmp_path, base_config())
    config = load_bundle(str(tmp_path), "c1")
    assert config.get("lxc.init.cmd") == ("sh",)
    assert config.get("lxc.rootfs.path") == str(tmp_path / "rootfs")
    assert config.unhandled == ()


RUNC = "/usr/sbin/runc"


def test_runc_spec_default_bundle_loads(tmp_path: Path, registry: Any) -> None:
    """``runc spec``'s config.json as it is: every field translated, every key valid."""
    import subprocess

    if not os.access(RUNC, os.X_OK):
        pytest.fail("runc is missing: scripts/setup-host.sh installs it")
    subprocess.run([RUNC, "spec"], cwd=tmp_path, check=True)
    (tmp_path / "rootfs").mkdir()
    state = tmp_path / "state"
    state.mkdir()
    bundle = read_bundle(str(tmp_path), "spec", state_dir=str(state))
    config = bundle.config(registry)
    assert bundle.args == ("sh",) and bundle.terminal
    assert config.get("lxc.uts.name") == "runc"
    assert config.get_all("lxc.mount.auto")
    assert config.get("lxc.autodev") is True and config.get("lxc.rootfs.options")
    assert config.get("lxc.no_new_privs") is True
    assert config.multi["lxc.mount.entry"]  # proc, shm, mqueue, the masked and read-only paths
    assert config.unhandled == ()


PODMAN_LIKE: dict[str, Any] = {
    "ociVersion": "1.0.2-dev",
    "process": {
        "user": {"uid": 0, "gid": 0, "umask": 18, "additionalGids": [0, 1, 2, 3, 4, 6, 10, 11, 20, 26, 27]},
        "args": ["/bin/sh", "-c", "exit 3"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm",
                "container=podman", "HOME=/root", "HOSTNAME=4f2a"],
        "cwd": "/",
        "capabilities": {name: ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
                                "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID",
                                "CAP_SYS_CHROOT"] for name in ("bounding", "effective", "permitted")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 20000},
                    {"type": "RLIMIT_NPROC", "hard": 32768, "soft": 32768}],
        "oomScoreAdj": 0,
    },
    "root": {"path": "rootfs"},
    "hostname": "4f2a",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755",
                                                                               "size=65536k"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/etc/hostname", "type": "bind", "source": "userdata/hostname",
         "options": ["bind", "rprivate"]},
        {"destination": "/run/.containerenv", "type": "bind", "source": "userdata/.containerenv",
         "options": ["bind", "rprivate"]},
        {"destination": "/dev/shm", "type": "bind", "source": "userdata/shm",
         "options": ["bind", "rprivate", "nosuid", "noexec", "nodev"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["rprivate", "nosuid", "noexec", "nodev", "relatime", "ro"]},
    ],
    "annotations": {"io.container.manager": "libpod", "org.opencontainers.image.stopSignal": "15"},
    "linux": {
        "sysctl": {"net.ipv4.ping_group_range": "0 0"},
        "resources": {"devices": [{"allow": False, "access": "rwm"}], "pids": {"limit": 2048}},
        "cgroupsPath": "/libpod_parent/libpod-4f2a",
        "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
        "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                    "syscalls": [{"names": ["bdflush", "io_pgetevents", "kexec_file_load"], "action": "SCMP_ACT_ERRNO",
                                  "errnoRet": 1},
                                 {"names": ["read", "write", "exit_group", "execve"], "action": "SCMP_ACT_ALLOW"}]},
        "maskedPaths": ["/proc/acpi", "/proc/kcore", "/sys/firmware", "/sys/fs/selinux", "/sys/dev/block"],
        "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
}


def test_a_podman_like_bundle_loads(tmp_path: Path, registry: Any) -> None:
    """What podman 4.3 writes (oci.md: cgroupfs path, rlimits, umask, binds from its userdata, seccomp)."""
    (tmp_path / "userdata" / "shm").mkdir(parents=True)
    (tmp_path / "userdata" / "hostname").write_text("4f2a\n")
    (tmp_path / "userdata" / ".containerenv").write_text("")
    write(tmp_path, PODMAN_LIKE)
    state = tmp_path / "state"
    state.mkdir()
    bundle = read_bundle(str(tmp_path), "4f2a", state_dir=str(state))
    config = bundle.config(registry)
    assert bundle.umask == 18 and bundle.args == ("/bin/sh", "-c", "exit 3")
    assert dict(bundle.annotations)["io.container.manager"] == "libpod"
    assert (config.get("lxc.cgroup.dir.container"), config.get("lxc.cgroup.relative")) == (
        "libpod_parent/libpod-4f2a", False)
    assert config.get("lxc.prlimit.nproc") == (32768, 32768)
    assert f"{tmp_path}/userdata/shm dev/shm none bind,rprivate,nosuid,noexec,nodev,create=dir 0 0" in \
        bundle.values("lxc.mount.entry")
    assert (state / "seccomp.policy").read_text().startswith("2\nallowlist errno 38\nbdflush errno 1\n")
    assert config.unhandled == ()
