"""Templates (busybox, dir, tar) and the runtime keys of the core plugins, on real containers."""

from __future__ import annotations

import os
import tarfile

import pytest

from lxcframe import state as st
from lxcframe.container import Container
from lxcframe.errors import ContainerError

from .test_lifecycle import capture

pytestmark = pytest.mark.container


def test_tar_template_unpacks_a_rootfs(make_container, lxcpath, tmp_path, host):
    source = make_container("src")
    rootfs = source.load_config().get("lxc.rootfs.path")
    archive = tmp_path / "rootfs.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(rootfs, arcname=".")
    container = Container("fromtar", lxcpath)
    container.create("tar", rootfs=str(archive))
    try:
        assert container.execute(["/bin/sh", "-c", "test -x /bin/busybox"]) == 0
        assert os.path.realpath(container.load_config().get("lxc.rootfs.path")).startswith(lxcpath)
    finally:
        container.destroy()
    assert not os.path.exists(os.path.join(lxcpath, "fromtar"))


def test_tar_template_refuses_members_leaving_the_rootfs(lxcpath, tmp_path, host):
    evil = tmp_path / "evil.tar"
    payload = tmp_path / "x"
    payload.write_text("x")
    with tarfile.open(evil, "w") as tar:
        tar.add(payload, arcname="../../escaped")
    with pytest.raises(ContainerError, match="leaves the rootfs"):
        Container("evil", lxcpath).create("tar", rootfs=str(evil))
    assert os.listdir(lxcpath) == []
    assert not (tmp_path / "escaped").exists()
    host.assert_clean()


def test_dir_template_uses_the_tree_in_place_and_destroy_leaves_it(make_container, lxcpath):
    source = make_container("src")
    tree = source.load_config().get("lxc.rootfs.path")
    container = Container("indir", lxcpath)
    container.create("dir", rootfs=tree)
    assert container.load_config().get("lxc.rootfs.path") == tree
    assert container.execute(["/bin/true"]) == 0
    container.destroy()
    assert os.path.isdir(os.path.join(tree, "bin")), "an external rootfs is not ours to delete"


def test_mount_fstab_cap_keep_execute_cmd_and_config_items(make_container, tmp_path):
    fstab = tmp_path / "fstab"
    fstab.write_text("# entries of an fstab file\ntmpfs srv/scratch tmpfs create=dir,size=1m 0 0\n")
    container = make_container("keys", config=(
        ("lxc.mount.fstab", str(fstab)),
        ("lxc.cap.drop", ""),
        ("lxc.cap.keep", "sys_admin chown"),
        ("lxc.execute.cmd", "/bin/touch /default-command-ran"),
    ))
    code, out = capture(container, "/bin/sh", "-c", "grep ' /srv/scratch ' /proc/mounts; grep CapBnd /proc/self/status",
                        execute=True)
    assert code == 0
    assert "tmpfs /srv/scratch tmpfs" in out
    assert int(out.split("CapBnd:")[1].split()[0], 16) == (1 << 21) | (1 << 0)
    # lxc.execute.cmd is the default command of execute.
    marker = os.path.join(container.load_config().get("lxc.rootfs.path"), "default-command-ran")
    assert not os.path.exists(marker)
    assert container.execute() == 0
    assert os.path.isfile(marker)
    assert container.get_config_item("lxc.cap.keep") == "sys_admin chown"
    container.set_config_item("lxc.uts.name", "renamed")
    assert container.get_config_item("lxc.uts.name") == "renamed"
    with open(container.config_file_name) as handle:
        assert "# Container keys" in handle.read(), "the header comment survives"


def test_shutdown_halts_cleanly_and_reports_a_timeout(make_container):
    container = make_container("shut")
    container.start()
    assert container.shutdown(timeout=30) is True
    assert container.state == st.STOPPED
    stubborn = make_container("stubborn", config=(("lxc.signal.halt", "SIGWINCH"),))
    stubborn.start()
    try:
        assert stubborn.shutdown(timeout=0.5) is False  # busybox init ignores SIGWINCH
        assert stubborn.state == st.RUNNING
    finally:
        stubborn.stop(kill=True)
