"""Hook failures abort a start as LXC's do, and a closed stdout pipe ends the CLI quietly.

A ``lxc.hook.start-host`` that fails (an operator's check that the host is fit for this container,
say) must keep the payload from ever running, and leave no cgroup, process or runtime state behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lxcframe import state as st
from lxcframe.container import Container
from lxcframe.errors import StageError

from ..conftest import run_cli
from ..test_cgroups import leftovers

#: Hooks whose failure aborts the start in LXC; ``start`` runs inside the container, the rest on the host.
ABORTING = ("pre-start", "pre-mount", "mount", "autodev", "start-host", "start")


def _failing_hook(tmp_path: Path, mark: Path) -> str:
    script = tmp_path / "refuse.sh"
    script.write_text(f"#!/bin/sh\ntouch {mark}\necho host is not fit for this container\nexit 3\n")
    script.chmod(0o755)
    return str(script)


def _payload_ran(container: Container) -> bool:
    return os.path.exists(os.path.join(container.load_config().get("lxc.rootfs.path"), "payload-ran"))


PAYLOAD = ["/bin/sh", "-c", "touch /payload-ran; sleep 30"]


@pytest.mark.container
@pytest.mark.parametrize("mode", ["start", "execute"])
def test_failing_start_host_hook_fails_the_start_before_the_payload_runs(make_container, tmp_path, host, mode):
    mark = tmp_path / "hook-ran"
    script = _failing_hook(tmp_path, mark)
    name = f"hkfail{mode[0]}"
    container = make_container(name, config=(("lxc.hook.start-host", script),))
    with pytest.raises(StageError) as info:
        container.start(PAYLOAD) if mode == "start" else container.execute(PAYLOAD)
    assert mark.exists(), "the hook ran"
    assert info.value.stage == "start-host" and info.value.plugin == "hooks"
    assert f"lxc.hook.start-host {script!r} exited with status 3" in str(info.value)
    assert "host is not fit" in str(info.value)
    assert not _payload_ran(container)
    assert container.state == st.STOPPED
    assert st.read_state(container.lxcpath, container.name) is None
    assert leftovers(name) == []
    host.assert_clean()


@pytest.mark.container
def test_cli_start_with_failing_start_host_hook_exits_non_zero(make_container, tmp_path, host):
    script = _failing_hook(tmp_path, tmp_path / "hook-ran")
    container = make_container("hkcli", config=(("lxc.hook.start-host", script),))
    result = run_cli("-P", container.lxcpath, "start", container.name, "--", *PAYLOAD)
    assert result.returncode == 1, result.stderr
    assert script in result.stderr and "exited with status 3" in result.stderr
    assert not _payload_ran(container)
    assert container.state == st.STOPPED
    assert leftovers("hkcli") == []
    host.assert_clean()


@pytest.mark.container
@pytest.mark.parametrize("kind", [k for k in ABORTING if k != "start-host"])
def test_other_setup_hooks_abort_the_start_too(make_container, tmp_path, kind):
    # Inline, so that the start hook (run inside the container, after pivot_root) finds it too.
    script = "/bin/sh -c 'echo not fit; exit 3'"
    name = "hk" + kind.replace("-", "")
    container = make_container(name, config=((f"lxc.hook.{kind}", script),))
    with pytest.raises(StageError, match=rf"lxc\.hook\.{kind} .*exited with status 3"):
        container.execute(PAYLOAD)
    assert not _payload_ran(container)
    assert leftovers(name) == []


@pytest.mark.container
@pytest.mark.parametrize("kind", ["stop", "post-stop"])
def test_failing_stop_hooks_are_logged_not_fatal(make_container, tmp_path, kind):
    mark = tmp_path / "hook-ran"
    container = make_container("hk" + kind.replace("-", ""),
                               config=((f"lxc.hook.{kind}", _failing_hook(tmp_path, mark)),))
    assert container.execute(["/bin/sh", "-c", "exit 5"]) == 5
    assert mark.exists()
    assert container.state == st.STOPPED


# --- a closed stdout pipe ----------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [("ls", "--format", "json"), ("plugins",), ("--help",)],
                         ids=["ls-json", "plugins", "help"])
def test_closed_stdout_pipe_ends_quietly(rundir, tmp_path, args):
    lxcpath = tmp_path / "lxc"
    (lxcpath / "c1").mkdir(parents=True)
    (lxcpath / "c1" / "config").write_text("lxc.uts.name = c1\n")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader (head) has gone: every write fails with EPIPE
    try:
        result = subprocess.run([sys.executable, "-m", "lxcframe", "-P", str(lxcpath), *args], stdout=write_end,
                                stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode in (0, 141)


def test_head_on_a_long_listing_ends_quietly(rundir):
    result = subprocess.run(f"{sys.executable} -m lxcframe plugins --format json | head -c1",
                            shell=True, capture_output=True, text=True, timeout=60, check=False)
    assert result.stdout == "["
    assert result.stderr == ""
