"""A daemon start's host-side log lines reach its caller, whichever process runs the monitor.

The monitor of a daemon start is the supervisor's child, a helper interpreter (a caller with more
threads than one) or a double fork of the caller. While the start is under way its lines (host
stages, the child's lines it relays) go to the caller's stderr at the caller's level, as a
foreground start's do; once the start is reported (running or failed) the monitor holds nothing of
the caller's: the caller's stderr pipe reaches EOF when the caller exits, and no later line (the
post-start stage) reaches it. ``--trace-plugins`` crosses with the start request.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lxcframe import state as st
from lxcframe.container import Container

pytestmark = pytest.mark.container

REPO = str(Path(__file__).resolve().parent.parent)
#: How long the caller's stderr may stay open after the caller exited before the test calls it kept.
EOF_DEADLINE = 10.0

#: A caller with a second thread: it may not fork, so without the supervisor it runs the helper.
THREADED_CALLER = textwrap.dedent("""
    import sys, threading
    from lxcframe.container import Container
    from lxcframe.errors import LxcframeError
    from lxcframe.log import HUB
    from lxcframe.plugin_manager import Plugins

    name, lxcpath, level, trace = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "trace"
    HUB.configure(level=level)
    idle = threading.Event()
    other = threading.Thread(target=idle.wait)
    other.start()
    try:
        plugins = Plugins(trace=True) if trace else None
        Container(name, lxcpath, plugins=plugins).start()
    except LxcframeError as err:
        print(f"lxcframe: error: {err}", file=sys.stderr)
        sys.exit(1)
    finally:
        idle.set()
        other.join()
    """)

LINE = re.compile(r"^lxcframe (?P<container>\S+) \d{14}\.\d{3} (?P<level>[A-Z]+) +(?P<logger>\S+) - (?P<rest>.*)$")


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LXCFRAME_TRACE_PLUGINS")}
    env["PYTHONPATH"] = REPO  # this working tree, not an installed copy
    env.update(extra)
    return env


class Caller:
    """A caller process whose stderr is a pipe this test holds the read end of."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, env=env)
        assert self.process.stderr is not None
        self.stderr = self.process.stderr
        self.pipe_inode = os.fstat(self.stderr.fileno()).st_ino
        self.returncode = self.process.wait(timeout=120)

    def read_to_eof(self) -> str:
        """Everything written to the caller's stderr; fails if some process still holds it open
        (no EOF) once the caller has exited."""
        fd = self.stderr.fileno()
        chunks = []
        deadline = time.monotonic() + EOF_DEADLINE
        while True:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                holders = pipe_holders(self.pipe_inode)
                raise AssertionError(f"the caller exited, its stderr is still open in {holders}; "
                                     f"read so far: {b''.join(chunks).decode()!r}")
            chunk = os.read(fd, 65536)
            if not chunk:
                self.stderr.close()
                return b"".join(chunks).decode()
            chunks.append(chunk)


def cli(*args: str, **env: str) -> Caller:
    return Caller([sys.executable, "-m", "lxcframe", *args], environment(**env))


def threaded(container: Container, level: str, *, trace: bool = False) -> Caller:
    return Caller([sys.executable, "-c", THREADED_CALLER, container.name, container.lxcpath, level,
                   "trace" if trace else "-"], environment(LXCFRAME_SUPERVISOR="0"))


def pipe_holders(inode: int) -> list[int]:
    """Every process with a descriptor on pipe ``inode``."""
    holders = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if f"pipe:[{inode}]" in links:
            holders.append(int(pid))
    return holders


def parsed(stderr: str) -> list[dict[str, str]]:
    """The log lines of ``stderr``, as fields."""
    return [m.groupdict() for m in map(LINE.match, stderr.splitlines()) if m]


def messages(stderr: str, logger: str) -> list[str]:
    return [line["rest"] for line in parsed(stderr) if line["logger"] == logger]


def stages_done(stderr: str, logger: str) -> list[str]:
    return [m.group(1) for m in map(re.compile(r"^stage done stage=(\S+) ms=\d+\.\d{3}$").match,
                                    messages(stderr, logger)) if m]


def monitor_of(container: Container) -> int:
    recorded = container.current_state()
    assert recorded is not None and recorded.state == st.RUNNING
    return recorded.monitor_pid


def parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[1])


def comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as handle:
        return handle.read().strip()


def cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        return handle.read().decode().split("\0")[:-1]


def assert_path(monitor: int, path: str) -> None:
    """The monitor was started the way the test meant: its parent or its own command line say how."""
    by_supervisor = comm(parent(monitor)) == "lxcframe-sup"
    helper = cmdline(monitor)[1:3] == ["-m", "lxcframe.monitor"]
    assert (by_supervisor, helper) == {"supervisor": (True, False), "helper": (False, True),
                                       "fork": (False, False)}[path], (comm(parent(monitor)), cmdline(monitor))


def assert_no_descriptor_of(pid: int, inode: int) -> None:
    links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    assert f"pipe:[{inode}]" not in links, links


def start_debug(container: Container, path: str, option: tuple[str, ...] = ("--debug",)) -> Caller:
    if path == "helper":
        return threaded(container, "debug")
    env = {"LXCFRAME_SUPERVISOR": "0"} if path == "fork" else {}
    return cli(*option, "-P", container.lxcpath, "start", container.name, **env)


@pytest.mark.parametrize("path", ["supervisor", "helper", "fork"])
def test_debug_start_shows_the_monitors_lines_until_running_and_nothing_after(per_container_monitor,
                                                                              make_container, path):
    container = make_container("dl" + path[0])
    caller = start_debug(container, path)
    try:
        stderr = caller.read_to_eof()  # EOF: nothing holds the caller's stderr once it exited
        assert caller.returncode == 0, stderr
        monitor = monitor_of(container)
        assert_path(monitor, path)
        assert_no_descriptor_of(monitor, caller.pipe_inode)
        # The host stages, in order, from the monitor; the child's stages relayed by it; nothing of
        # post-start, which the monitor runs after it reported RUNNING.
        assert stages_done(stderr, "monitor") == ["pre-start", "userns", "cgroup", "network", "start-host"]
        assert stages_done(stderr, "child") == ["child-network", "pre-mount", "rootfs", "mounts", "devices",
                                                "pre-pivot", "security", "exec"]
        devpts = [m for m in messages(stderr, "child") if m.startswith("devpts mounted ")]
        assert len(devpts) == 1 and devpts[0].endswith(" plugin=devices"), stderr
        assert len(parsed(stderr)) == len(stderr.splitlines()), stderr  # nothing but log lines
        assert all(line["container"] == container.name for line in parsed(stderr))
        running = messages(stderr, "monitor")[-1]
        assert running == f"container running init_pid={container.init_pid} command=/sbin/init", stderr
    finally:
        container.stop(kill=True)


@pytest.mark.parametrize("path", ["supervisor", "helper"])
def test_a_failed_daemon_starts_lines_reach_the_caller(make_container, tmp_path, path):
    hook = tmp_path / "refuse.sh"
    hook.write_text("#!/bin/sh\necho not today\nexit 3\n")
    hook.chmod(0o755)
    container = make_container("dlf" + path[0], config=(("lxc.hook.start-host", str(hook)),))
    caller = start_debug(container, path, ("--log-level", "debug"))  # --debug would show a traceback
    stderr = caller.read_to_eof()
    assert caller.returncode == 1, stderr
    # The monitor's lines up to the failure, its own report of it, then the caller's error.
    assert stages_done(stderr, "monitor") == ["pre-start", "userns", "cgroup", "network"]
    failed = messages(stderr, "monitor")[-1]
    assert failed.startswith("start failed stage=start-host plugin=hooks ") and "not today" in failed, stderr
    last = stderr.splitlines()[-1]
    assert last.startswith("lxcframe: error: start failed at stage 'start-host' (plugin 'hooks'): ") and \
        "not today" in last, stderr
    assert container.state == st.STOPPED


TRACED = re.compile(r"^hook implementation hook=(\w+) plugin=([\w-]+) ms=\d+\.\d{3}")


def traced(stderr: str, logger: str) -> set[tuple[str, str]]:
    return {(m.group(1), m.group(2)) for m in map(TRACED.match, messages(stderr, logger)) if m}


def test_trace_plugins_reaches_the_supervisors_monitor_and_only_its_own_start(per_container_monitor, make_container):
    first, second = make_container("dltr1"), make_container("dltr2")
    caller = cli("--trace-plugins", "-P", first.lxcpath, "start", first.name)
    try:
        stderr = caller.read_to_eof()
        assert caller.returncode == 0, stderr
        assert_path(monitor_of(first), "supervisor")
        host_side = traced(stderr, "plugins")
        for pair in [("lxcframe_pre_start", "cgroup"), ("lxcframe_attach_cgroup", "cgroup"),
                     ("lxcframe_setup_network", "netns"), ("lxcframe_start_host", "hooks")]:
            assert pair in host_side, (pair, stderr)
        assert ("lxcframe_child_devices", "devices") in traced(stderr, "child"), stderr
        # The same supervisor (it stays while the first monitor runs), a caller that does not trace,
        # at the level the trace lines have: none.
        untraced = cli("--log-level", "info", "-P", second.lxcpath, "start", second.name)
        stderr = untraced.read_to_eof()
        assert untraced.returncode == 0, stderr
        assert parent(monitor_of(second)) == parent(monitor_of(first))
        assert [line["rest"] for line in parsed(stderr)] == \
            [f"container running init_pid={second.init_pid} command=/sbin/init"]
    finally:
        first.stop(kill=True)
        second.stop(kill=True)


def test_trace_plugins_reaches_the_helper_monitor_of_a_threaded_caller(make_container):
    container = make_container("dltrh")
    caller = threaded(container, "info", trace=True)
    try:
        stderr = caller.read_to_eof()
        assert caller.returncode == 0, stderr
        assert_path(monitor_of(container), "helper")
        assert {("lxcframe_pre_start", "cgroup"), ("lxcframe_setup_network", "netns")} <= traced(stderr, "plugins")
        assert ("lxcframe_child_devices", "devices") in traced(stderr, "child"), stderr
    finally:
        container.stop(kill=True)
