"""Tests of lxcframe.syscalls against the real kernel (run as root).

Anything that changes namespaces, capabilities or prctl state runs in a
forked child, so the pytest process itself is never altered.
"""

from __future__ import annotations

import errno
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lxcframe import syscalls as sc

from .forked import run_in_child


def wait_child(pid: int, timeout: float = 30) -> int:
    """waitpid with a deadline; kills the child if it overstays."""
    pidfd = sc.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
        if not ready:
            sc.pidfd_send_signal(pidfd, signal.SIGKILL)
    finally:
        os.close(pidfd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.fixture
def scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="lxcframe-syscalls-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_rslave() -> None:
    # The child's new mount ns starts as a copy; rslave makes sure nothing it
    # mounts can propagate back to the host even if / is shared there.
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_SLAVE)


def is_mounted(path: Path) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        return any(line.split(" ")[4] == target for line in handle)


def status_mask(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(f"{field}:"):
                return int(line.split()[1], 16)
    raise AssertionError(f"{field} not in /proc/self/status")


# --------------------------------------------------------------------------
# Capability names
# --------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["sys_admin", "SYS_ADMIN", "CAP_SYS_ADMIN", "cap_sys_admin", 21, "21"])
def test_cap_number_spellings(spelling: str | int) -> None:
    assert sc.cap_number(spelling) == 21


@pytest.mark.parametrize("bad", ["", "sys_admn", "CAP_", -1, 64, True, 2.0, "cap_21"])
def test_cap_number_rejects(bad: Any) -> None:
    with pytest.raises(ValueError):
        sc.cap_number(bad)


def test_capability_table_matches_kernel() -> None:
    assert sorted(sc.CAPABILITIES.values()) == list(range(41))
    assert sc.CAPABILITIES["checkpoint_restore"] == 40
    assert sc.cap_last_cap() >= 40


# --------------------------------------------------------------------------
# Namespaces
# --------------------------------------------------------------------------


def test_unshare_uts_sethostname_does_not_touch_host() -> None:
    host_before = socket.gethostname()
    new_name = f"lxcframe-test-{os.getpid()}"

    def child() -> str:
        sc.unshare(sc.CLONE_NEWUTS)
        sc.sethostname(new_name)
        return socket.gethostname()

    assert run_in_child(child) == new_name
    assert socket.gethostname() == host_before


def test_setns_returns_to_original_uts_namespace() -> None:
    host_name = socket.gethostname()
    host_ns = os.readlink("/proc/self/ns/uts")

    def child() -> tuple[str, str, bool]:
        original = os.open("/proc/self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
        sc.unshare(sc.CLONE_NEWUTS)
        sc.sethostname("lxcframe-setns")
        inside = socket.gethostname()
        sc.setns(original, sc.CLONE_NEWUTS)
        os.close(original)
        same_ns = os.readlink("/proc/self/ns/uts") == host_ns
        return inside, socket.gethostname(), same_ns

    inside, after, same_ns = run_in_child(child)
    assert inside == "lxcframe-setns"
    assert after == host_name
    assert same_ns


def test_setns_wrong_type_fails() -> None:
    fd = os.open("/proc/self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    try:
        # nstype mismatch is rejected before anything changes.
        with pytest.raises(OSError) as info:
            sc.setns(fd, sc.CLONE_NEWNET)
        assert info.value.errno == errno.EINVAL
        assert "setns" in str(info.value)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------
# Mounts
# --------------------------------------------------------------------------


def test_mount_umount_tmpfs_in_private_mount_ns(scratch: Path) -> None:
    target = scratch / "mnt"
    target.mkdir()

    def child() -> tuple[bool, bool, bool]:
        sc.unshare(sc.CLONE_NEWNS)
        make_rslave()
        sc.mount("tmpfs", target, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "size=1m,mode=0700")
        mounted = is_mounted(target)
        (target / "file").write_text("x")
        has_file = (target / "file").exists()
        sc.umount2(target)
        return mounted, has_file, is_mounted(target)

    mounted, has_file, still_mounted = run_in_child(child)
    assert mounted and has_file and not still_mounted
    assert not is_mounted(target)
    assert not (target / "file").exists()


def test_pivot_root_into_tmpfs(scratch: Path) -> None:
    new_root = scratch / "root"
    new_root.mkdir()

    def child() -> tuple[list[str], str, bool]:
        sc.unshare(sc.CLONE_NEWNS)
        sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
        sc.mount("tmpfs", new_root, "tmpfs", 0, "size=1m")
        (new_root / "old").mkdir()
        (new_root / "marker").write_text("pivoted")
        os.chdir(new_root)
        sc.pivot_root(".", "old")
        os.chdir("/")
        sc.umount2("/old", sc.MNT_DETACH)
        with open("/marker", encoding="ascii") as handle:
            marker = handle.read()
        return sorted(os.listdir("/")), marker, os.path.exists("/old/proc/self")

    entries, marker, old_visible = run_in_child(child)
    assert entries == ["marker", "old"]
    assert marker == "pivoted"
    assert not old_visible
    assert not is_mounted(new_root)


def test_open_tree_move_mount_and_mount_setattr(scratch: Path) -> None:
    source = scratch / "src"
    dest = scratch / "dst"
    source.mkdir()
    dest.mkdir()

    def child() -> tuple[str, int]:
        sc.unshare(sc.CLONE_NEWNS)
        make_rslave()
        sc.mount("tmpfs", source, "tmpfs", 0, "size=1m")
        (source / "hello").write_text("world")
        tree = sc.open_tree(sc.AT_FDCWD, source, sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC)
        try:
            # Make the detached clone read-only before anyone can see it.
            sc.mount_setattr(tree, "", sc.AT_EMPTY_PATH, attr_set=sc.MOUNT_ATTR_RDONLY)
            sc.move_mount(tree, "", sc.AT_FDCWD, dest, sc.MOVE_MOUNT_F_EMPTY_PATH)
        finally:
            os.close(tree)
        content = (dest / "hello").read_text()
        try:
            (dest / "new").write_text("nope")
            write_errno = 0
        except OSError as exc:
            write_errno = exc.errno or 0
        return content, write_errno

    content, write_errno = run_in_child(child)
    assert content == "world"
    assert write_errno == errno.EROFS
    assert not is_mounted(dest)


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def test_umount2_on_non_mount_names_syscall(scratch: Path) -> None:
    with pytest.raises(OSError) as info:
        sc.umount2(scratch)
    assert info.value.errno == errno.EINVAL
    assert "umount2" in str(info.value)
    assert info.value.filename == str(scratch)


def test_errors_are_specific_oserror_subclasses(scratch: Path) -> None:
    missing = scratch / "missing"
    with pytest.raises(FileNotFoundError) as not_found:
        sc.mount("tmpfs", missing, "tmpfs")
    assert "mount" in str(not_found.value)
    assert str(missing) in str(not_found.value)

    with pytest.raises(OSError) as bad_flags:
        sc.unshare(0x1)  # CSIGNAL bits are not valid unshare flags
    assert bad_flags.value.errno == errno.EINVAL
    assert "unshare" in str(bad_flags.value)

    with pytest.raises(OSError) as bad_prctl:
        sc.prctl(0x7FFFFFFF)
    assert bad_prctl.value.errno == errno.EINVAL
    assert "prctl" in str(bad_prctl.value)

    with pytest.raises(OSError) as bad_keyctl:
        sc.keyctl(0x7FFF)
    assert bad_keyctl.value.errno == errno.EOPNOTSUPP
    assert "keyctl" in str(bad_keyctl.value)


def test_openat2_resolve_flags(scratch: Path) -> None:
    (scratch / "dir").mkdir()
    (scratch / "link").symlink_to("dir")
    root = os.open(scratch, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = sc.openat2(root, "link", os.O_PATH | os.O_CLOEXEC)
        try:
            assert os.readlink(f"/proc/self/fd/{fd}") == str(scratch / "dir")
        finally:
            os.close(fd)
        with pytest.raises(OSError) as loop:
            sc.openat2(root, "link", os.O_PATH, resolve=sc.RESOLVE_NO_SYMLINKS)
        assert loop.value.errno == errno.ELOOP
        with pytest.raises(OSError) as beneath:
            sc.openat2(root, "..", os.O_PATH, resolve=sc.RESOLVE_BENEATH)
        assert beneath.value.errno == errno.EXDEV
        assert "openat2" in str(beneath.value)
        with pytest.raises(OSError) as strict:
            sc.openat2(root, "dir", os.O_RDONLY, mode=0o644)  # mode without O_CREAT
        assert strict.value.errno == errno.EINVAL
    finally:
        os.close(root)


# --------------------------------------------------------------------------
# Capabilities and prctl
# --------------------------------------------------------------------------


def test_capget_returns_root_sets() -> None:
    caps = sc.capget()
    # Root holds every capability of its bounding set (this VM's bounding set
    # happens to lack CAP_SYS_RESOURCE, so compare with /proc, not with 2**41-1).
    assert caps.effective == status_mask("CapEff")
    assert caps.permitted == status_mask("CapPrm")
    assert caps.inheritable == status_mask("CapInh")
    assert caps.permitted == status_mask("CapBnd")
    assert caps.effective == caps.permitted
    assert caps.has("sys_admin") and caps.has("CAP_SETPCAP", "permitted")
    assert caps.effective >> (sc.cap_last_cap() + 1) == 0
    assert sc.capget(os.getpid()) == caps


def test_capset_drops_effective_cap_in_child() -> None:
    net_raw = sc.cap_number("net_raw")

    def child() -> tuple[bool, bool]:
        before = sc.capget()
        sc.capset(before.effective & ~(1 << net_raw), before.permitted, before.inheritable)
        after = sc.capget()
        return after.has(net_raw), after.has(net_raw, "permitted")

    effective, permitted = run_in_child(child)
    assert not effective and permitted
    assert sc.capget().has(net_raw)


def test_prctl_helpers_in_child() -> None:
    def child() -> dict[str, Any]:
        result: dict[str, Any] = {}
        sc.set_pdeathsig(signal.SIGTERM)
        result["pdeathsig"] = sc.get_pdeathsig()
        sc.set_no_new_privs()
        result["nnp"] = sc.prctl(sc.PR_GET_NO_NEW_PRIVS)
        sc.drop_bounding_cap("CAP_NET_RAW")
        result["bounding_net_raw"] = sc.bounding_has("net_raw")
        caps = sc.capget()
        bind = 1 << sc.cap_number("net_bind_service")
        sc.capset(caps.effective, caps.permitted, caps.inheritable | bind)
        sc.ambient_raise("net_bind_service")
        result["ambient_raised"] = sc.ambient_is_set("net_bind_service")
        sc.ambient_clear_all()
        result["ambient_cleared"] = not sc.ambient_is_set("net_bind_service")
        return result

    assert run_in_child(child) == {
        "pdeathsig": signal.SIGTERM,
        "nnp": 1,
        "bounding_net_raw": False,
        "ambient_raised": True,
        "ambient_cleared": True,
    }
    assert sc.prctl(sc.PR_GET_NO_NEW_PRIVS) == 0
    assert sc.bounding_has("net_raw")


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------


def test_pidfd_open_and_send_signal_kill_sleep() -> None:
    proc = subprocess.Popen(["sleep", "100"])
    try:
        pidfd = sc.pidfd_open(proc.pid)
        try:
            assert not os.get_inheritable(pidfd)  # pidfds are always CLOEXEC
            sc.pidfd_send_signal(pidfd, signal.SIGKILL)
        finally:
            os.close(pidfd)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_pidfd_open_missing_process() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()  # reaped: the pid no longer exists (barring reuse)
    with pytest.raises(OSError) as info:
        sc.pidfd_open(proc.pid)
    assert info.value.errno == errno.ESRCH
    assert "pidfd_open" in str(info.value)


def test_execveat_on_o_path_fd_of_true() -> None:
    pid = os.fork()
    if pid == 0:
        try:
            fd = os.open("/bin/true", os.O_PATH | os.O_CLOEXEC)
            sc.execveat(fd, "", ["true"], {"PATH": "/usr/bin:/bin"}, sc.AT_EMPTY_PATH)
        finally:
            os._exit(99)  # only reached if execveat failed
    assert wait_child(pid) == 0


def test_execveat_failure_raises_in_child(scratch: Path) -> None:
    missing = scratch / "no-such-binary"

    def child() -> tuple[int | None, str]:
        try:
            sc.execveat(sc.AT_FDCWD, missing, ["x"], [], 0)
        except OSError as exc:
            return exc.errno, str(exc)
        return None, "execveat returned"

    code, message = run_in_child(child)
    assert code == errno.ENOENT
    assert "execveat" in message and str(missing) in message


# --------------------------------------------------------------------------
# Keyrings
# --------------------------------------------------------------------------


def test_join_session_keyring_in_child() -> None:
    parent = sc.session_keyring_id()

    def child() -> tuple[int, int, int, int]:
        anonymous = sc.join_session_keyring()
        first = sc.session_keyring_id()
        named = sc.join_session_keyring(f"lxcframe-test-{os.getpid()}")
        return anonymous, first, named, sc.session_keyring_id()

    anonymous, first, named, second = run_in_child(child)
    assert anonymous != parent and first == anonymous
    assert named not in (parent, anonymous) and second == named
    assert sc.session_keyring_id() == parent


# --------------------------------------------------------------------------
# Probes
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "open_tree",
        "move_mount",
        "execveat",
        "openat2",
        "pidfd_open",
        "pidfd_send_signal",
        "mount_setattr",
        "clone3",
    ],
)
def test_syscall_supported_on_this_kernel(name: str) -> None:
    assert sc.syscall_supported(name) is True


def test_syscall_supported_unknown_name() -> None:
    with pytest.raises(ValueError):
        sc.syscall_supported("reboot")


def test_libseccomp_available() -> None:
    found = sc.libseccomp_available()
    assert found is not None and "libseccomp" in found
