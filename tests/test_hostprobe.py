"""Tests of lxcframe.hostprobe on the real host (run as root).

The host-dependent expectations (cgroup layout, AppArmor) are read from the host's own files by
``tests/hostfacts.py``, independently of lxcframe, so that these tests hold on a hybrid VM, a pure
cgroup2 Debian 12 host with or without AppArmor, and a legacy one alike. The kernel features listed
below are those every supported kernel (6.x with libseccomp installed) has.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from lxcframe import hostprobe, syscalls
from lxcframe.hostprobe import CgroupLayout, Probe, parse_cgroup_layout

from . import hostfacts

# Probes that this host (kernel 6.18 with libseccomp installed) supports.
KERNEL_FEATURES = (
    "seccomp",
    "keyrings",
    "netlink_strict_chk",
    "netns_id",
    "open_tree/move_mount",
    "mount_setattr",
    "openat2",
    "pidfd",
    "execveat",
    "clone3",
)


@pytest.fixture(scope="module")
def probes() -> list[Probe]:
    return hostprobe.all_probes()


@pytest.fixture
def scratch_file() -> Iterator[Path]:
    # tempfile rather than tmp_path: pytest keeps its tmp dirs around.
    directory = Path(tempfile.mkdtemp(prefix="lxcframe-hostprobe-"))
    try:
        yield directory / "value"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def by_name(probes: list[Probe]) -> dict[str, Probe]:
    return {probe.name: probe for probe in probes}


def test_all_probes_have_details(probes: list[Probe]) -> None:
    assert probes
    assert all(isinstance(probe, Probe) for probe in probes)
    assert all(probe.detail.strip() for probe in probes)
    names = [probe.name for probe in probes]
    assert len(names) == len(set(names))
    expected = {"cgroup", "apparmor", *KERNEL_FEATURES} | {f"namespace:{ns}" for ns in hostprobe.NAMESPACES}
    assert expected <= set(names)


def test_probe_is_frozen() -> None:
    probe = Probe("x", True, "y")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        probe.supported = False  # type: ignore[misc]


def test_namespaces_supported(probes: list[Probe]) -> None:
    found = by_name(probes)
    for ns in ("mnt", "uts", "ipc", "user", "pid", "net", "cgroup", "time"):
        probe = found[f"namespace:{ns}"]
        assert probe.supported, probe
        assert f"{ns}:[" in probe.detail
    assert "max_user_namespaces" in found["namespace:user"].detail


def test_cgroup_layout_matches_the_host(probes: list[Probe]) -> None:
    facts = hostfacts.cgroups()
    layout = hostprobe.cgroup_layout()
    assert layout.mode == facts.mode
    assert layout.unified_mount == facts.unified_mount
    assert layout.unified_controllers == facts.unified_controllers
    assert set(layout.v1_controllers) == facts.v1_controllers
    assert set(layout.v1_named) == facts.v1_named
    assert set(layout.v1_mounts) == {m.mountpoint for m in facts.v1_mounts}
    assert not any("=" in c for c in layout.v1_controllers)  # name=systemd is a name, not a controller
    probe = by_name(probes)["cgroup"]
    assert probe.supported == (facts.mode != "none")
    assert probe.detail.split(";")[0] == facts.mode
    unified = f"cgroup2 at {facts.unified_mount} (controllers: {' '.join(facts.unified_controllers) or '(none)'})"
    # What this process's /proc/self/cgroup lists must fit the mounts: each layout asserted for itself.
    if facts.mode == "hybrid":
        assert facts.unified_mount != hostfacts.CGROUP_ROOT and facts.v1_mounts
        assert unified in probe.detail and "v1 controllers: " in probe.detail
        assert facts.own_unified is not None  # a hybrid process is in the unified tree too
        assert all(m.parts in facts.own for m in facts.v1_mounts)
    elif facts.mode == "unified":
        assert unified in probe.detail
        assert facts.own_unified is not None
        if not facts.v1_mounts:
            assert "v1 controllers" not in probe.detail
            # Only the unified line (a v1 hierarchy mounted nowhere but still alive may add others).
            assert all(parts == frozenset() or not (parts & facts.v1_controllers) for parts in facts.own)
    elif facts.mode == "legacy":
        assert facts.unified_mount is None and "cgroup2 at" not in probe.detail
        assert "v1 controllers: " in probe.detail
        assert all(m.parts in facts.own for m in facts.v1_mounts)
    else:
        assert facts.mode == "none" and probe.detail.startswith("none: no cgroup")


def test_kernel_feature_probes_supported(probes: list[Probe]) -> None:
    found = by_name(probes)
    for name in KERNEL_FEATURES:
        assert found[name].supported, found[name]
    assert str(syscalls.session_keyring_id()) in found["keyrings"].detail
    assert "libseccomp" in found["seccomp"].detail


def test_apparmor_probe_matches_kernel_state(probes: list[Probe]) -> None:
    lsm = hostfacts.lsm()
    probe = by_name(probes)["apparmor"]
    # apparmor_parser is installed on every test host (scripts/setup-host.sh): the probe found it.
    assert "apparmor_parser: /" in probe.detail, probe
    assert probe.supported == lsm.apparmor, (probe, lsm)
    if lsm.apparmor_param is None:
        assert probe.detail.startswith(f"kernel: not enabled ({hostfacts.APPARMOR_ENABLED} missing); ")
    elif lsm.apparmor:
        assert probe.detail.startswith(f"kernel: enabled ({hostfacts.APPARMOR_ENABLED} = {lsm.apparmor_param}); ")
    else:
        assert probe.detail.startswith(f"kernel: disabled ({hostfacts.APPARMOR_ENABLED} = {lsm.apparmor_param}); ")
    if lsm.active is not None:
        # The module parameter and the kernel's list of active LSMs tell the same story.
        assert ("apparmor" in lsm.active) == (lsm.apparmor_param or "").startswith("Y"), lsm


# --------------------------------------------------------------------------
# Failures become unsupported probes, never exceptions
# --------------------------------------------------------------------------


def test_missing_mountinfo_gives_unsupported_cgroup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostprobe, "_PROC_MOUNTINFO", "/nonexistent/mountinfo")
    probe = hostprobe.probe_cgroups()
    assert not probe.supported
    assert "probe failed" in probe.detail and "FileNotFoundError" in probe.detail


def test_missing_ns_dir_gives_unsupported_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostprobe, "_PROC_NS_DIR", "/nonexistent/ns")
    probe = hostprobe.namespace_probe("uts")
    assert not probe.supported and "missing" in probe.detail


def test_disabled_user_namespaces(monkeypatch: pytest.MonkeyPatch, scratch_file: Path) -> None:
    scratch_file.write_text("0\n")
    monkeypatch.setattr(hostprobe, "_MAX_USER_NAMESPACES", str(scratch_file))
    probe = hostprobe.namespace_probe("user")
    assert not probe.supported and "disabled" in probe.detail


def test_unexpected_error_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> int:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(syscalls, "session_keyring_id", boom)
    probe = hostprobe.probe_keyrings()
    assert probe == Probe("keyrings", False, "probe failed: RuntimeError: kaboom")


# --------------------------------------------------------------------------
# mountinfo parsing
# --------------------------------------------------------------------------

UNIFIED = """\
22 1 0:21 / /proc rw,nosuid - proc proc rw
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
"""

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup ro shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:29 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw,nsdelegate
33 31 0:30 / /sys/fs/cgroup/systemd rw shared:11 - cgroup cgroup rw,xattr,name=systemd
34 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw shared:12 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/net_cls,net_prio rw shared:13 master:1 - cgroup cgroup rw,net_cls,net_prio
"""

LEGACY = """\
40 31 0:37 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,noprefix,release_agent=/x
42 31 0:39 / /sys/fs/cgroup/with\\040space rw,relatime - cgroup cgroup rw,pids
"""


def test_parse_unified() -> None:
    layout = parse_cgroup_layout(UNIFIED)
    assert layout == CgroupLayout(mode="unified", unified_mount="/sys/fs/cgroup")


def test_parse_hybrid() -> None:
    layout = parse_cgroup_layout(HYBRID)
    assert layout.mode == "hybrid"
    assert layout.unified_mount == "/sys/fs/cgroup/unified"
    assert layout.v1_controllers == ("cpu", "cpuacct", "net_cls", "net_prio")
    assert layout.v1_named == ("systemd",)


def test_parse_legacy() -> None:
    layout = parse_cgroup_layout(LEGACY)
    assert layout.mode == "legacy"
    assert layout.unified_mount is None
    assert layout.v1_controllers == ("memory", "cpuset", "pids")
    assert "/sys/fs/cgroup/with space" in layout.v1_mounts


def test_parse_cgroup2_on_sys_fs_cgroup_wins() -> None:
    layout = parse_cgroup_layout(UNIFIED + LEGACY)
    assert layout.mode == "unified"


def test_parse_none_and_garbage() -> None:
    assert parse_cgroup_layout("").mode == "none"
    assert parse_cgroup_layout("garbage line\n1 2 3\n").mode == "none"
