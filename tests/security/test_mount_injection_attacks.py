"""Mount injection from the attacker's side: the container's root prepares the target path.

The mounting process joins the container's mount namespace as the host's root, so whatever the
container planted on the way (symbolic links out of its root, ``/proc`` magic links, a path made
of ``..``) must resolve inside the container, and nothing may be mounted, created or written on
the host. The ``host`` fixture checks the host's mount table after each test.
"""

from __future__ import annotations

import os

import pytest

from lxcframe import syscalls
from lxcframe.errors import ContainerError

from ..test_lifecycle import capture

pytestmark = pytest.mark.container

ROOT_MAP = (("lxc.idmap", "u 0 100000 65536"), ("lxc.idmap", "g 0 100000 65536"))


@pytest.fixture
def host_dir(tmp_path):
    """A host directory the container's root would like the mount (or a new file) to land in."""
    path = tmp_path / "host-victim"
    path.mkdir()
    return path


def _host_mounts() -> str:
    with open("/proc/self/mountinfo") as handle:
        return handle.read()


@pytest.mark.parametrize("config", [(), ROOT_MAP], ids=["privileged", "unprivileged"])
def test_a_planted_symlink_out_of_the_root_resolves_inside(make_container, source_dir, host_dir, config):
    container = make_container("inj-link", config=config)
    container.start()
    try:
        # The same path exists inside, so the link resolves either way: inside is the only right one.
        escape = "/.." * 30 + str(host_dir)
        plant = f"mkdir -p /mnt {host_dir} && ln -s {escape} /mnt/trap && ln -s {escape}/new-file /mnt/filetrap"
        assert capture(container, "/bin/sh", "-c", plant)[0] == 0
        container.mount(str(source_dir), "/mnt/trap/inside")
        try:
            # The kernel mounts onto the link itself (not followed): inside the container either way.
            container.mount(str(source_dir / "hello"), "/mnt/filetrap")
            container.umount("/mnt/filetrap", syscalls.UMOUNT_NOFOLLOW)
        except ContainerError:
            pass
        assert str(host_dir) not in _host_mounts(), "the mount landed on the host"
        assert os.listdir(host_dir) == [], "the host directory was written"
        code, out = capture(container, "/bin/sh", "-c", f"cat {host_dir}/inside/hello")
        assert (code, out) == (0, "injected\n"), "inside, the link leads to the container's own path"
        container.umount("/mnt/trap/inside")
    finally:
        container.stop(kill=True)


def test_proc_magic_links_lead_nowhere_on_the_host(make_container, source_dir, host_dir):
    """/proc/self/… of the container's /proc does not lead to the mounting process (it is not in
    the container's pid namespace), so its descriptors of the host cannot be reached."""
    container = make_container("inj-proc")
    container.start()
    try:
        for fd in range(0, 16):
            with pytest.raises(ContainerError):
                container.mount(str(source_dir), f"/proc/self/fd/{fd}/x")
        assert capture(container, "/bin/sh", "-c", "ln -s /proc/self/cwd /mnt/cwd")[0] == 0
        with pytest.raises(ContainerError):
            container.mount(str(source_dir), "/mnt/cwd/x")
        assert str(source_dir) not in _host_mounts()
        assert os.listdir(host_dir) == []
    finally:
        container.stop(kill=True)


def test_umount_of_a_planted_link_cannot_reach_a_host_mount(make_container, host_dir):
    """umount of a target the container turned into a link out of its root never unmounts the host's."""
    container = make_container("inj-umount")
    syscalls.mount("tmpfs", str(host_dir), "tmpfs", 0, "size=64k")
    try:
        container.start()
        try:
            escape = "/.." * 30 + str(host_dir)
            assert capture(container, "/bin/sh", "-c", f"ln -s {escape} /mnt/dangling")[0] == 0
            with pytest.raises(ContainerError):
                container.umount("/mnt/dangling")
            assert capture(container, "/bin/sh", "-c", f"mkdir -p {host_dir} && ln -s {escape} /mnt/link")[0] == 0
            with pytest.raises(ContainerError):
                container.umount("/mnt/link")  # inside, that path is no mount point
            assert f" {host_dir} " in _host_mounts(), "the host's mount was unmounted"
        finally:
            container.stop(kill=True)
    finally:
        syscalls.umount2(str(host_dir), syscalls.MNT_DETACH)
