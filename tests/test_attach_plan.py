"""An attach applies the plan the container started with, which its monitor kept in ``parts.json``.

The config is neither read nor planned again: once the container runs, its fstab file may go, its
seccomp profile and ``lxc.cap.drop`` may change, the config may not even parse, and an attach still
gets the start's policy and capabilities. The file is root's, ``0600``, gone with the container;
one that others could have written, a missing one and a malformed one are clear errors naming it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from lxcframe import planner, started_parts
from lxcframe import state as st
from lxcframe.container import Container
from lxcframe.errors import ContainerError
from lxcframe.plugins.caps import CapsPart
from lxcframe.plugins.core import CorePart
from lxcframe.plugins.seccomp import SeccompPart
from lxcframe.transfer import TransferError

from .conftest import another_thread

pytestmark = pytest.mark.container

CAP_NET_RAW, CAP_SYS_ADMIN = 13, 21
DENY_MKDIR = "2\nblacklist\nmkdir errno 1\n"
DENY_RMDIR = "2\nblacklist\nrmdir errno 1\n"
PROBE = ("grep -E '^(Seccomp|CapBnd):' /proc/self/status > /probe.out; "
         "mkdir /made 2>/dev/null && echo mkdir-ok >> /probe.out || echo mkdir-denied >> /probe.out; "
         "rmdir /gone 2>/dev/null && echo rmdir-ok >> /probe.out || echo rmdir-denied >> /probe.out")


def _rootfs(container: Container) -> Path:
    return Path(container.load_config().get("lxc.rootfs.path"))


def _probe(container: Container, rootfs: Path) -> dict[str, Any]:
    """What an attached command finds: its seccomp mode, its bounding set, and which of mkdir and rmdir it may."""
    (rootfs / "gone").mkdir()
    try:
        assert container.attach_wait(["/bin/sh", "-c", PROBE]) == 0
        lines = (rootfs / "probe.out").read_text().split("\n")
    finally:
        for leftover in ("made", "gone"):
            with contextlib.suppress(FileNotFoundError):
                (rootfs / leftover).rmdir()
        (rootfs / "probe.out").unlink()
    fields = dict(line.split(":\t") for line in lines[:2])
    return {"seccomp": int(fields["Seccomp"]), "capbnd": int(fields["CapBnd"], 16), "calls": lines[2:4]}


def _started(make_container: Any, tmp_path: Path, name: str) -> tuple[Container, Path, Path]:
    policy = tmp_path / "policy.seccomp"
    policy.write_text(DENY_MKDIR)
    fstab = tmp_path / "fstab"
    fstab.write_text("tmpfs mnt/fstab tmpfs size=1m,create=dir 0 0\n")
    container = make_container(name, config=(
        ("lxc.seccomp.profile", str(policy)), ("lxc.cap.drop", "sys_admin"), ("lxc.no_new_privs", "1"),
        ("lxc.mount.fstab", str(fstab)),
    ))
    container.start()
    return container, policy, fstab


def _change_the_config(container: Container, tmp_path: Path, policy: Path, fstab: Path) -> None:
    """What a re-plan would now read: another profile, another capability, no fstab file, the old profile broken."""
    other = tmp_path / "other.seccomp"
    other.write_text(DENY_RMDIR)
    config = Path(container.config_file_name)
    text = config.read_text()
    assert f"lxc.seccomp.profile = {policy}\n" in text and "lxc.cap.drop = sys_admin\n" in text
    config.write_text(text.replace(f"lxc.seccomp.profile = {policy}\n", f"lxc.seccomp.profile = {other}\n")
                      .replace("lxc.cap.drop = sys_admin\n", "lxc.cap.drop = net_raw\n"))
    policy.write_text("not a policy\n")
    fstab.unlink()


@pytest.mark.parametrize("through", ["fork", "helper"])
def test_attach_applies_the_start_s_policy_and_caps_after_the_config_changed(make_container, tmp_path, through):
    container, policy, fstab = _started(make_container, tmp_path, f"ap-{through}")
    try:
        rootfs = _rootfs(container)
        before = _probe(container, rootfs)
        assert before["seccomp"] == 2 and before["calls"] == ["mkdir-denied", "rmdir-ok"]
        assert not before["capbnd"] >> CAP_SYS_ADMIN & 1 and before["capbnd"] >> CAP_NET_RAW & 1
        _change_the_config(container, tmp_path, policy, fstab)
        with another_thread() if through == "helper" else contextlib.nullcontext():
            after = _probe(container, rootfs)
        assert after == before
    finally:
        container.stop(kill=True)


def test_attach_neither_loads_the_config_nor_plans(make_container, tmp_path, monkeypatch):
    container, _policy, _fstab = _started(make_container, tmp_path, "ap-noload")
    try:
        rootfs = _rootfs(container)
        Path(container.config_file_name).write_text("lxc.no.such.key = 1\n")

        def no_planning(*args: object, **kwargs: object) -> None:
            raise AssertionError("attach planned the config again")

        with monkeypatch.context() as patched:
            patched.setattr(planner, "plan_parts", no_planning)
            patched.setattr(Container, "load_config", no_planning)
            assert container.attach_wait(["/bin/true"]) == 0
        assert _probe(container, rootfs)["calls"] == ["mkdir-denied", "rmdir-ok"]
    finally:
        container.stop(kill=True)


def test_the_parts_file_is_the_plan_s_parts_root_s_0600_and_gone_after_stop(make_container, tmp_path, caller_plugins):
    container, policy, _fstab = _started(make_container, tmp_path, "ap-file")
    path = Path(started_parts.parts_path(container.lxcpath, container.name))
    try:
        info = path.lstat()
        assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == 0
        config = container.load_config()
        expected = planner.build_plan(caller_plugins, container.name, container.lxcpath, config, None, "daemon").parts
        kept = started_parts.read(container.lxcpath, container.name, set())
        assert kept == expected
        assert kept[[type(p) for p in kept].index(SeccompPart)].profile == str(policy)
        [caps] = [p for p in kept if type(p) is CapsPart]
        # The busybox template's drops (sys_module, sys_time, mac_override, mac_admin), then the test's.
        assert (sorted(caps.drop), caps.no_new_privs) == ([16, CAP_SYS_ADMIN, 25, 32, 33], True)
        assert CorePart in {type(p) for p in kept}
    finally:
        container.stop(kill=True)
    assert not path.exists()
    assert not os.path.exists(st.runtime_dir(container.lxcpath, container.name))


@pytest.mark.parametrize(("owner", "mode", "shown"), [(0, 0o622, "owner uid 0, mode 622"),
                                                      (0, 0o602, "owner uid 0, mode 602"),
                                                      (1000, 0o600, "owner uid 1000, mode 600")])
def test_a_parts_file_others_could_write_is_refused(make_container, tmp_path, owner, mode, shown):
    container, _policy, _fstab = _started(make_container, tmp_path, "ap-forged")
    path = started_parts.parts_path(container.lxcpath, container.name)
    try:
        os.chown(path, owner, 0)
        os.chmod(path, mode)
        with pytest.raises(ContainerError) as info:
            container.attach_wait(["/bin/true"])
        assert str(info.value) == (f"ap-forged: plan parts file {path} could have been written by another user "
                                   f"({shown}): not trusting it")
    finally:
        os.chown(path, 0, 0)
        container.stop(kill=True)


def test_a_missing_or_malformed_parts_file_is_named(make_container, tmp_path):
    container, _policy, _fstab = _started(make_container, tmp_path, "ap-bad")
    path = started_parts.parts_path(container.lxcpath, container.name)
    try:
        kept = Path(path).read_bytes()
        os.unlink(path)
        with pytest.raises(ContainerError) as info:
            container.attach_wait(["/bin/true"])
        assert str(info.value) == (f"ap-bad: no record of the plan it started with ({path} is missing; a container "
                                   "started by an earlier lxcframe must be restarted before it can be attached to)")
        st.write_private_file(os.path.dirname(path), st.PARTS_FILE, kept.replace(b'"drop"', b'"dropped"'))
        with pytest.raises(ContainerError) as info:
            container.attach_wait(["/bin/true"])
        assert str(info.value) == (f"ap-bad: malformed plan parts file {path}: .value: CapsPart has no field dropped")
        st.write_private_file(os.path.dirname(path), st.PARTS_FILE, b"{")
        with pytest.raises(ContainerError, match=r"^ap-bad: malformed plan parts file .*/parts\.json: not JSON: "):
            container.attach_wait(["/bin/true"])
    finally:
        container.stop(kill=True)


# --- the file's format, without a container ------------------------------------------------------------------------


def _entries(parts: tuple[Any, ...]) -> bytes:
    return started_parts.encode(parts)


def test_parts_of_plugins_not_loaded_here_are_left_out_and_the_rest_decoded():
    caps, core = CapsPart(drop=(CAP_SYS_ADMIN,), no_new_privs=False), CorePart(personality=None, rootfs_where="/c:1: ")
    raw = _entries((caps, core)).replace(b'"class":"lxcframe.plugins.core:CorePart"',
                                         b'"class":"elsewhere.parts:CorePart"')
    # The entry's class names a package no enabled plugin has: skipped, whatever it holds.
    assert started_parts.decode(raw, set()) == (caps,)
    assert started_parts.decode(_entries((caps, core)), set()) == (caps, core)


def test_an_entry_whose_part_is_of_another_class_is_refused():
    raw = _entries((CapsPart(drop=(), no_new_privs=True),)).replace(b'"class":"lxcframe.plugins.caps:CapsPart"',
                                                 b'"class":"lxcframe.plugins.core:CorePart"')
    with pytest.raises(TransferError, match=r"^parts\[0\]: holds a lxcframe\.plugins\.caps:CapsPart, not a "
                                            r"lxcframe\.plugins\.core:CorePart$"):
        started_parts.decode(raw, set())


@pytest.mark.parametrize(("raw", "why"), [
    (b"[]", "not an lxcframe-started-parts document"),
    (b'{"format":"lxcframe-started-parts","version":2,"parts":[]}',
     "lxcframe-started-parts version 2: this installation reads version 1"),
    (b'{"format":"lxcframe-started-parts","version":1,"parts":{}}', "expected format, version and a list of parts"),
    (b'{"format":"lxcframe-started-parts","version":1,"parts":[{"class":1,"part":{}}]}',
     "parts[0]: not a class name and its part"),
])
def test_a_malformed_document_says_why(raw, why):
    with pytest.raises(TransferError) as info:
        started_parts.decode(raw, set())
    assert str(info.value) == why
