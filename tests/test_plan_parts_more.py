"""The parts of devices, mounts, the core and the cgroup automount: decided by the caller, applied from the plan.

A start through the supervisor whose plan's config has lost ``lxc.autodev``, ``lxc.pty.max``, ``lxc.tty.*``,
``lxc.mount.*``, ``lxc.arch``, ``lxc.apparmor.*`` and ``lxc.rootfs.path`` once the plan was built still gets
them all, read back from the kernel: a plugin that read its key again in the monitor or the child would miss it.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from lxcframe import start_request, syscalls, transfer
from lxcframe.config.model import load_text
from lxcframe.errors import ConfigError
from lxcframe.plugin_manager import Plugins
from lxcframe.plugins import mounts
from lxcframe.plugins.caps import CapsPart
from lxcframe.plugins.cgroup.automount import AutoCgroup, wanted
from lxcframe.plugins.console.settings import ConsoleSettings
from lxcframe.plugins.core import CorePart
from lxcframe.plugins.devices import DevicesPart
from lxcframe.plugins.mounts import AutoToken, MountsPart, PlannedMount
from lxcframe.start_request import StartRequest
from lxcframe.validators import MountEntry

from .conftest import daemon_plans_without_keys, plan_of

CAP_SYS_ADMIN = 21


def _plan(plugins: Plugins, tmp_path: Path, text: str) -> Any:
    return plan_of(plugins, tmp_path, text, name="more")


def test_the_parts_of_devices_mounts_core_and_cgroup_automount_are_exact(tmp_path, caller_plugins):
    config = tmp_path / "config"
    # A relative fstab is the config's neighbour; its entries come before the config's own.
    (tmp_path / "fstab").write_text("# the fstab\n/srv/a srv/a none bind,create=dir\n\n/srv/b srv/b none bind\n")
    plan = _plan(caller_plugins, tmp_path, textwrap.dedent("""\
        lxc.autodev = 0
        lxc.pty.max = 7
        lxc.tty.max = 2
        lxc.tty.dir = lxc
        lxc.mount.auto = proc:mixed cgroup:mixed
        lxc.mount.auto = proc:rw cgroup-full:ro:force shmounts:/srv/shared
        lxc.mount.fstab = fstab
        lxc.mount.entry = tmpfs tmp tmpfs size=1m,create=dir 0 0
        lxc.arch = linux32
        lxc.cap.drop = sys_admin
        """))
    fstab_line = f"{config}:8: lxc.mount.fstab: "
    assert plan.part(DevicesPart) == DevicesPart(autodev=False, pty_max=7)
    console = plan.part(ConsoleSettings)
    assert (console.tty_max, console.tty_dir) == (2, "lxc")
    assert plan.part(MountsPart) == MountsPart(
        auto=(AutoToken("proc", "rw"), AutoToken("cgroup", "cgroup-full:ro:force"),
              AutoToken("shmounts", "shmounts:/srv/shared")),
        entries=(
            PlannedMount(MountEntry("/srv/a", "srv/a", "none", ("bind", "create=dir")), fstab_line),
            PlannedMount(MountEntry("/srv/b", "srv/b", "none", ("bind",)), fstab_line),
            PlannedMount(MountEntry("tmpfs", "tmp", "tmpfs", ("size=1m", "create=dir")),
                         f"{config}:9: lxc.mount.entry: "),
        ))
    assert plan.part(MountsPart).token("sys") is None
    assert plan.part(CorePart) == CorePart(personality=syscalls.PER_LINUX32, rootfs_where=f"{config}:1: ")
    assert plan.part(CapsPart).drop == (CAP_SYS_ADMIN,)
    assert wanted(plan) == AutoCgroup(full=True, mode="ro", force=True)
    request = StartRequest.for_plan(plan, caller_plugins, detach=True)
    back, _plugins = start_request.decode(transfer.parse_json(transfer.dumps(request)))
    assert back.plan.parts == plan.parts


def test_a_config_without_those_keys_plans_the_defaults(tmp_path, caller_plugins):
    plan = _plan(caller_plugins, tmp_path, "")
    assert plan.part(DevicesPart) == DevicesPart(autodev=True, pty_max=None)
    assert plan.part(MountsPart) == MountsPart(auto=(), entries=())
    assert plan.part(CorePart) == CorePart(personality=None, rootfs_where=f"{tmp_path / 'config'}:1: ")
    assert wanted(plan) is None


@pytest.mark.parametrize(("extra", "expected"), [
    # Its own cgroup namespace and CAP_SYS_ADMIN kept: init mounts its cgroups itself.
    ("", None),
    ("lxc.cap.drop = sys_admin\n", AutoCgroup(full=False, mode="mixed", force=False)),
    ("lxc.cap.keep = sys_admin\n", None),
    ("lxc.cap.keep = sys_chroot\n", AutoCgroup(full=False, mode="mixed", force=False)),
])
def test_the_cgroup_automount_follows_the_caps_part(tmp_path, caller_plugins, extra, expected):
    plan = _plan(caller_plugins, tmp_path, f"lxc.mount.auto = cgroup\n{extra}")
    assert wanted(plan) == expected


def test_an_fstab_broken_after_validation_is_refused_at_its_line(tmp_path, caller_plugins):
    fstab = tmp_path / "fstab"
    fstab.write_text("/srv srv none bind\n")
    config = load_text(f"lxc.rootfs.path = /srv/rootfs\n\nlxc.mount.fstab = {fstab}\n",
                       caller_plugins.key_registry(), str(tmp_path / "config"))
    assert mounts.lxcframe_validate(config) == []
    fstab.write_text("/srv srv none bind\n/srv/a\n")  # changed once validated: the plan reads it again
    with pytest.raises(ConfigError) as caught:
        mounts.lxcframe_plan(config)
    assert str(caught.value).startswith(f"{tmp_path / 'config'}:3: lxc.mount.fstab = '{fstab}': {fstab}:2: ")


# --- a start with the keys gone from the plan's config ------------------------------------------------

#: Keys the monitor and the child must not read again: the test removes them from the plan's config.
PLANNED_PREFIXES = ("lxc.autodev", "lxc.pty.", "lxc.tty.", "lxc.mount.", "lxc.arch", "lxc.rootfs.path",
                    "lxc.apparmor.")


def _mountinfo(pid: int) -> dict[str, tuple[str, str]]:
    """Mount point -> (fstype, "MOUNT,SUPER" options) of the mounts ``pid`` sees, the last one of a point winning."""
    found = {}
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields, _, tail = line.partition(" - ")
        fstype, _source, super_options = tail.split(" ")[:3]
        point, mount_options = fields.split(" ")[4:6]
        found[point] = (fstype, f"{mount_options},{super_options}")
    return found


def test_a_start_applies_the_parts_with_the_keys_gone_from_the_config(make_container, monkeypatch, tmp_path,
                                                                      source_dir):
    fstab = tmp_path / "fstab"
    fstab.write_text(f"{source_dir} mnt/from-fstab none bind,ro,create=dir 0 0\n")
    container = make_container("ppm-keys", config=(
        ("lxc.autodev", "1"),
        ("lxc.pty.max", "5"),
        ("lxc.tty.max", "2"),
        ("lxc.arch", "linux32"),
        ("lxc.mount.auto", f"proc:rw cgroup:ro:force shmounts:{source_dir}:/mnt/shared"),
        ("lxc.mount.fstab", str(fstab)),
        ("lxc.mount.entry", f"{source_dir} mnt/from-entry none bind,create=dir 0 0"),
        ("lxc.apparmor.allow_nesting", "1"),
    ))
    # What crosses is the plan with every planned key gone from its config: only the parts say them.
    seen = daemon_plans_without_keys(monkeypatch, PLANNED_PREFIXES)
    container.start(["/bin/sleep", "1000"])
    try:
        assert len(seen) == 1
        pid = container.init_pid
        mounted = _mountinfo(pid)
        assert mounted["/dev"][0] == "tmpfs"
        assert os.major(os.stat(f"/proc/{pid}/root/dev/null").st_rdev) == 1
        assert os.readlink(f"/proc/{pid}/root/dev/fd") == "/proc/self/fd"
        assert mounted["/dev/pts"][0] == "devpts" and "max=5" in mounted["/dev/pts"][1].split(",")
        assert mounted["/proc"][0] == "proc" and "/proc/sys" not in mounted  # proc:rw: no read-only binds
        assert (Path(f"/proc/{pid}/root/mnt/from-entry/hello").read_text(),
                Path(f"/proc/{pid}/root/mnt/from-fstab/hello").read_text()) == ("injected\n", "injected\n")
        assert {"/mnt/from-entry", "/mnt/from-fstab"} <= set(mounted)
        assert Path(f"/proc/{pid}/root/mnt/shared/hello").read_text() == "injected\n"  # shmounts
        # cgroup:ro:force: the automount mounts even though init keeps CAP_SYS_ADMIN in its cgroup namespace.
        assert "/sys/fs/cgroup" in mounted
        hierarchies = [options for point, (_fstype, options) in mounted.items() if point.startswith("/sys/fs/cgroup/")]
        assert hierarchies and all("ro" in options.split(",") for options in hierarchies)
        assert int(Path(f"/proc/{pid}/personality").read_text(), 16) == syscalls.PER_LINUX32
        # AppArmor's part: the nesting helpers, with or without AppArmor in the kernel.
        assert (mounted["/dev/.lxc/proc"][0], mounted["/dev/.lxc/sys"][0]) == ("proc", "sysfs")
        # The console's ttys (its part): two of them, on the container's devpts.
        assert sorted(os.listdir(f"/proc/{pid}/root/dev/pts")) == ["0", "1", "2", "ptmx"]
    finally:
        container.stop(kill=True)
