"""Operator conveniences of the command line, as LXC's tools have them: ``wait`` on several states, ``stop``
after a dead monitor, ``ls`` JSON without placeholders, listings that fit the terminal.

Commands run as ``python -m lxcframe`` of this working tree on real busybox containers.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import time

import pytest

from lxcframe import state as st
from lxcframe.cli.table import fit, fitted_widths
from lxcframe.container import Container

from .test_cgroups import leftovers
from .test_cli_verbs import cli, cli_argv, cli_env, one_error_line

pytestmark = pytest.mark.container


# --- wait ----------------------------------------------------------------------------------------------------


def test_wait_takes_states_joined_by_a_bar(make_container, lxcpath):
    container = make_container("waitbar")
    container.start()
    try:
        assert cli("-P", lxcpath, "wait", "waitbar", "RUNNING|FROZEN", "-t", "5").returncode == 0
        assert cli("-P", lxcpath, "wait", "waitbar", "frozen|running", "-t", "5").returncode == 0
        # Neither state comes: the time runs out.
        assert cli("-P", lxcpath, "wait", "waitbar", "STOPPED|FROZEN", "-t", "0.3").returncode == 1
        line = one_error_line(cli("-P", lxcpath, "wait", "waitbar", "RUNNING|SLEEPING", "-t", "1"))
        assert "'SLEEPING'" in line and "'RUNNING|SLEEPING'" in line
    finally:
        container.stop(kill=True)
    assert cli("-P", lxcpath, "wait", "waitbar", "STOPPED|FROZEN", "-t", "5").returncode == 0


# --- stop after a dead monitor -------------------------------------------------------------------------------


def _cgroups_of(container) -> list[str]:
    from lxcframe.plugins.cgroup.placement import CgroupRecord, from_record

    placed = from_record(container.current_state().record(CgroupRecord))
    return [os.path.join(p.mountpoint, path.lstrip("/")) for p in placed for path in p.created]


def _kill_monitor(container) -> None:
    """SIGKILL to the monitor this process forked; returns once it and (through the pdeath signal) init are gone."""
    recorded = container.current_state()
    monitor = os.pidfd_open(recorded.monitor_pid)
    init = os.pidfd_open(recorded.init_pid)
    try:
        os.kill(recorded.monitor_pid, signal.SIGKILL)
        for fd in (monitor, init):
            readable, _, _ = select.select([fd], [], [], 10)
            assert readable, "the monitor or its init did not die"
    finally:
        os.close(monitor)
        os.close(init)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(recorded.monitor_pid, 0)


def test_stop_after_a_dead_monitor_releases_its_cgroups(per_container_monitor, make_container, lxcpath):
    # server=False: this process forks the monitor itself, so the test owns the pid it kills.
    container = make_container("deadstop", server=False)
    container.start()
    cgroups = _cgroups_of(container)
    assert cgroups and all(os.path.isdir(path) for path in cgroups)
    _kill_monitor(container)
    # Nothing has read the state since: the dead monitor's state file and cgroups are all still there.
    assert st.read_state(lxcpath, "deadstop").state == st.RUNNING
    assert all(os.path.isdir(path) for path in cgroups)
    result = cli("-P", lxcpath, "stop", "deadstop")
    assert result.returncode == 0, result.stderr
    assert [path for path in cgroups if os.path.exists(path)] == []
    assert leftovers("deadstop") == []
    assert st.read_state(lxcpath, "deadstop") is None
    assert container.state == st.STOPPED
    # Stopped and clean: a second stop has nothing left to do.
    assert "not running" in one_error_line(cli("-P", lxcpath, "stop", "deadstop"))
    container.start()
    container.stop(kill=True)


@pytest.mark.parametrize("verb", ["info", "ls"])
def test_reading_the_state_after_a_dead_monitor_cleans_up(per_container_monitor, make_container, lxcpath, verb):
    container = make_container("deadread", server=False)
    container.start()
    cgroups = _cgroups_of(container)
    _kill_monitor(container)
    args = ["info", "deadread"] if verb == "info" else ["ls", "--fancy"]
    result = cli("-P", lxcpath, *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data if verb == "info" else data[0])["state"] == st.STOPPED
    assert [path for path in cgroups if os.path.exists(path)] == []
    assert st.read_state(lxcpath, "deadread") is None


# --- ls ------------------------------------------------------------------------------------------------------


def test_ls_json_says_null_and_empty_lists_for_a_stopped_container(make_container, lxcpath):
    make_container("lsjson")
    for args in (("ls", "--format", "json"), ("ls", "--fancy", "--format", "json")):
        result = cli("-P", lxcpath, *args)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == [
            {"name": "lsjson", "state": "STOPPED", "pid": None, "ipv4": [], "ipv6": []}]
    text = cli("-P", lxcpath, "ls", "--fancy").stdout.splitlines()
    assert text[1].split() == ["lsjson", "STOPPED", "-", "-", "-"]


def test_ls_json_of_a_running_container_lists_its_addresses(make_container, lxcpath):
    container = make_container("lsrun", config=(
        ("lxc.net.0.type", "veth"), ("lxc.net.0.ipv4.address", "198.51.100.31/24"), ("lxc.net.0.flags", "up")))
    init = container.start()
    try:
        [row] = json.loads(cli("-P", lxcpath, "ls", "--format", "json").stdout)
        assert row == {"name": "lsrun", "state": "RUNNING", "pid": init, "ipv4": ["198.51.100.31"], "ipv6": []}
    finally:
        container.stop(kill=True)


# --- listings that fit the terminal --------------------------------------------------------------------------


@pytest.mark.parametrize("columns", [None, "80", "100"])
def test_plugins_fit_the_terminal(columns):
    env = {"COLUMNS": columns} if columns else {}
    width = int(columns or 80)  # not a terminal: 80
    if not columns:
        env["COLUMNS"] = ""
    cut = cli("plugins", **env)
    assert cut.returncode == 0, cut.stderr
    assert max(len(line) for line in cut.stdout.splitlines()) <= width
    assert "…" in cut.stdout
    wrapped = cli("plugins", "--verbose", **env)
    assert max(len(line) for line in wrapped.stdout.splitlines()) <= width
    # Wrapped, every hook of every plugin is there (HOOKS is the last column); JSON has them whole.
    lines = wrapped.stdout.splitlines()
    column = lines[0].index("HOOKS")
    hooks = "".join(line[column:] for line in lines[1:]).replace(" ", "")
    names = [line.split()[0] for line in lines[1:] if line[:1] != " "]
    plugins = json.loads(cli("plugins", "--format", "json", **env).stdout)
    assert names == [plugin["name"] for plugin in plugins]
    assert hooks == "".join(",".join(h.removeprefix("lxcframe_") for h in p["hooks"]) or "-" for p in plugins)


def test_fit_cuts_the_widest_column_first_and_keeps_the_name():
    headers = ["NAME", "STATE", "HOOKS"]
    rows = [["a-long-plugin-name", "enabled", "x" * 100], ["b", "disabled (no such device)", "y"]]
    widths = fitted_widths(headers, rows, 60)
    assert widths[0] == len("a-long-plugin-name") and sum(widths) + 4 <= 60
    lines = fit(headers, rows, width=60).splitlines()
    assert lines[1].startswith("a-long-plugin-name  enabled") and lines[1].endswith("…")
    assert all(len(line) <= 60 for line in lines)
    # Narrower than the names themselves: the lines overflow rather than cut the names.
    assert fit(headers, rows, width=10).splitlines()[1].startswith("a-long-plugin-name")



# --- monitor -------------------------------------------------------------------------------------------------


def _line(stream, timeout: float = 30) -> str:
    """The next line of an unbuffered pipe, read byte by byte: a buffered reader would take in several
    lines at once and leave select() nothing to see for the next."""
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        readable, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        assert readable, f"no line in time (so far {line!r})"
        byte = os.read(stream.fileno(), 1)
        if not byte:
            break
        line += byte
    return line.decode()


def test_monitor_prints_each_state_of_a_start_and_a_stop(make_container, lxcpath, tmp_path):
    # The hooks hold the container in STARTING and STOPPING long enough for a reader every 0.1 s.
    hook = tmp_path / "slow.sh"
    hook.write_text("#!/bin/sh\nsleep 0.5\n")
    hook.chmod(0o755)
    container = make_container("mon", config=(("lxc.hook.pre-start", str(hook)), ("lxc.hook.post-stop", str(hook))))
    make_container("other")
    watcher = subprocess.Popen(cli_argv("-P", lxcpath, "--log-level", "info", "monitor", "m.n"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, env=cli_env())
    try:
        while "watching" not in (line := _line(watcher.stderr)):
            assert line, watcher.stderr.read().decode()
        container.start()
        Container("other", lxcpath).start()  # not matched by m.n: never printed
        container.stop()
        Container("other", lxcpath).stop(kill=True)
        expected = [f"'mon' changed state to [{state}]" for state in ("STARTING", "RUNNING", "STOPPING", "STOPPED")]
        assert [_line(watcher.stdout).rstrip("\n") for _ in expected] == expected
        watcher.send_signal(signal.SIGINT)
        assert watcher.wait(30) == 0
        assert watcher.stdout.read() == b""
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
        watcher.stdout.close()
        watcher.stderr.close()


def test_monitor_refuses_a_pattern_that_is_no_regular_expression(lxcpath):
    line = one_error_line(cli("-P", lxcpath, "monitor", "c1(", timeout=30))
    assert "'c1('" in line and "regular expression" in line


# --- info: block IO and the links' byte counts ----------------------------------------------------------------


def _whole_disk(path: str) -> str:
    """MAJOR:MINOR of the disk holding ``path`` (a partition's disk: throttle rules name whole disks)."""
    dev = os.stat(path).st_dev
    sysfs = f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}"
    if os.path.exists(os.path.join(sysfs, "partition")):
        with open(os.path.join(os.path.realpath(sysfs), "..", "dev")) as handle:
            return handle.read().strip()
    return f"{os.major(dev)}:{os.minor(dev)}"


def _net_dev(container, interface: str) -> tuple[int, int]:
    """(rx, tx) bytes of ``interface`` as the container's own /proc/net/dev says."""
    rootfs = container.load_config().get("lxc.rootfs.path")
    assert container.attach_wait(["/bin/sh", "-c", "cat /proc/net/dev > /.netdev"]) == 0
    path = os.path.join(rootfs, ".netdev")
    with open(path) as handle:
        text = handle.read()
    os.unlink(path)
    for line in text.splitlines():
        name, _, counters = line.partition(":")
        if name.strip() == interface:
            fields = counters.split()
            return int(fields[0]), int(fields[8])
    raise AssertionError(text)


def test_info_shows_block_io_and_link_bytes_as_lxc_info(make_container, lxcpath, tmp_path):
    from lxcframe.plugins.cgroup.layout import V1

    from .test_cgroups import placed_of

    config = [("lxc.net.0.type", "veth"), ("lxc.net.0.ipv4.address", "198.51.100.41/24"),
              ("lxc.net.0.flags", "up")]
    container = make_container("infostat", config=tuple(config))
    disk = _whole_disk(container.container_dir)
    if os.path.isdir("/sys/fs/cgroup/blkio"):
        # v1 counts a device's bytes only while a throttle rule names it: a rule far above any real rate.
        for key in ("read_bps_device", "write_bps_device"):
            container.set_config_item(f"lxc.cgroup.blkio.throttle.{key}", f"{disk} 10000000000")
    container.start()
    try:
        before = json.loads(cli("-P", lxcpath, "info", "infostat", "--format", "json").stdout)
        assert before["blkio_bytes"] >= 0
        # 4 MiB written and read past the page cache, and packets out of eth0 (ARP for a neighbour no one is).
        assert container.attach_wait(["/bin/sh", "-c", "dd if=/dev/zero of=/io bs=1M count=4 oflag=direct "
                                      "2>/dev/null && dd if=/io of=/dev/null bs=1M iflag=direct 2>/dev/null; "
                                      "rm /io; ping -c 1 -W 1 198.51.100.42 >/dev/null; true"]) == 0
        low = _net_dev(container, "eth0")
        after = json.loads(cli("-P", lxcpath, "info", "infostat", "--format", "json").stdout)
        high = _net_dev(container, "eth0")
        # cgroup2's io.stat where the io controller reaches the container, else v1's blkio.
        assert any((p.kind == V1 and "blkio" in p.controllers) or os.path.exists(p.path(p.payload, "io.stat"))
                   for p in placed_of(container))
        assert after["blkio_bytes"] - before["blkio_bytes"] >= 8 << 20
        [link] = after["links"]
        assert link["name"] == "eth0"
        assert low[0] <= link["rx_bytes"] <= high[0] and low[1] <= link["tx_bytes"] <= high[1]
        [before_link] = before["links"]
        assert link["tx_bytes"] > before_link["tx_bytes"]
        text = cli("-P", lxcpath, "info", "infostat").stdout.splitlines()
        at = text.index("Link:         eth0")
        assert [line.split(":")[0] for line in text[at : at + 4]] == ["Link", " TX bytes", " RX bytes", " Total bytes"]
        assert any(line.startswith("BlkIO use:    ") and line.endswith(("bytes", "KiB", "MiB", "GiB"))
                   for line in text)
    finally:
        container.stop(kill=True)


@pytest.mark.parametrize(("size", "shown"), [(0, "0 bytes"), (1024, "1024 bytes"), (1536, "1.50 KiB"),
                                             (5 << 20, "5.00 MiB"), (3 << 30, "3.00 GiB")])
def test_sizes_read_as_lxc_info_prints_them(size, shown):
    from lxcframe.cli.commands import humanized

    assert humanized(size) == shown
