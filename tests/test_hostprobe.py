"""Each plugin's host probes on the real host (run as root): core's namespaces and syscalls, seccomp,
keyring and AppArmor, each through its own module, and what each reports when the host falls short.

The host-dependent expectations (AppArmor) are read from the host's own files by
``tests/hostfacts.py``, independently of lxcframe, so that these tests hold on a hybrid VM, a pure
cgroup2 Debian 12 host with or without AppArmor, and a legacy one alike. The kernel features checked
are those every supported kernel (6.x with libseccomp installed) has.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcframe import syscalls
from lxcframe.plugins import core, core_probes, keyring
from lxcframe.plugins import seccomp as seccomp_plugin
from lxcframe.plugins.apparmor.host import HostPaths
from lxcframe.plugins.apparmor.probe import probes as apparmor_probes
from lxcframe.plugins.seccomp import probe as seccomp
from lxcframe.probe import Probe

from . import hostfacts


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


def kaboom(*_args: object) -> bool:
    raise RuntimeError("kaboom")


# --------------------------------------------------------------------------
# core: namespaces and syscalls
# --------------------------------------------------------------------------


def test_core_check_is_its_namespaces_and_syscalls() -> None:
    probes = core.lxcframe_check()
    assert [p.name for p in probes] == [f"namespace:{ns}" for ns in core_probes.NAMESPACES] + [
        "openat2", "pidfd", "clone3", "execveat", "open_tree/move_mount", "mount_setattr"]
    assert all(p.supported for p in probes), [p for p in probes if not p.supported]


def test_namespaces_as_the_kernel_shows_them() -> None:
    found = by_name(core_probes.probes())
    for ns in core_probes.NAMESPACES:
        link = os.readlink(f"/proc/self/ns/{ns}")
        expected = f"/proc/self/ns/{ns} -> {link}"
        if ns == "user":
            limit = Path("/proc/sys/user/max_user_namespaces").read_text().strip()
            expected += f"; max_user_namespaces = {limit}"
        assert found[f"namespace:{ns}"] == Probe(f"namespace:{ns}", True, expected)


def test_syscall_rows_name_their_syscalls() -> None:
    found = by_name(core_probes.probes())
    assert found["pidfd"] == Probe("pidfd", True, "pidfd_open, pidfd_send_signal available "
                                   "(race-free signalling, kernel >= 5.3)")
    assert found["mount_setattr"].detail.startswith("mount_setattr available (idmapped mounts, kernel >= 5.12")


def test_missing_ns_dir_gives_unsupported_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core_probes, "PROC_NS_DIR", "/nonexistent/ns")
    assert core_probes.namespace_probe("uts") == Probe(
        "namespace:uts", False, "/nonexistent/ns/uts missing: kernel built without it")


def test_disabled_user_namespaces(monkeypatch: pytest.MonkeyPatch, scratch_file: Path) -> None:
    scratch_file.write_text("0\n")
    monkeypatch.setattr(core_probes, "MAX_USER_NAMESPACES", str(scratch_file))
    probe = core_probes.namespace_probe("user")
    link = os.readlink("/proc/self/ns/user")
    assert probe == Probe("namespace:user", False, f"{link}, but disabled: {scratch_file} = 0")


def test_a_missing_syscall_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(syscalls, "syscall_supported", lambda name: name != "pidfd_send_signal")
    assert by_name(core_probes.probes())["pidfd"] == Probe(
        "pidfd", False, "missing: pidfd_send_signal (race-free signalling, kernel >= 5.3)")


def test_a_syscall_probe_that_raises_is_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(syscalls, "syscall_supported", kaboom)
    assert by_name(core_probes.probes())["clone3"] == Probe("clone3", False, "probe failed: RuntimeError: kaboom")


# --------------------------------------------------------------------------
# seccomp
# --------------------------------------------------------------------------


def test_seccomp_check_is_kernel_and_stacking() -> None:
    assert [p.name for p in seccomp_plugin.lxcframe_check()] == ["seccomp:kernel", "seccomp:stacking"]


def test_seccomp_kernel_as_the_kernel_shows_it() -> None:
    actions = Path("/proc/sys/kernel/seccomp/actions_avail").read_text().strip()
    # pytest runs unfiltered: mode 0.
    assert seccomp.probe_kernel() == Probe(
        "seccomp:kernel", True, f"seccomp in the kernel (this process: disabled); actions: {actions}")


def test_seccomp_without_the_status_line(monkeypatch: pytest.MonkeyPatch, scratch_file: Path) -> None:
    scratch_file.write_text("Name:\tpython\nNoNewPrivs:\t0\n")
    monkeypatch.setattr(seccomp, "PROC_STATUS", str(scratch_file))
    assert seccomp.probe_kernel() == Probe(
        "seccomp:kernel", False, f"no Seccomp line in {scratch_file}: kernel built without CONFIG_SECCOMP")


def test_seccomp_status_unreadable_is_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seccomp, "PROC_STATUS", "/nonexistent/status")
    probe = seccomp.probe_kernel()
    assert probe == Probe("seccomp:kernel", False,
                          "probe failed: FileNotFoundError: [Errno 2] No such file or directory: '/nonexistent/status'")


def test_seccomp_stacking_on_this_host() -> None:
    version = syscalls.libseccomp_available()
    assert version is not None
    assert seccomp.probe_stacking(lambda: None) == Probe(
        "seccomp:stacking", True, f"{version}; x86_64 filters also cover x86, x32")


def test_seccomp_stacking_without_the_library() -> None:
    assert seccomp.probe_stacking(lambda: "libseccomp cannot be used (gone)") == Probe(
        "seccomp:stacking", False, "libseccomp cannot be used (gone)")
    assert seccomp.probe_stacking(kaboom) == Probe("seccomp:stacking", False, "probe failed: RuntimeError: kaboom")


# --------------------------------------------------------------------------
# keyring
# --------------------------------------------------------------------------


def test_keyring_probe_shows_the_session_keyring() -> None:
    assert keyring.lxcframe_check() == [Probe(
        "keyring:session", True, f"keyctl works (this process's session keyring: {syscalls.session_keyring_id()})")]


def test_keyring_probe_that_raises_is_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(syscalls, "session_keyring_id", kaboom)
    assert keyring.lxcframe_check() == [Probe("keyring:session", False, "probe failed: RuntimeError: kaboom")]


# --------------------------------------------------------------------------
# AppArmor
# --------------------------------------------------------------------------


def test_apparmor_probe_matches_kernel_state() -> None:
    lsm = hostfacts.lsm()
    found = by_name(apparmor_probes(HostPaths()))
    # apparmor_parser is installed on every test host (scripts/setup-host.sh): the probe found it.
    assert found["apparmor:parser"].supported and found["apparmor:parser"].detail.startswith("/")
    assert found["apparmor:enabled"].supported == lsm.apparmor, (found, lsm)
    enabled = hostfacts.APPARMOR_ENABLED
    if lsm.apparmor_param is None:
        assert found["apparmor:enabled"].detail.startswith(f"kernel: AppArmor not enabled ({enabled} missing); ")
        assert set(found) == {"apparmor:enabled", "apparmor:parser"}
    elif lsm.apparmor:
        assert found["apparmor:enabled"].detail == f"kernel: AppArmor enabled ({enabled} = {lsm.apparmor_param})"
        assert set(found) == {"apparmor:enabled", "apparmor:mount_mediation", "apparmor:parser", "apparmor:stacking"}
    else:
        assert found["apparmor:enabled"].detail.startswith(
            f"kernel: AppArmor disabled ({enabled} = {lsm.apparmor_param}); ")
    if lsm.active is not None:
        # The module parameter and the kernel's list of active LSMs tell the same story.
        assert ("apparmor" in lsm.active) == (lsm.apparmor_param or "").startswith("Y"), lsm
