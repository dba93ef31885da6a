"""Ephemeral containers: ``lxc.ephemeral = 1`` destroys a container when it stops (by ``stop``, or by its init
exiting), after ``lxc.hook.post-stop``, but not across a reboot; ``lxcframe copy -e`` (``lxc-copy -e``) starts
an overlay snapshot that goes when it stops, leaving its source as it was."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lxcframe import state as st
from lxcframe.container import Container

from .conftest import run_cli

pytestmark = pytest.mark.container

REPO = str(Path(__file__).resolve().parent.parent)
EPHEMERAL = (("lxc.ephemeral", "1"),)


def cli(*args: str, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = REPO
    env.update(extra)
    return run_cli(*args, env=env, timeout=timeout)


def wait_gone(container: Container, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while os.path.exists(container.container_dir) or container.current_state() is not None:
        assert time.monotonic() < deadline, f"{container.name} still there"
        time.sleep(0.05)


def test_stop_destroys_an_ephemeral_container_after_its_post_stop_hook(make_container, tmp_path):
    seen = tmp_path / "seen"
    # The post-stop hook still finds the container's config: the removal comes after it.
    hook = f"/bin/sh -c 'test -f \"$LXC_CONFIG_FILE\" && echo config-there > {seen}'"
    container = make_container("eph", config=(*EPHEMERAL, ("lxc.hook.post-stop", hook)))
    container.start()
    assert container.running
    container.stop()
    assert not os.path.exists(container.container_dir)
    assert not container.defined and container.current_state() is None
    assert seen.read_text() == "config-there\n"
    assert not os.path.exists(st.runtime_dir(container.lxcpath, container.name))


def test_an_init_that_exits_by_itself_takes_its_ephemeral_container_with_it(make_container):
    container = make_container("ephexit", config=EPHEMERAL)
    container.start(["/bin/sh", "-c", "sleep 0.3"])
    wait_gone(container)
    assert not container.defined


def test_with_a_monitor_of_its_own_too(make_container, per_container_monitor):
    container = make_container("ephmon", config=EPHEMERAL)
    container.start()
    container.stop(kill=True)
    assert not container.defined
    # A foreground start ends the same way: its monitor is the caller.
    again = make_container("ephfg", config=EPHEMERAL)
    assert again.start(["/bin/true"], foreground=True) == 0
    assert not again.defined


def test_a_reboot_keeps_an_ephemeral_container_and_its_stop_then_destroys_it(make_container):
    container = make_container("ephrb", config=EPHEMERAL)
    container.start()
    try:
        assert container.reboot2(60) is True
        assert container.defined and container.state == st.RUNNING
    finally:
        container.stop(kill=True)
    assert not container.defined


def test_without_the_key_or_with_0_a_stopped_container_stays(make_container):
    for name, config in (("plain", ()), ("zero", (("lxc.ephemeral", "0"),))):
        container = make_container(name, config=config)
        container.start()
        container.stop(kill=True)
        assert container.defined


def test_an_ephemeral_container_with_snapshots_is_kept(make_container):
    container = make_container("ephsnap", config=EPHEMERAL)
    container.snapshot()
    container.start()
    container.stop(kill=True)
    assert container.defined  # destroy would refuse it too
    container.snapshot_destroy("snap0")


# --- copy -e ---------------------------------------------------------------------------------------------


def test_copy_e_d_starts_an_overlay_snapshot_that_goes_when_it_stops(make_container, lxcpath):
    source = make_container("base")
    rootfs = source.load_config().get("lxc.rootfs.path")
    before = sorted(os.listdir(rootfs))
    result = cli("-P", lxcpath, "copy", "base", "-e", "-d")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("Created base_") and first.endswith(" as clone of base")
    name = first.split()[1]
    assert len(name) == len("base_") + 6
    copy = Container(name, lxcpath)
    try:
        assert copy.running
        config = copy.load_config()
        assert config.get("lxc.ephemeral") is True
        assert config.raw("lxc.rootfs.path").startswith(f"overlay:{rootfs}:")
        assert config.get("lxc.uts.name") == name
        assert copy.attach_wait(["/bin/sh", "-c", "echo written > /root/mark"]) == 0
    finally:
        stopped = cli("-P", lxcpath, "stop", name)
    assert stopped.returncode == 0, stopped.stderr
    assert not copy.defined
    assert sorted(os.listdir(rootfs)) == before and not os.path.exists(os.path.join(rootfs, "root", "mark"))
    assert source.defined and not source.running


def test_copy_e_with_a_command_runs_it_and_returns_its_status(make_container, lxcpath):
    make_container("cmdbase")
    result = cli("-P", lxcpath, "copy", "cmdbase", "-e", "-N", "cmdcopy", "--", "/bin/sh", "-c",
                 "hostname; echo ${CALLERS_OWN:-cleared}; exit 7", CALLERS_OWN="passed")
    assert result.returncode == 7, result.stderr
    assert result.stdout.splitlines() == ["Created cmdcopy as clone of cmdbase", "cmdcopy", "cleared"]
    assert not Container("cmdcopy", lxcpath).defined


def test_copy_e_in_the_foreground_ends_with_its_copy(make_container, lxcpath):
    make_container("fgbase")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = REPO
    # No -d: the command stays until the copy's init exits, as lxc-copy -e without -d does.
    argv = [sys.executable, "-m", "lxcframe", "-P", lxcpath, "copy", "fgbase", "-e", "-N", "fgcopy"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            text=True)
    copy = Container("fgcopy", lxcpath)
    try:
        deadline = time.monotonic() + 30
        while copy.state != st.RUNNING:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        assert proc.poll() is None
        copy.stop()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.splitlines()[0] == "Created fgcopy as clone of fgbase", err
    assert not copy.defined


def test_copy_e_keepdata_and_keepname_keep_a_persistent_snapshot(make_container, lxcpath):
    make_container("kbase")
    kept = cli("-P", lxcpath, "copy", "kbase", "-e", "-D", "-K", "-d", "-N", "kept")
    assert kept.returncode == 0, kept.stderr
    copy = Container("kept", lxcpath)
    try:
        assert copy.running
        assert copy.load_config().get("lxc.ephemeral") is None
        assert copy.load_config().get("lxc.uts.name") == "kbase"
    finally:
        copy.stop(kill=True)
    assert copy.defined  # -D: a persistent snapshot
    copy.destroy()


def test_copy_refuses_options_that_do_not_go_together(make_container, lxcpath):
    make_container("optbase")
    for args, reason in ((["-d"], "copy: -D, -d and a command go with -e"),
                         (["-e", "-R"], "copy: -R does not go with -e"),
                         ([], "copy needs -N NEWNAME (or -e)")):
        result = cli("-P", lxcpath, "copy", "optbase", *args)
        assert (result.returncode, result.stderr) == (1, f"lxcframe: error: {reason}\n")
    assert sorted(os.listdir(lxcpath)) == ["optbase"]


def test_copy_without_e_clones_and_renames(make_container, lxcpath):
    make_container("cbase")
    assert cli("-P", lxcpath, "copy", "cbase", "-N", "csnap", "-s").returncode == 0
    assert Container("csnap", lxcpath).load_config().raw("lxc.rootfs.path").startswith("overlay:")
    assert cli("-P", lxcpath, "copy", "csnap", "-N", "cmoved", "-R").returncode == 0
    assert sorted(os.listdir(lxcpath)) == ["cbase", "cmoved"]
    Container("cmoved", lxcpath).destroy()
