"""Mounts injected into running containers, privileged and unprivileged, and shmounts."""

from __future__ import annotations

import os

import pytest

from lxcframe import syscalls
from lxcframe.errors import ContainerError
from lxcframe.plugin_manager import Plugins

from .conftest import run_cli
from .test_lifecycle import capture

pytestmark = pytest.mark.container


@pytest.mark.parametrize("unprivileged", [False, True], ids=["privileged", "unprivileged"])
def test_bind_a_directory_and_a_file_into_a_running_container(make_container, source_dir, unprivileged):
    maps = (("lxc.idmap", "u 0 100000 65536"), ("lxc.idmap", "g 0 100000 65536")) if unprivileged else ()
    container = make_container("inj", config=maps)
    container.start()
    try:
        container.mount(str(source_dir), "/mnt/injected/dir")
        container.mount(str(source_dir / "hello"), "/etc/injected-file")
        code, out = capture(container, "/bin/sh", "-c",
                            "cat /mnt/injected/dir/hello /etc/injected-file; stat -c %u /mnt/injected; "
                            "grep -c injected /proc/mounts")
        assert code == 0
        lines = out.split()
        assert lines[:2] == ["injected", "injected"]
        assert lines[2] == "0", "the target was created by the container's root"
        assert lines[3] == "2"
        rootfs = container.load_config().get("lxc.rootfs.path")
        with open(os.path.join(rootfs, "mnt", "injected", "dir", "underneath"), "w") as handle:
            handle.write("rootfs\n")  # hidden by the mount until it goes
        container.umount("/mnt/injected/dir")
        container.umount("/etc/injected-file")
        code, out = capture(container, "/bin/sh", "-c",
                            "grep -c injected /proc/self/mountinfo || true; ls /mnt/injected/dir; "
                            "wc -c < /etc/injected-file")
        assert code == 0
        assert out.split() == ["0", "underneath", "0"], "the mounts are gone: the rootfs's own files show"
    finally:
        container.stop(kill=True)


def test_a_new_filesystem_and_read_only_flags(make_container):
    container = make_container("injfs")
    container.start()
    try:
        container.mount("tmpfs", "/srv/scratch", "tmpfs", syscalls.MS_NOSUID, "size=1m")
        code, out = capture(container, "/bin/sh", "-c", "grep ' /srv/scratch ' /proc/mounts; touch /srv/scratch/x")
        assert code == 0 and "tmpfs /srv/scratch tmpfs rw,nosuid" in out and "size=1024k" in out
    finally:
        container.stop(kill=True)


def test_errors_are_clear(make_container, source_dir):
    container = make_container("injerr")
    with pytest.raises(ContainerError, match="not running"):
        container.mount(str(source_dir), "/mnt/x")
    container.start()
    try:
        with pytest.raises(ContainerError, match="no/such"):
            container.mount("/no/such/source", "/mnt/x")
        with pytest.raises(ContainerError, match="absolute path"):
            container.mount(str(source_dir), "relative/target")
        disabled = type(container)(container.name, container.lxcpath, plugins=Plugins(["mount-injection"]))
        with pytest.raises(ContainerError, match="no enabled plugin"):
            disabled.mount(str(source_dir), "/mnt/x")
        assert not disabled.has_api_extension("mount_injection")
        assert container.has_api_extension("mount_injection_file")
    finally:
        container.stop(kill=True)


def test_cli_mount_and_umount(make_container, source_dir, lxcpath):
    container = make_container("injcli")
    container.start()
    try:
        env = dict(os.environ)
        result = run_cli("-P", lxcpath, "mount", "injcli", str(source_dir), "/mnt/cli", "-o", "bind,ro", env=env)
        assert result.returncode == 0, result.stderr
        code, out = capture(container, "/bin/sh", "-c",
                            "cat /mnt/cli/hello; touch /mnt/cli/x; echo status=$?; "
                            "grep ' /mnt/cli ' /proc/self/mountinfo | grep -c ' ro[, ]'")
        assert code == 0
        lines = out.splitlines()
        assert lines[0] == (source_dir / "hello").read_text().strip() == "injected"
        assert lines[1:] == ["touch: /mnt/cli/x: Read-only file system", "status=1", "1"], out
        assert sorted(os.listdir(source_dir)) == ["hello"]
        rootfs = container.load_config().get("lxc.rootfs.path")
        with open(os.path.join(rootfs, "mnt", "cli", "underneath"), "w") as handle:
            handle.write("rootfs\n")  # in the target directory, hidden by the mount
        result = run_cli("-P", lxcpath, "umount", "injcli", "/mnt/cli", env=env)
        assert (result.returncode, result.stderr) == (0, "")
        code, out = capture(container, "/bin/sh", "-c", "grep -c ' /mnt/cli ' /proc/self/mountinfo; ls /mnt/cli")
        assert out.split() == ["0", "underneath"], "the mount is gone inside: the rootfs's directory shows"
    finally:
        container.stop(kill=True)


def test_shmounts_binds_the_host_directory(make_container, source_dir):
    container = make_container("shm", config=(("lxc.mount.auto", f"shmounts:{source_dir}"),))
    code, out = capture(container, "/bin/sh", "-c", "cat /dev/.lxc-mounts/hello", execute=True)
    assert code == 0 and out.strip() == "injected"
