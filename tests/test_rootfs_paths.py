"""Tests of lxcframe.rootfs_paths: symlinks and ``..`` in a hostile rootfs
must never lead outside it. Real kernel, run as root; mounts happen in a
forked child with its own mount namespace."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcframe import syscalls
from lxcframe.rootfs_paths import create_file_in_root, fd_path, makedirs_in_root, open_in_root

from .forked import run_in_child


class Rootfs:
    """A scratch rootfs with hostile symlinks, plus an O_PATH fd on it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd


@pytest.fixture
def rootfs() -> Iterator[Rootfs]:
    path = Path(tempfile.mkdtemp(prefix="lxcframe-rootfs-"))
    fd = -1
    try:
        (path / "etc").mkdir()
        (path / "proc").mkdir()
        (path / "mnt").symlink_to("/etc")  # absolute: must mean <rootfs>/etc
        (path / "up").symlink_to("../../../../../..")  # relative escape attempt
        (path / "passwd").symlink_to("/etc/passwd")
        (path / "resolv.conf").symlink_to("/etc/resolv.conf")  # dangling in rootfs
        (path / "afile").write_text("keep me")
        fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        yield Rootfs(path, fd)
    finally:
        if fd >= 0:
            os.close(fd)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def host_name_guard() -> Iterator[str]:
    """A fresh name that must not appear under host /etc or /; removed again
    if a bug created it anyway, so a failing test leaves nothing behind."""
    name = f"lxcframe-test-{uuid.uuid4().hex[:12]}"
    candidates = [Path("/etc") / name, Path("/etc") / f"{name}-marker", Path("/") / name]
    assert not any(path.exists() for path in candidates)
    try:
        yield name
    finally:
        for path in candidates:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists() or path.is_symlink():
                path.unlink()


def resolved(fd: int) -> str:
    return os.readlink(fd_path(fd))


def closing(fd: int) -> str:
    """Path behind ``fd``; closes it."""
    try:
        return resolved(fd)
    finally:
        os.close(fd)


def test_fd_path_format() -> None:
    assert fd_path(7) == "/proc/self/fd/7"


def test_open_in_root_follows_absolute_symlink_inside(rootfs: Rootfs) -> None:
    assert closing(open_in_root(rootfs.fd, "/mnt")) == str(rootfs.path / "etc")
    assert closing(open_in_root(rootfs.fd, "mnt")) == str(rootfs.path / "etc")
    assert closing(open_in_root(rootfs.fd, "/")) == str(rootfs.path)
    assert closing(open_in_root(rootfs.fd, "")) == str(rootfs.path)


def test_open_in_root_fds_are_cloexec(rootfs: Rootfs) -> None:
    fd = open_in_root(rootfs.fd, "/etc", os.O_PATH)
    try:
        assert not os.get_inheritable(fd)
    finally:
        os.close(fd)


def test_dotdot_escapes_are_clamped(rootfs: Rootfs, host_name_guard: str) -> None:
    assert closing(open_in_root(rootfs.fd, "../../../..")) == str(rootfs.path)
    assert closing(open_in_root(rootfs.fd, "/../../etc")) == str(rootfs.path / "etc")
    assert closing(open_in_root(rootfs.fd, "/up/etc")) == str(rootfs.path / "etc")
    assert closing(open_in_root(rootfs.fd, "etc/../../../etc")) == str(rootfs.path / "etc")

    fd = makedirs_in_root(rootfs.fd, f"../../{host_name_guard}/sub")
    assert closing(fd) == str(rootfs.path / host_name_guard / "sub")
    fd = makedirs_in_root(rootfs.fd, f"/up/{host_name_guard}/other")
    assert closing(fd) == str(rootfs.path / host_name_guard / "other")
    assert not (Path("/") / host_name_guard).exists()


def test_absolute_symlink_to_host_file_is_not_followed_to_host(rootfs: Rootfs) -> None:
    # <rootfs>/passwd -> /etc/passwd, which the rootfs does not have.
    with pytest.raises(FileNotFoundError) as info:
        open_in_root(rootfs.fd, "/passwd")
    assert "openat2" in str(info.value)
    (rootfs.path / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    assert closing(open_in_root(rootfs.fd, "/passwd")) == str(rootfs.path / "etc" / "passwd")


def test_magic_links_are_refused(rootfs: Rootfs) -> None:
    proc = rootfs.path / "proc"

    def child() -> tuple[int | None, str]:
        syscalls.unshare(syscalls.CLONE_NEWNS)
        syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_SLAVE)
        syscalls.mount("/proc", proc, None, syscalls.MS_BIND | syscalls.MS_REC)
        # A root fd from before unshare() would still see the old namespace's
        # mounts (without this /proc), so open it afresh.
        root = os.open(rootfs.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            # /proc/self/root is a magic link to the *host* root.
            fd = open_in_root(root, "/proc/self/root/etc")
        except OSError as exc:
            return exc.errno, ""
        finally:
            os.close(root)
        return None, closing(fd)

    code, where = run_in_child(child)
    assert code == errno.ELOOP, f"resolved to {where!r}"


def test_makedirs_through_symlink_stays_in_rootfs(rootfs: Rootfs, host_name_guard: str) -> None:
    fd = makedirs_in_root(rootfs.fd, f"/mnt/{host_name_guard}")
    try:
        assert resolved(fd) == str(rootfs.path / "etc" / host_name_guard)
        assert stat.S_ISDIR(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
    assert (rootfs.path / "etc" / host_name_guard).is_dir()
    assert not (Path("/etc") / host_name_guard).exists()


def test_makedirs_nested_and_idempotent(rootfs: Rootfs) -> None:
    first = closing(makedirs_in_root(rootfs.fd, "a/b/./c//d/", 0o700))
    assert first == str(rootfs.path / "a/b/c/d")
    assert stat.S_IMODE((rootfs.path / "a/b/c/d").stat().st_mode) == 0o700
    assert closing(makedirs_in_root(rootfs.fd, "/a/b/c/d")) == first
    assert closing(makedirs_in_root(rootfs.fd, "/")) == str(rootfs.path)
    assert closing(makedirs_in_root(rootfs.fd, "a/b/../x")) == str(rootfs.path / "a/x")


def test_makedirs_refuses_file_and_dangling_link(rootfs: Rootfs) -> None:
    with pytest.raises(NotADirectoryError):
        makedirs_in_root(rootfs.fd, "afile/sub")
    assert (rootfs.path / "afile").read_text() == "keep me"
    (rootfs.path / "dangling").symlink_to("/nowhere/at/all")
    with pytest.raises(FileNotFoundError):
        makedirs_in_root(rootfs.fd, "dangling/sub")
    assert not (rootfs.path / "nowhere").exists()


def test_create_file_in_root(rootfs: Rootfs, host_name_guard: str) -> None:
    # New file with missing parents, reached through the /mnt -> /etc link.
    fd = create_file_in_root(rootfs.fd, f"/mnt/{host_name_guard}/sub/file", 0o600)
    created = rootfs.path / "etc" / host_name_guard / "sub" / "file"
    try:
        assert resolved(fd) == str(created)
    finally:
        os.close(fd)
    assert created.is_file()
    assert stat.S_IMODE(created.stat().st_mode) == 0o600
    assert not (Path("/etc") / host_name_guard).exists()

    # Existing file: accepted, content untouched.
    assert closing(create_file_in_root(rootfs.fd, "afile")) == str(rootfs.path / "afile")
    assert (rootfs.path / "afile").read_text() == "keep me"

    # Dangling absolute symlink: its target is created inside the rootfs.
    fd = create_file_in_root(rootfs.fd, "/resolv.conf")
    assert closing(fd) == str(rootfs.path / "etc" / "resolv.conf")
    assert (rootfs.path / "etc" / "resolv.conf").is_file()

    with pytest.raises(IsADirectoryError):
        create_file_in_root(rootfs.fd, "/etc")
    with pytest.raises(IsADirectoryError):
        create_file_in_root(rootfs.fd, "/etc/..")
    with pytest.raises(IsADirectoryError):
        create_file_in_root(rootfs.fd, "/")


def test_mount_on_fd_path_lands_in_rootfs(rootfs: Rootfs, host_name_guard: str) -> None:
    marker = f"{host_name_guard}-marker"

    def child() -> dict[str, bool]:
        syscalls.unshare(syscalls.CLONE_NEWNS)
        syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_SLAVE)
        # mount(2) refuses (EINVAL) targets that belong to another mount
        # namespace, so the root fd must be opened after unshare().
        root = os.open(rootfs.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fd = open_in_root(root, "/mnt")
            try:
                syscalls.mount("tmpfs", fd_path(fd), "tmpfs", 0, "size=1m")
            finally:
                os.close(fd)
            # The fd still points at the covered directory; reopen to see the
            # new mount, again through the hostile symlink.
            top = open_in_root(root, "/mnt", os.O_RDONLY | os.O_DIRECTORY)
        finally:
            os.close(root)
        try:
            new = os.open(marker, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644, dir_fd=top)
            os.close(new)
        finally:
            os.close(top)
        with open("/proc/self/mountinfo", encoding="utf-8") as handle:
            mount_points = {line.split(" ")[4] for line in handle}
        return {
            "rootfs_etc_mounted": str(rootfs.path / "etc") in mount_points,
            "host_etc_mounted": "/etc" in mount_points,
            "marker_in_rootfs": (rootfs.path / "etc" / marker).exists(),
            "marker_on_host": (Path("/etc") / marker).exists(),
        }

    assert run_in_child(child) == {
        "rootfs_etc_mounted": True,
        "host_etc_mounted": False,
        "marker_in_rootfs": True,
        "marker_on_host": False,
    }
    # The tmpfs died with the child's mount namespace.
    assert not (rootfs.path / "etc" / marker).exists()
    assert not (Path("/etc") / marker).exists()
