"""The start pipeline: the order its stages fire in, and a clean unwind from a failure at any stage."""

from __future__ import annotations

import os

import pytest

from lxcframe import state as st
from lxcframe.container import Container
from lxcframe.errors import ConfigError, StageError
from lxcframe.hooks import hookimpl
from lxcframe.plugin_manager import Plugins
from lxcframe.stages import START_STAGES

pytestmark = pytest.mark.container

STAGE_HOOKS = [stage.hook for stage in START_STAGES]


class Recorder:
    """Appends the name of every stage hook it sees to a file, from the host and from the child.

    The descriptor is opened once, before any fork, so the child can still write after pivot_root.
    """

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)

    def _note(self, hook: str) -> None:
        os.write(self.fd, f"{hook}\n".encode())

    @hookimpl
    def lxcframe_validate(self):
        self._note("lxcframe_validate")
        return []

    @hookimpl
    def lxcframe_plan(self):
        self._note("lxcframe_plan")

    @hookimpl
    def lxcframe_pre_start(self):
        self._note("lxcframe_pre_start")

    @hookimpl
    def lxcframe_child_created(self):
        self._note("lxcframe_child_created")

    @hookimpl
    def lxcframe_attach_cgroup(self):
        self._note("lxcframe_attach_cgroup")

    @hookimpl
    def lxcframe_setup_network(self):
        self._note("lxcframe_setup_network")

    @hookimpl
    def lxcframe_child_network(self):
        self._note("lxcframe_child_network")

    @hookimpl
    def lxcframe_child_pre_mount(self):
        self._note("lxcframe_child_pre_mount")

    @hookimpl
    def lxcframe_child_mount_rootfs(self):
        self._note("lxcframe_child_mount_rootfs")

    @hookimpl
    def lxcframe_child_mount_filesystems(self):
        self._note("lxcframe_child_mount_filesystems")

    @hookimpl
    def lxcframe_child_devices(self):
        self._note("lxcframe_child_devices")

    @hookimpl
    def lxcframe_child_pre_pivot(self):
        self._note("lxcframe_child_pre_pivot")

    @hookimpl
    def lxcframe_start_host(self):
        self._note("lxcframe_start_host")

    @hookimpl
    def lxcframe_child_security(self):
        self._note("lxcframe_child_security")

    @hookimpl
    def lxcframe_child_pre_exec(self):
        self._note("lxcframe_child_pre_exec")

    @hookimpl
    def lxcframe_post_start(self):
        self._note("lxcframe_post_start")

    @hookimpl
    def lxcframe_stopped(self):
        self._note("lxcframe_stopped")

    @hookimpl
    def lxcframe_post_stop(self):
        self._note("lxcframe_post_stop")


def test_a_start_fires_every_stage_in_the_pinned_order(make_container, tmp_path):
    log = tmp_path / "stages"
    recorder = Recorder(str(log))
    try:
        plugins = Plugins(extra=[("recorder", recorder)])
        container = make_container("order", plugins=plugins)
        assert container.execute(["/bin/true"]) == 0
    finally:
        os.close(recorder.fd)
    assert log.read_text().split() == STAGE_HOOKS


class Failer:
    """Fails the start at one chosen stage; its pre-start pushes an undo that leaves a mark when run."""

    def __init__(self, target: str, mark: str) -> None:
        self.target = target
        self.mark = mark

    def _maybe_fail(self, hook: str) -> None:
        if hook == self.target:
            raise RuntimeError(f"injected failure in {hook}")

    @hookimpl
    def lxcframe_validate(self):
        return ["injected problem"] if self.target == "lxcframe_validate" else []

    @hookimpl
    def lxcframe_plan(self):
        self._maybe_fail("lxcframe_plan")

    @hookimpl
    def lxcframe_pre_start(self, ctx):
        ctx.undo.push("test mark", lambda: open(self.mark, "w").close())
        self._maybe_fail("lxcframe_pre_start")

    @hookimpl
    def lxcframe_child_created(self):
        self._maybe_fail("lxcframe_child_created")

    @hookimpl
    def lxcframe_attach_cgroup(self):
        self._maybe_fail("lxcframe_attach_cgroup")

    @hookimpl
    def lxcframe_setup_network(self):
        self._maybe_fail("lxcframe_setup_network")

    @hookimpl
    def lxcframe_child_network(self):
        self._maybe_fail("lxcframe_child_network")

    @hookimpl
    def lxcframe_child_pre_mount(self):
        self._maybe_fail("lxcframe_child_pre_mount")

    @hookimpl
    def lxcframe_child_mount_filesystems(self):
        self._maybe_fail("lxcframe_child_mount_filesystems")

    @hookimpl
    def lxcframe_child_devices(self):
        self._maybe_fail("lxcframe_child_devices")

    @hookimpl
    def lxcframe_child_pre_pivot(self):
        self._maybe_fail("lxcframe_child_pre_pivot")

    @hookimpl
    def lxcframe_start_host(self):
        self._maybe_fail("lxcframe_start_host")

    @hookimpl
    def lxcframe_child_security(self):
        self._maybe_fail("lxcframe_child_security")

    @hookimpl
    def lxcframe_child_pre_exec(self):
        self._maybe_fail("lxcframe_child_pre_exec")


FAILABLE = [s for s in START_STAGES if s.hook not in (
    "lxcframe_child_mount_rootfs", "lxcframe_post_start", "lxcframe_stopped", "lxcframe_post_stop")]


@pytest.mark.parametrize("stage", FAILABLE, ids=[s.name for s in FAILABLE])
@pytest.mark.parametrize("mode", ["start", "execute"])
def test_failure_at_any_stage_unwinds_everything(make_container, tmp_path, stage, mode):
    mark = tmp_path / "undone"
    plugins = Plugins(extra=[("failer", Failer(stage.hook, str(mark)))])
    container = make_container("fail", plugins=plugins)
    if stage.hook == "lxcframe_validate":
        with pytest.raises(ConfigError, match="injected problem"):
            container.start() if mode == "start" else container.execute(["/bin/true"])
        assert not mark.exists()  # nothing was created, so nothing to undo
    else:
        with pytest.raises(StageError) as info:
            container.start() if mode == "start" else container.execute(["/bin/true"])
        assert info.value.stage == stage.name
        assert info.value.plugin == "failer"
        assert f"injected failure in {stage.hook}" in str(info.value)
        if stage.by_caller:  # the caller planning: no monitor yet, nothing made, nothing to undo
            assert not mark.exists()
        else:
            assert mark.exists(), "the undo pushed in pre-start ran"
    assert container.state == st.STOPPED
    assert st.read_state(container.lxcpath, container.name) is None


def test_failing_mount_entry_names_stage_and_plugin(make_container):
    container = make_container("mntfail", config=(("lxc.mount.entry", "/no/such/dir mnt none bind 0 0"),))
    with pytest.raises(StageError) as info:
        container.execute(["/bin/true"])
    assert (info.value.stage, info.value.plugin) == ("mounts", "mounts")
    assert "/no/such/dir" in str(info.value)


def test_missing_init_binary_fails_the_start(make_container):
    container = make_container("noinit", config=(("lxc.init.cmd", "/sbin/nosuchinit"),))
    with pytest.raises(StageError, match="cannot execute /sbin/nosuchinit"):
        container.start()
    assert container.state == st.STOPPED


def test_missing_rootfs_fails_cleanly(lxcpath, host, tmp_path):
    container = Container("norootfs", lxcpath)
    container.create("dir", rootfs=str(tmp_path))
    container.set_config_item("lxc.rootfs.path", "dir:/no/such/rootfs")
    with pytest.raises(StageError) as info:
        container.execute(["/bin/true"])
    assert info.value.stage == "rootfs"
    container.destroy()
    host.assert_clean()


def test_a_core_step_failure_names_the_step_of_the_table(make_container):
    """Between stages the core's own steps run; their failures carry the step's name from the table."""
    container = make_container("nocwd", config=(("lxc.init.cwd", "/no/such/dir"),))
    with pytest.raises(StageError) as info:
        container.execute(["/bin/true"])
    assert (info.value.stage, info.value.plugin, info.value.message) == (
        "enter-cwd", None, "lxc.init.cwd /no/such/dir: No such file or directory")
    assert container.state == st.STOPPED
