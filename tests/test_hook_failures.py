"""Hooks that fail after the start (post-start, stop, post-stop), at destroy, and undo steps that fail.

As LXC: a stop or post-stop hook that fails is logged (the container is gone already) and the rest of
the container's end still runs; a failing destroy hook stops the destroy. Undo steps (what a start
created, released in reverse) all run even when one fails, and every failure is reported. Each test
checks that nothing is left behind: no cgroup, veth, state file, mount or process.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from lxcframe import state as st
from lxcframe.errors import StageError
from lxcframe.hooks import hookimpl
from lxcframe.launcher import single_threaded
from lxcframe.plugin_manager import Plugins

from .conftest import run_cli
from .test_cgroups import leftovers

pytestmark = pytest.mark.container

REPO = str(Path(__file__).resolve().parent.parent)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = REPO  # this working tree, not an installed copy
    return run_cli(*args, env=env, timeout=60)


def hook_script(tmp_path: Path, name: str, status: int) -> str:
    """A host script that appends ``NAME TYPE ARGS`` to ``journal`` and exits with ``status``."""
    path = tmp_path / name
    path.write_text(f'#!/bin/sh\necho "{name} $LXC_HOOK_TYPE $*" >> {tmp_path / "journal"}\n'
                    f'echo "{name} refuses"\nexit {status}\n')
    path.chmod(0o755)
    return str(path)


def journal(tmp_path: Path) -> list[str]:
    path = tmp_path / "journal"
    return path.read_text().splitlines() if path.exists() else []


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if " ERROR " in line]


def assert_gone(container) -> None:
    assert container.state == st.STOPPED
    assert st.read_state(container.lxcpath, container.name) is None
    assert leftovers(container.name) == []


# --- stop and post-stop hooks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["foreground", "daemon"])
def test_failing_stop_and_post_stop_hooks_are_logged_and_the_end_goes_on(make_container, tmp_path, mode):
    stop, post_stop = hook_script(tmp_path, "stop.sh", 3), hook_script(tmp_path, "post-stop.sh", 4)
    log = tmp_path / "container.log"
    container = make_container("hfstop" + mode[0], config=(
        ("lxc.hook.stop", stop), ("lxc.hook.post-stop", post_stop),
        ("lxc.log.file", str(log)), ("lxc.log.level", "error")))
    name = container.name
    if mode == "foreground":
        result = cli("-P", container.lxcpath, "start", "-F", name, "--", "/bin/sh", "-c", "exit 5")
        assert result.returncode == 5, result.stderr  # init's status, not the hooks'
        # The caller is the monitor: the errors reach its stderr (warn and above by default).
        reported = error_lines(result.stderr)
    else:
        assert cli("-P", container.lxcpath, "start", name).returncode == 0
        result = cli("-P", container.lxcpath, "stop", name, "-k")
        assert (result.returncode, result.stderr) == (0, "")
        reported = []
    expected = [
        f"stop hook failed error=\"stage 'stop' failed (plugin 'hooks'): lxc.hook.stop {stop!r} exited with "
        f"status 3: stop.sh refuses\"",
        f"post-stop failed error=\"stage 'post-stop' failed (plugin 'hooks'): lxc.hook.post-stop {post_stop!r} "
        f"exited with status 4: post-stop.sh refuses\"",
    ]
    logged = error_lines(log.read_text())
    assert [line.split(" monitor - ", 1)[1] for line in logged] == expected, logged
    if mode == "foreground":
        assert [line.split(" monitor - ", 1)[1] for line in reported] == expected, result.stderr
    # post-stop ran although stop failed, each once, with LXC's arguments.
    entries = journal(tmp_path)
    assert [e.split()[:5] for e in entries] == [["stop.sh", "stop", name, "lxc", "stop"],
                                                ["post-stop.sh", "post-stop", name, "lxc", "post-stop"]]
    assert_gone(container)


# --- post-start (a plugin's: LXC has no lxc.hook.post-start) --------------------------------------------------------


class RefusesAfterStart:
    """Fails the post-start stage, where the payload already runs."""

    @hookimpl
    def lxcframe_post_start(self, ctx, pid):
        raise RuntimeError(f"refused init {pid} after the start")


def test_lxc_hook_post_start_is_no_hook_point(rundir, tmp_path):
    path = tmp_path / "c.conf"
    path.write_text("lxc.uts.name = c\nlxc.hook.post-start = /bin/true\n")
    result = cli("config", "validate", str(path))
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    # No hook point of LXC's or lxcframe's: refused as LXC refuses it, never run.
    assert line == (f"lxcframe: error: {path}:2: lxc.hook.post-start = '/bin/true': unknown key "
                    "(did you mean 'lxc.hook.pre-start'?)"), line


@pytest.mark.parametrize("mode", ["execute", "daemon"])
def test_failing_post_start_stops_the_container_and_ends_it_as_a_stop(make_container, tmp_path, mode):
    # A plugin handed in as an object lives only in this process: the monitor must be forked from it.
    assert single_threaded()
    log = tmp_path / "container.log"
    post_stop = hook_script(tmp_path, "post-stop.sh", 0)
    container = make_container(
        "hfpost" + mode[0], plugins=Plugins(extra=[("refuser", RefusesAfterStart())]),
        config=(("lxc.hook.post-stop", post_stop), ("lxc.log.file", str(log)), ("lxc.log.level", "info")))
    if mode == "execute":
        # The payload ran; the monitor then kills it: the status is SIGKILL's.
        assert container.execute(["/bin/sh", "-c", "exec sleep 1000"]) == 128 + 9
    else:
        pid = container.start(["/bin/sh", "-c", "exec sleep 1000"])
        assert pid > 0  # the start itself succeeded: the payload was running
        assert container.wait("STOPPED", 30)
    lines = log.read_text().splitlines()
    failed = [line for line in lines if " post-start failed, stopping " in line]
    assert len(failed) == 1 and " ERROR " in failed[0], lines
    assert re.search(r"error=\"stage 'post-start' failed \(plugin 'refuser'\): refused init \d+ after the start\"$",
                     failed[0]), failed[0]
    assert [line.split(" monitor - ")[1] for line in lines if " monitor - container stopped " in line] == [
        "container stopped status='killed by SIGKILL'"]
    assert [e.split()[:2] for e in journal(tmp_path)] == [["post-stop.sh", "post-stop"]]
    assert_gone(container)


# --- destroy -----------------------------------------------------------------------------------------------------


def test_failing_destroy_hook_keeps_the_container(make_container, tmp_path):
    destroy = hook_script(tmp_path, "destroy.sh", 3)
    container = make_container("hfdest", config=(("lxc.hook.destroy", destroy),))
    expected = (f"lxcframe: error: stage 'destroy' failed (plugin 'hooks'): lxc.hook.destroy {destroy!r} exited "
                "with status 3: destroy.sh refuses")
    result = cli("-P", container.lxcpath, "destroy", container.name)
    assert (result.returncode, result.stderr.strip()) == (1, expected)
    assert container.defined
    assert os.path.isdir(os.path.join(container.container_dir, "rootfs", "bin"))

    # destroy -f of a running container: it is stopped first, then the hook keeps its files.
    container.start()
    result = cli("-P", container.lxcpath, "destroy", "-f", container.name)
    assert (result.returncode, result.stderr.strip()) == (1, expected)
    assert container.defined
    assert_gone(container)
    assert [e.split()[:5] for e in journal(tmp_path)] == [["destroy.sh", "destroy", container.name, "lxc",
                                                           "destroy"]] * 2

    # An empty value clears the key: the destroy goes through.
    assert cli("-P", container.lxcpath, "config", "set", container.name, "lxc.hook.destroy", "").returncode == 0
    result = cli("-P", container.lxcpath, "destroy", container.name)
    assert (result.returncode, result.stderr) == (0, "")
    assert not os.path.exists(container.container_dir)


# --- undo steps that fail ----------------------------------------------------------------------------------------

VETH = "lxfhkv1"


def _undo_config(tmp_path: Path) -> tuple[tuple[str, str], ...]:
    """Two devices whose script.down fails, net.1 a veth: its undos run first (last pushed, first run).

    Unwinding: net.1's script.down (fails) -> delete veth lxfhkv1 -> net.0's script.down (fails) ->
    release the netns -> … -> remove the cgroups, close the console.
    """
    return (
        ("lxc.net.0.type", "empty"),
        ("lxc.net.0.script.down", hook_script(tmp_path, "down0.sh", 4)),
        ("lxc.net.1.type", "veth"),
        ("lxc.net.1.veth.pair", VETH),
        ("lxc.net.1.script.down", hook_script(tmp_path, "down1.sh", 5)),
        ("lxc.hook.post-stop", hook_script(tmp_path, "post-stop.sh", 0)),
    )


def _veth_exists() -> bool:
    # Asked of this network namespace (a sysfs shows the namespace that mounted it).
    return VETH in {name for _, name in socket.if_nameindex()}


def _undo_failures(tmp_path: Path) -> str:
    return (f"undo lxc.net.1.script.down: lxc.net.1.script.down {str(tmp_path / 'down1.sh')!r} exited with status 5: "
            f"down1.sh refuses; undo lxc.net.0.script.down: lxc.net.0.script.down {str(tmp_path / 'down0.sh')!r} "
            "exited with status 4: down0.sh refuses")


def test_failing_undo_steps_of_a_failed_start_do_not_stop_the_others(make_container, tmp_path):
    log = tmp_path / "container.log"
    container = make_container("hfundo", config=(
        *_undo_config(tmp_path),
        # The last hook before init: everything the start made exists when it fails.
        ("lxc.hook.start", "/bin/sh -c 'echo not now; exit 3'"),
        ("lxc.log.file", str(log))))
    result = cli("-P", container.lxcpath, "start", container.name)
    expected = ("lxcframe: error: start failed at stage 'exec' (plugin 'hooks'): lxc.hook.start "
                "\"/bin/sh -c 'echo not now; exit 3'\" exited with status 3: not now "
                f"(and while unwinding: {_undo_failures(tmp_path)})")
    # The monitor's own report of the failure reaches the caller's stderr first, as a foreground start's.
    monitor_line, caller_line = result.stderr.strip().splitlines()
    assert (result.returncode, caller_line) == (1, expected)
    assert " ERROR    monitor - start failed stage=exec plugin=hooks " in monitor_line, result.stderr
    # Both down scripts ran, in reverse order, with LXC's arguments; the post-stop hook is no undo.
    assert journal(tmp_path) == [f"down1.sh down {container.name} net down veth {VETH}",
                                 f"down0.sh down {container.name} net down empty"]
    assert not _veth_exists(), "the veth was deleted after its script.down failed"
    failed = [line for line in error_lines(log.read_text()) if " start failed " in line]
    assert len(failed) == 1 and f"undo=\"{_undo_failures(tmp_path)}\"" in failed[0], log.read_text()
    assert_gone(container)


def test_failing_undo_steps_at_the_end_of_a_container_do_not_stop_the_others(make_container, tmp_path):
    log = tmp_path / "container.log"
    container = make_container("hfundo2", config=(*_undo_config(tmp_path), ("lxc.log.file", str(log))))
    assert cli("-P", container.lxcpath, "start", container.name).returncode == 0
    assert _veth_exists()
    result = cli("-P", container.lxcpath, "stop", container.name, "-k")
    assert (result.returncode, result.stderr) == (0, "")
    assert [line.split(" monitor - ")[1] for line in error_lines(log.read_text())] == [
        f"releasing host state failed error=\"{_undo_failures(tmp_path)}\""]
    # post-stop runs after the undo stack, failures or not.
    assert [e.split()[0] for e in journal(tmp_path)] == ["down1.sh", "down0.sh", "post-stop.sh"]
    assert not _veth_exists()
    assert_gone(container)


def test_a_failing_undo_step_in_the_stack_itself(make_container, tmp_path):
    """The undo stack of a real start, with a step of a test plugin that fails between two that leave marks."""
    marks = tmp_path / "marks"

    def mark(what: str) -> None:
        with marks.open("a") as handle:
            handle.write(f"{what}\n")

    def busy() -> None:
        raise OSError(16, "Device or resource busy", "/x")

    class Steps:
        @hookimpl
        def lxcframe_pre_start(self, ctx):
            ctx.undo.push("first", lambda: mark("first"))
            ctx.undo.push("broken", busy)
            ctx.undo.push("last", lambda: mark("last"))

        @hookimpl
        def lxcframe_start_host(self, ctx, pid):
            raise RuntimeError("late failure")

    container = make_container("hfundo3", plugins=Plugins(extra=[("steps", Steps())]))
    with pytest.raises(StageError) as info:
        container.execute(["/bin/true"])
    assert (info.value.stage, info.value.plugin) == ("start-host", "steps")
    assert str(info.value) == ("start failed at stage 'start-host' (plugin 'steps'): late failure "
                               "(and while unwinding: undo broken: [Errno 16] Device or resource busy: '/x')")
    assert marks.read_text() == "last\nfirst\n"
    assert_gone(container)


def test_unwind_runs_every_step_and_reports_each_failure():
    from lxcframe.errors import UndoErrors
    from lxcframe.undo import UndoStack

    ran: list[str] = []
    stack = UndoStack()

    def fail(what: str) -> None:
        ran.append(what)
        raise RuntimeError(f"{what} broke")

    stack.push("a", lambda: ran.append("a"))
    stack.push("b", lambda: fail("b"))
    stack.push("c", lambda: ran.append("c"))
    stack.push("d", lambda: fail("d"))
    with pytest.raises(UndoErrors) as info:
        stack.unwind()
    assert ran == ["d", "c", "b", "a"]
    assert [(what, str(err)) for what, err in info.value.failures] == [("d", "d broke"), ("b", "b broke")]
    assert str(info.value) == "undo d: d broke; undo b: b broke"
    assert len(stack) == 0
    stack.unwind()  # nothing left: nothing raised
