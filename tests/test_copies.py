"""Copies of real containers: clone (whole and overlay snapshot), rename, snapshots, and what a failed copy leaves."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcframe import rootfs_overlay, syscalls
from lxcframe.container import Container
from lxcframe.copying_snapshots import Snapshot
from lxcframe.errors import ContainerError

pytestmark = pytest.mark.container

VETH = (
    ("lxc.net.0.type", "veth"),
    ("lxc.net.0.name", "eth0"),
    ("lxc.net.0.hwaddr", "00:16:3e:5a:0d:01"),
)
MAC = re.compile(r"00:16:3e(:[0-9a-f]{2}){3}\Z")


# --- helpers ---------------------------------------------------------------------------------------


def writable_root(container: Container) -> str:
    """Where a file written inside the container lands on the host: its rootfs, or its overlay's upper layer."""
    value = container.load_config().get("lxc.rootfs.path")
    return rootfs_overlay.parse(value).upper if rootfs_overlay.is_overlay(value) else value


def run_in(container: Container, script: str) -> str:
    """``execute`` a shell script in the container; its output (status 0 asserted), read back from the rootfs."""
    code = container.execute(["/bin/sh", "-c", f"exec > /.capture 2>&1; {script}"])
    path = os.path.join(writable_root(container), ".capture")
    text = Path(path).read_text()
    os.unlink(path)
    assert code == 0, text
    return text


def config_of(container: Container, key: str) -> str | None:
    return container.load_config().raw(key)


def acl_xattr(uid: int) -> bytes:
    """A POSIX access ACL (``system.posix_acl_access``, version 2) naming ``uid``, for a 0640 file: owner rw,
    ``uid`` rw masked to r, group r, others nothing (the kernel sets the mode from it: 0640 stays)."""
    entries = [(0x01, 6, 0xFFFFFFFF), (0x02, 6, uid), (0x04, 4, 0xFFFFFFFF), (0x10, 4, 0xFFFFFFFF),
               (0x20, 0, 0xFFFFFFFF)]
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *entry) for entry in entries)


# --- clone -----------------------------------------------------------------------------------------


def test_a_whole_clone_keeps_every_file_and_starts_with_its_own_name_and_mac(make_container, lxcpath):
    source = make_container("orig", config=VETH)
    root = source.load_config().get("lxc.rootfs.path")
    owned = Path(root, "root", "owned")
    owned.write_text("mine\n")
    os.chown(owned, 1234, 5678)
    os.chmod(owned, 0o640)
    os.setxattr(owned, "trusted.lxcframe", b"kept")
    os.setxattr(owned, "system.posix_acl_access", acl_xattr(4321))
    os.link(owned, Path(root, "root", "owned.link"))
    os.symlink("owned", Path(root, "root", "owned.sym"))
    os.mknod(Path(root, "root", "null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    config_before = Path(source.config_file_name).read_bytes()

    clone = source.clone("copy1")

    assert clone.name == "copy1" and clone.lxcpath == lxcpath
    assert config_of(clone, "lxc.rootfs.path") == f"dir:{lxcpath}/copy1/rootfs"
    assert config_of(clone, "lxc.uts.name") == "copy1"
    mac = config_of(clone, "lxc.net.0.hwaddr")
    assert mac is not None and MAC.match(mac) and mac != "00:16:3e:5a:0d:01"
    assert Path(source.config_file_name).read_bytes() == config_before
    copied = Path(lxcpath, "copy1", "rootfs", "root")
    info = os.lstat(copied / "owned")
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode), info.st_nlink) == (1234, 5678, 0o640, 2)
    assert os.lstat(copied / "owned.link").st_ino == info.st_ino != os.lstat(owned).st_ino
    assert os.readlink(copied / "owned.sym") == "owned"
    assert os.getxattr(copied / "owned", "trusted.lxcframe") == b"kept"
    assert os.getxattr(copied / "owned", "system.posix_acl_access") == acl_xattr(4321)
    node = os.lstat(copied / "null")
    assert stat.S_ISCHR(node.st_mode) and node.st_rdev == os.makedev(1, 3)
    assert sorted(os.listdir(os.path.join(lxcpath, "copy1"))) == ["config", "rootfs"]

    out = run_in(clone, "hostname; cat /sys/class/net/eth0/address; echo clone > /root/written")
    assert out.split() == ["copy1", mac]
    assert Path(lxcpath, "copy1", "rootfs", "root", "written").read_text() == "clone\n"
    assert not Path(root, "root", "written").exists()
    assert run_in(source, "hostname; cat /sys/class/net/eth0/address").split() == ["orig", "00:16:3e:5a:0d:01"]


def test_keep_name_and_keep_mac_and_a_mac_pattern_stays_a_pattern(make_container):
    pattern = (("lxc.net.1.type", "veth"), ("lxc.net.1.hwaddr", "00:16:3e:xx:xx:xx"))
    source = make_container("orig", config=(*VETH, *pattern))
    kept = source.clone("kept", keep_name=True, keep_mac=True)
    assert config_of(kept, "lxc.uts.name") == "orig"
    assert (config_of(kept, "lxc.net.0.hwaddr"), config_of(kept, "lxc.net.1.hwaddr")) == (
        "00:16:3e:5a:0d:01", "00:16:3e:xx:xx:xx")
    fresh = source.clone("fresh")
    assert config_of(fresh, "lxc.uts.name") == "fresh"
    mac = config_of(fresh, "lxc.net.0.hwaddr")
    assert mac is not None and MAC.match(mac) and mac != "00:16:3e:5a:0d:01"
    assert config_of(fresh, "lxc.net.1.hwaddr") == "00:16:3e:xx:xx:xx", "every start draws it anew already"


def test_paths_below_the_container_directory_move_with_the_copy(make_container, lxcpath):
    old = os.path.join(lxcpath, "orig")
    source = make_container("orig")
    Path(old, "fstab").write_text("tmpfs mnt tmpfs defaults 0 0\n")
    hook = Path(old, "hook.sh")
    hook.write_text('#!/bin/sh\necho "$LXC_NAME" > "$(dirname "$0")/hook-ran"\n')
    hook.chmod(0o755)
    os.makedirs(os.path.join(lxcpath, "orig10"))  # a sibling whose path starts with the old one's
    for key, value in (("lxc.mount.fstab", f"{old}/fstab"), ("lxc.hook.pre-start", f"{old}/hook.sh"),
                       ("lxc.log.file", f"{old}/orig.log"),
                       ("lxc.mount.entry", f"{lxcpath}/orig10 mnt none bind,optional 0 0")):
        source.set_config_item(key, value)

    clone = source.clone("copy")

    new = os.path.join(lxcpath, "copy")
    assert config_of(clone, "lxc.mount.fstab") == f"{new}/fstab"
    assert config_of(clone, "lxc.hook.pre-start") == f"{new}/hook.sh"
    assert config_of(clone, "lxc.log.file") == f"{new}/orig.log"
    assert config_of(clone, "lxc.mount.entry") == f"{lxcpath}/orig10 mnt none bind,optional 0 0"
    assert Path(new, "fstab").read_text() == "tmpfs mnt tmpfs defaults 0 0\n"
    assert "tmpfs /mnt tmpfs" in run_in(clone, "cat /proc/mounts")
    assert Path(new, "hook-ran").read_text() == "copy\n", "the clone ran its own copy of the hook"
    assert not Path(old, "hook-ran").exists()
    os.rmdir(os.path.join(lxcpath, "orig10"))


def test_a_running_source_and_an_existing_target_are_refused(make_container, lxcpath):
    source = make_container("orig")
    make_container("other")
    source.start()
    try:
        entries = sorted(os.listdir(lxcpath))
        for copy in (lambda: source.clone("copy"), lambda: source.rename("copy"), source.snapshot):
            with pytest.raises(ContainerError) as refused:
                copy()
            assert re.fullmatch(r"orig: is running: stop it before (copying it|renaming it|taking a snapshot)",
                                str(refused.value))
        assert sorted(os.listdir(lxcpath)) == entries
    finally:
        source.stop(kill=True)
    for make in (lambda: source.clone("other"), lambda: source.rename("other"),
                 lambda: source.clone("other", snapshot=True)):
        with pytest.raises(ContainerError) as exists:
            make()
        assert str(exists.value) == f"other: already exists ({lxcpath}/other)"
    assert sorted(os.listdir(os.path.join(lxcpath, "other"))) == ["config", "rootfs"]


# --- overlay snapshot clone ------------------------------------------------------------------------


def test_an_overlay_snapshot_clone_writes_to_its_own_layer(make_container, lxcpath):
    source = make_container("orig")
    lower = source.load_config().get("lxc.rootfs.path")
    clone = source.clone("layered", snapshot=True)
    delta = os.path.join(lxcpath, "layered", "delta0")
    assert config_of(clone, "lxc.rootfs.path") == f"overlay:{lower}:{delta}"
    assert sorted(os.listdir(os.path.join(lxcpath, "layered"))) == ["config", "delta0", "olwork"]
    assert os.listdir(delta) == []

    out = run_in(clone, "hostname; echo layered > /etc/clone-file; rm /etc/inittab; grep ' / ' /proc/mounts")
    assert out.splitlines()[0] == "layered"
    assert f"overlay / overlay rw,relatime,lowerdir={lower},upperdir={delta}" in out
    assert Path(delta, "etc", "clone-file").read_text() == "layered\n"
    whiteout = os.lstat(os.path.join(delta, "etc", "inittab"))
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0, "a deletion is a whiteout in the layer"
    assert not Path(lower, "etc", "clone-file").exists() and Path(lower, "etc", "inittab").is_file()
    assert run_in(source, "ls /etc").split() == sorted(os.listdir(os.path.join(lower, "etc")))

    again = clone.clone("layered2", snapshot=True)
    delta2 = os.path.join(lxcpath, "layered2", "delta0")
    assert config_of(again, "lxc.rootfs.path") == f"overlay:{lower}:{delta2}"
    assert run_in(again, "cat /etc/clone-file; test -e /etc/inittab || echo gone").split() == ["layered", "gone"]
    clone.destroy()
    assert Path(lower, "etc", "inittab").is_file(), "destroying the clone leaves the source's rootfs"


# --- rename ----------------------------------------------------------------------------------------


def test_rename_moves_the_directory_and_the_paths_naming_it(make_container, lxcpath):
    source = make_container("orig")
    old = os.path.join(lxcpath, "orig")
    Path(old, "fstab").write_text("tmpfs mnt tmpfs defaults 0 0\n")
    source.set_config_item("lxc.mount.fstab", f"{old}/fstab")
    renamed = source.rename("moved")
    new = os.path.join(lxcpath, "moved")
    assert not os.path.exists(old) and not source.defined
    assert renamed.defined and sorted(os.listdir(new)) == ["config", "fstab", "rootfs"]
    assert config_of(renamed, "lxc.rootfs.path") == f"dir:{new}/rootfs"
    assert config_of(renamed, "lxc.mount.fstab") == f"{new}/fstab"
    assert config_of(renamed, "lxc.uts.name") == "moved"
    out = run_in(renamed, "hostname; grep ' /mnt ' /proc/mounts")
    assert out.splitlines()[0] == "moved" and "tmpfs /mnt tmpfs" in out


# --- snapshots -------------------------------------------------------------------------------------


def test_snapshot_change_restore_list_and_destroy(make_container, lxcpath, tmp_path):
    container = make_container("orig")
    root = container.load_config().get("lxc.rootfs.path")
    motd = Path(root, "etc", "motd")
    motd.write_text("v1\n")
    comment = tmp_path / "why"
    comment.write_text("before the upgrade\n")

    assert container.snapshot(str(comment)) == "snap0"
    snaps = os.path.join(lxcpath, "orig", "snaps")
    assert sorted(os.listdir(os.path.join(snaps, "snap0"))) == ["comment", "config", "rootfs", "ts"]
    assert Path(snaps, "snap0", "comment").read_text() == "before the upgrade\n"
    assert config_of(Container("snap0", snaps), "lxc.rootfs.path") == f"dir:{snaps}/snap0/rootfs"
    assert config_of(Container("snap0", snaps), "lxc.uts.name") == "orig"
    motd.write_text("v2\n")
    Path(root, "etc", "added").write_text("new\n")
    assert container.snapshot() == "snap1"

    listed = container.snapshot_list()
    ts0, ts1 = (Path(snaps, name, "ts").read_text() for name in ("snap0", "snap1"))
    assert re.fullmatch(r"\d{4}:\d\d:\d\d \d\d:\d\d:\d\d", ts0)
    assert listed == [Snapshot("snap0", f"{snaps}/snap0/comment", ts0, snaps), Snapshot("snap1", None, ts1, snaps)]

    restored = container.snapshot_restore("snap0")
    assert restored.name == "orig"
    assert motd.read_text() == "v1\n" and not Path(root, "etc", "added").exists()
    assert [snap.name for snap in container.snapshot_list()] == ["snap0", "snap1"]
    assert sorted(os.listdir(os.path.join(lxcpath, "orig"))) == ["config", "rootfs", "snaps"]
    assert sorted(os.listdir(lxcpath)) == ["orig"]
    assert run_in(container, "hostname; cat /etc/motd").split() == ["orig", "v1"]

    other = container.snapshot_restore("snap1", "fromsnap")
    assert config_of(other, "lxc.uts.name") == "fromsnap"
    assert config_of(other, "lxc.rootfs.path") == f"dir:{lxcpath}/fromsnap/rootfs"
    assert run_in(other, "hostname; cat /etc/motd /etc/added").split() == ["fromsnap", "v2", "new"]
    assert sorted(os.listdir(os.path.join(lxcpath, "fromsnap"))) == ["config", "rootfs"]
    other.destroy()

    with pytest.raises(ContainerError) as refused:
        container.destroy()
    assert str(refused.value) == "orig: has snapshots (snap0, snap1); destroy them first"
    container.snapshot_destroy("snap0")
    assert [snap.name for snap in container.snapshot_list()] == ["snap1"]
    with pytest.raises(ContainerError) as unknown:
        container.snapshot_destroy("snap0")
    assert str(unknown.value) == "orig: no snapshot 'snap0' (it has snap1)"
    container.snapshot_destroy("snap1")
    assert container.snapshot_list() == [] and not os.path.exists(snaps)
    container.destroy()
    assert not os.path.exists(os.path.join(lxcpath, "orig"))


def test_snapshot_of_an_overlay_clone_keeps_the_layer_and_restores_it(make_container, lxcpath):
    source = make_container("orig")
    clone = source.clone("layered", snapshot=True)
    run_in(clone, "echo one > /etc/state")
    assert clone.snapshot() == "snap0"
    snap_dir = os.path.join(lxcpath, "layered", "snaps", "snap0")
    lower = source.load_config().get("lxc.rootfs.path")
    assert config_of(Container("snap0", os.path.dirname(snap_dir)), "lxc.rootfs.path") == (
        f"overlay:{lower}:{snap_dir}/delta0")
    run_in(clone, "echo two > /etc/state")
    clone.snapshot_restore("snap0")
    assert run_in(clone, "cat /etc/state") == "one\n"
    assert config_of(clone, "lxc.rootfs.path") == f"overlay:{lower}:{lxcpath}/layered/delta0"
    clone.snapshot_destroy("snap0")


# --- failures --------------------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs_at(path: Path, size: str) -> Iterator[str]:
    """A tmpfs of ``size`` on ``path`` (mount(2) itself: the mount command would leave /run/mount behind)."""
    path.mkdir()
    syscalls.mount("tmpfs", str(path), "tmpfs", 0, f"size={size},mode=0755")
    try:
        yield str(path)
    finally:
        syscalls.umount2(str(path))


def test_a_failed_copy_leaves_no_target(make_container, lxcpath, tmp_path):
    source = make_container("orig")
    with tmpfs_at(tmp_path / "small", "1m") as small, pytest.raises(ContainerError) as full:
        try:
            source.clone("big", lxcpath=small)
        finally:
            assert os.listdir(small) == []
    # cp's own complaint, first line: a file of the rootfs could not be written.
    assert re.fullmatch(rf"orig: copying {lxcpath}/orig/rootfs failed: cp: .*No space left on device.*",
                        str(full.value))


def test_a_failed_snapshot_or_restore_leaves_the_container_as_it_was(tmp_path, rundir, host):
    # Room for one busybox container and one copy of it, not two.
    with tmpfs_at(tmp_path / "small", "5m") as small_lxcpath:
        _fill_and_fail(small_lxcpath)


def _fill_and_fail(small_lxcpath: str) -> None:
    container = Container("tight", small_lxcpath)
    container.create("busybox")  # the host config of the rundir fixture adds lxc.cgroup.relative = 1
    try:
        root = container.load_config().get("lxc.rootfs.path")
        Path(root, "etc", "motd").write_text("v1\n")
        assert container.snapshot() == "snap0"
        Path(root, "etc", "motd").write_text("v2\n")
        with pytest.raises(ContainerError, match="No space left on device"):
            container.snapshot()
        assert os.listdir(os.path.join(small_lxcpath, "tight", "snaps")) == ["snap0"]
        with pytest.raises(ContainerError, match="No space left on device"):
            container.snapshot_restore("snap0")
        assert Path(root, "etc", "motd").read_text() == "v2\n"
        assert sorted(os.listdir(small_lxcpath)) == ["tight"]
        assert [snap.name for snap in container.snapshot_list()] == ["snap0"]
        container.snapshot_destroy("snap0")
        assert container.snapshot() == "snap0", "the room the failed copies took was given back"
        container.snapshot_destroy("snap0")
    finally:
        container.destroy()


def test_what_cannot_be_copied_is_refused_before_anything_is_made(make_container, lxcpath, tmp_path):
    source = make_container("orig")
    entries = sorted(os.listdir(lxcpath))
    with pytest.raises(ContainerError) as unreadable:
        source.snapshot(str(tmp_path / "missing"))
    assert str(unreadable.value) == f"orig: cannot read the comment file {tmp_path}/missing: No such file or directory"
    with pytest.raises(ContainerError) as unknown:
        source.snapshot_restore("snap3")
    assert str(unknown.value) == "orig: no snapshot 'snap3' (it has none)"

    layered = source.clone("layered", snapshot=True)
    entries = sorted([*entries, "layered"])
    with pytest.raises(ContainerError) as whole:
        layered.clone("whole")
    assert str(whole.value) == (f"layered: its rootfs is an overlay ({config_of(layered, 'lxc.rootfs.path')}): "
                                "only an overlay snapshot of it can be made (snapshot=True)")

    source.set_config_item("lxc.rootfs.path", f"{tmp_path}/nowhere")
    with pytest.raises(ContainerError) as missing:
        source.clone("copy")
    line = Path(source.config_file_name).read_text().splitlines().index(f"lxc.rootfs.path = {tmp_path}/nowhere") + 1
    assert str(missing.value) == (f"{source.config_file_name}:{line}: lxc.rootfs.path: {tmp_path}/nowhere "
                                  "is not a directory")
    source.set_config_item("lxc.rootfs.path", "")
    with pytest.raises(ContainerError) as unset:
        source.snapshot()
    assert str(unset.value) == f"orig: {source.config_file_name} sets no lxc.rootfs.path: no rootfs to copy"
    assert sorted(os.listdir(lxcpath)) == entries
    assert not os.path.exists(os.path.join(lxcpath, "orig", "snaps"))
    source.set_config_item("lxc.rootfs.path", f"dir:{lxcpath}/orig/rootfs")  # for its teardown's destroy


def test_an_overlay_rootfs_value_is_checked_at_its_line_and_a_missing_layer_fails_the_start(make_container, lxcpath):
    from lxcframe.errors import ConfigError, StageError

    source = make_container("orig")
    for value, reason in (("overlay:/a", "expected overlay:/LOWER:/UPPER (two absolute paths)"),
                          ("overlay:a:/b", "expected overlay:/LOWER:/UPPER (two absolute paths)"),
                          ("overlay:/a,b:/c\\d", "overlay paths cannot contain ',' '\\\\'")):
        with pytest.raises(ConfigError) as refused:
            source.set_config_item("lxc.rootfs.path", value)
        assert (refused.value.key, refused.value.value, refused.value.reason) == ("lxc.rootfs.path", value, reason)
    clone = source.clone("layered", snapshot=True)
    delta = os.path.join(lxcpath, "layered", "delta0")
    os.rmdir(delta)
    with pytest.raises(StageError) as failed:
        clone.execute(["/bin/true"])
    line = Path(clone.config_file_name).read_text().splitlines().index(
        f"lxc.rootfs.path = {config_of(clone, 'lxc.rootfs.path')}") + 1
    assert failed.value.stage == "rootfs"
    assert (f"{clone.config_file_name}:{line}: lxc.rootfs.path: the overlay's upper directory is not a directory"
            in str(failed.value)) and delta in str(failed.value)
    assert not os.path.exists(delta)


def test_a_copy_is_of_the_config_the_object_sees_unsaved_edits_included(make_container, lxcpath):
    source = make_container("orig")
    source.append_config_item("lxc.environment", "FROM=edit")
    source.clear_config_item("lxc.pty.max")
    on_disk = Path(source.config_file_name).read_text()
    clone = source.clone("copy")
    assert clone.get_config_values("lxc.environment") == ["FROM=edit"]
    assert clone.get_config_item("lxc.pty.max") is None
    assert run_in(clone, "echo $FROM") == "edit\n"
    assert Path(source.config_file_name).read_text() == on_disk and source.has_unsaved_config
    renamed = source.rename("moved")
    assert renamed.get_config_values("lxc.environment") == ["FROM=edit"]
    assert renamed.get_config_item("lxc.pty.max") is None and not renamed.has_unsaved_config
    ghost = Container("ghost", lxcpath)
    ghost.append_config_item("lxc.rootfs.path", f"dir:{lxcpath}/moved/rootfs")
    with pytest.raises(ContainerError) as missing:
        ghost.clone("copy2")
    assert str(missing.value) == f"ghost: no such container (no {lxcpath}/ghost/config)"
    assert sorted(os.listdir(lxcpath)) == ["copy", "moved"]


# --- the config rewrite alone ----------------------------------------------------------------------


def test_the_config_rewrite_moves_whole_path_components_and_keeps_the_rest_of_each_line():
    from lxcframe.copying_config import ConfigRewrite, rewrite_config

    text = ("# kept comment\n"
            "lxc.rootfs.path = dir:/l/c1/rootfs\n"
            "lxc.mount.fstab = /l/c1/fstab\n"
            "lxc.mount.entry = /l/c10/x mnt none bind 0 0\n"
            "lxc.hook.start-host = '/l/c1/hook one'\n"
            "lxc.include = /l/c1\n"
            "\n"
            "lxc.net.0.hwaddr = 00:16:3e:00:00:01\n")
    rewrite = ConfigRewrite("/l/c1", "/m/c2", rootfs="dir:/m/c2/rootfs", uts_name="c2", new_macs=False)
    assert rewrite_config(text, "/l/c1/config", rewrite) == (
        "# kept comment\n"
        "lxc.rootfs.path = dir:/m/c2/rootfs\n"
        "lxc.mount.fstab = /m/c2/fstab\n"
        "lxc.mount.entry = /l/c10/x mnt none bind 0 0\n"
        "lxc.hook.start-host = /m/c2/hook one\n"
        "lxc.include = /m/c2\n"
        "\n"
        "lxc.net.0.hwaddr = 00:16:3e:00:00:01\n"
        "lxc.uts.name = c2\n")
    kept = ConfigRewrite("/l/c1", "/m/c2", rootfs=None, uts_name=None, new_macs=False)
    assert rewrite_config("lxc.uts.name = c1\nlxc.rootfs.path = /l/c1/rootfs\n", "/l/c1/config", kept) == (
        "lxc.uts.name = c1\nlxc.rootfs.path = /m/c2/rootfs\n")


def test_a_first_snapshot_that_fails_leaves_no_snaps_directory(tmp_path, rundir, host):
    # Room for one busybox container only.
    with tmpfs_at(tmp_path / "small", "3m") as small:
        container = Container("tight", small)
        container.create("busybox")
        try:
            with pytest.raises(ContainerError, match="No space left on device"):
                container.snapshot()
            assert sorted(os.listdir(os.path.join(small, "tight"))) == ["config", "rootfs"]
            with pytest.raises(ContainerError, match="No space left on device"):
                container.clone("twin")
            assert os.listdir(small) == ["tight"]
        finally:
            container.destroy()


def test_the_snapshot_verb_takes_lists_restores_and_destroys_as_lxc_snapshot(make_container, lxcpath, tmp_path):
    from .conftest import run_cli

    container = make_container("snapcli")
    root = Path(container.get_config_item("lxc.rootfs.path").removeprefix("dir:"))
    comment = tmp_path / "comment"
    comment.write_text("before the change\n")

    def cli(*args: str):
        return run_cli("-P", lxcpath, "snapshot", "snapcli", *args)

    assert cli("-L").stdout == "No snapshots\n"
    try:
        _snapshot_verb(cli, root, comment, lxcpath)
    finally:
        for snap in container.snapshot_list():
            container.snapshot_destroy(snap.name)


def _snapshot_verb(cli, root: Path, comment: Path, lxcpath: str) -> None:
    taken = cli("-c", str(comment))
    assert (taken.returncode, taken.stdout) == (0, "snap0\n"), taken.stderr
    (root / "etc" / "changed").write_text("after\n")
    listed = cli("-L", "-C")
    assert listed.returncode == 0, listed.stderr
    first, second = listed.stdout.splitlines()
    assert re.fullmatch(rf"snap0 \({re.escape(lxcpath)}/snapcli/snaps\) \d{{4}}:\d\d:\d\d \d\d:\d\d:\d\d", first)
    assert second == "before the change"
    assert cli("-r", "snap0").returncode == 0
    assert not (root / "etc" / "changed").exists()
    assert cli("-r", "snap0", "-N", "snapnew").returncode == 0
    assert Container("snapnew", lxcpath).defined
    Container("snapnew", lxcpath).destroy()
    assert cli().stdout == "snap1\n"
    assert cli("-d", "ALL").returncode == 0
    assert cli("-L").stdout == "No snapshots\n"
    refused = cli("-d", "snap9")
    assert refused.returncode == 1 and "snap9" in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert cli("-N", "x").returncode != 0
