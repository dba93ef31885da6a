"""Autostart (``lxcframe autostart``, LXC's ``lxc-autostart``): which containers a run takes, in which order,
the delay after each start, listing, shutdown, kill and reboot, exit statuses and bad values.

The choice and order are checked against LXC 5.0's own ``lxc-autostart -L`` on the same directory; the
runs themselves on real busybox containers whose host hooks write down when each one starts and stops.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from lxcframe import autostart
from lxcframe import state as st
from lxcframe.container import Container
from lxcframe.errors import ConfigError

from .conftest import run_cli

REPO = str(Path(__file__).resolve().parent.parent)

#: name -> its autostart lines: orders that tie, a negative one, groups on one line and on two, and
#: containers autostart leaves alone.
LISTED = {
    "n1": "lxc.start.auto = 1\nlxc.start.order = 5\nlxc.start.delay = 3\n",
    "n2": "lxc.start.auto = 1\nlxc.start.order = 1\n",
    "n3": "lxc.start.auto = 1\nlxc.start.order = 5\n",
    "w1": "lxc.start.auto = 1\nlxc.group = web\n",
    "wd": "lxc.start.auto = 1\nlxc.group = web db\n",
    "d2": "lxc.start.auto = 1\nlxc.group = db\nlxc.group = ops\nlxc.start.order = 3\n",
    "d1": "lxc.start.auto = 1\nlxc.group = db\nlxc.start.order = -2\n",
    "off": "lxc.start.auto = 0\nlxc.start.order = -9\n",
    "none": "",
}

#: The selections LXC's own tool is compared on (each also with the expected names, so that the test
#: says what they are without LXC).
SELECTIONS = [
    ([], ["n2", "n1", "n3"]),  # the NULL group alone, by order then name
    (["-g", "web"], ["w1", "wd"]),
    (["-g", "db,web"], ["d1", "wd", "d2", "w1"]),  # group after group, each container once
    (["-g", "web", "-g", "ops"], ["w1", "wd", "d2"]),
    (["-g", "web,,"], ["w1", "wd", "n2", "n1", "n3"]),  # the empty name is the NULL group, once
    (["-g", ""], ["n2", "n1", "n3"]),
    (["-a"], ["d1", "w1", "wd", "n2", "d2", "n1", "n3"]),
    (["-A"], ["off", "none", "n2", "n1", "n3"]),
    (["-A", "-a"], ["off", "d1", "none", "w1", "wd", "n2", "d2", "n1", "n3"]),
]


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = REPO
    return env


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=cli_env(), timeout=timeout)


def write_configs(lxcpath: str, configs: dict[str, str]) -> None:
    for name, lines in configs.items():
        os.mkdir(os.path.join(lxcpath, name))
        Path(lxcpath, name, "config").write_text(f"lxc.uts.name = {name}\n{lines}")


# --- choice and order, against LXC's tool ----------------------------------------------------------------------


@pytest.mark.parametrize(("args", "expected"), SELECTIONS, ids=[" ".join(a) or "default" for a, _ in SELECTIONS])
def test_list_takes_groups_and_order_as_lxc_autostart_does(lxcpath, host, args, expected):
    write_configs(lxcpath, LISTED)
    ours = cli("-P", lxcpath, "autostart", "-L", *args)
    assert ours.returncode == 0, ours.stderr
    lines = ours.stdout.splitlines()
    assert [line.split()[0] for line in lines] == expected
    delays = {"n1": "3"}
    assert lines == [f"{name} {delays.get(name, '0')}" for name in expected]
    lxc = subprocess.run(["lxc-autostart", "-P", lxcpath, "-L", *args], capture_output=True, text=True, timeout=60,
                         check=False)
    assert (lxc.returncode, lxc.stdout) == (0, ours.stdout), lxc.stderr


def test_the_library_orders_a_stop_backwards_and_a_reboot_as_a_start():
    entries = [autostart.Entry(name, True, order, 0, ()) for name, order in
               (("b", 2), ("a", 2), ("c", 1), ("z", -1))]
    assert [e.name for e in autostart.sort_entries(entries, autostart.START)] == ["z", "c", "a", "b"]
    assert [e.name for e in autostart.sort_entries(entries, autostart.REBOOT)] == ["z", "c", "a", "b"]
    assert [e.name for e in autostart.sort_entries(entries, autostart.SHUTDOWN)] == ["b", "a", "c", "z"]
    assert [e.name for e in autostart.sort_entries(entries, autostart.KILL)] == ["b", "a", "c", "z"]
    assert autostart.parse_groups([]) == ("",)
    assert autostart.parse_groups(["web,db", "db", ",web"]) == ("web", "db", "")
    # A group matches by its whole name (LXC 5.0.2 would take "web" for "-g webserver").
    web = autostart.Entry("w", True, 0, 0, ("web",))
    assert autostart.choose([web], ("webserver",)) == []
    assert autostart.choose([web], ("web",)) == [web]


def test_an_empty_lxcpath_is_no_failure(lxcpath, host):
    result = cli("-P", lxcpath, "autostart")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


# --- bad values ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "value", "reason"), [
    ("lxc.start.order", "x", "expected an integer"),
    ("lxc.start.delay", "-1", "expected an unsigned integer"),
    ("lxc.start.delay", "soon", "expected an unsigned integer"),
    ("lxc.start.auto", "yes", "expected 0 or 1"),
    ("lxc.ephemeral", "2", "expected 0 or 1"),
])
def test_a_bad_value_is_refused_at_its_file_line_and_key(lxcpath, host, key, value, reason):
    write_configs(lxcpath, {"good": "lxc.start.auto = 1\n", "bad": f"lxc.start.auto = 1\n{key} = {value}\n"})
    config = os.path.join(lxcpath, "bad", "config")
    with pytest.raises(ConfigError) as info:
        Container("bad", lxcpath).load_config()
    assert (info.value.path, info.value.line, info.value.key) == (config, 3, key)
    validated = cli("config", "validate", config)
    assert validated.returncode == 1
    assert validated.stderr.splitlines() == [f"lxcframe: error: {config}:3: {key} = {value!r}: {reason}"]
    # autostart names it and goes on with the others: a partial failure, as LXC's status 2.
    listed = cli("-P", lxcpath, "autostart", "-L")
    assert listed.returncode == 2
    assert listed.stdout == "good 0\n"
    assert listed.stderr.splitlines() == [f"lxcframe: error: bad: {config}:3: {key} = {value!r}: {reason}"]


def test_bad_options_are_refused(lxcpath, host):
    for args, words in ((["-t", "-1"], "expected whole seconds"), (["-s", "-k"], "not allowed with")):
        result = cli("-P", lxcpath, "autostart", *args)
        assert result.returncode == 2 and words in result.stderr, result.stderr


# --- runs on real containers ---------------------------------------------------------------------------------


@pytest.fixture
def journal(tmp_path) -> Path:
    """A host hook script appending ``TYPE NAME SECONDS`` to a file for every hook it runs as."""
    log = tmp_path / "journal"
    script = tmp_path / "note.sh"
    script.write_text(f'#!/bin/sh\necho "$3 $1 $(date +%s.%N)" >> {log}\n')
    script.chmod(0o755)
    log.write_text("")
    return log


def noted(journal: Path) -> list[tuple[str, str, float]]:
    rows = [line.split() for line in journal.read_text().splitlines()]
    return [(kind, name, float(at)) for kind, name, at in rows]


def hooked(journal: Path, *lines: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    script = str(journal.parent / "note.sh")
    return (("lxc.hook.pre-start", script), ("lxc.hook.post-stop", script), *lines)


def test_start_order_delay_list_shutdown_and_kill(make_container, lxcpath, journal):
    make_container("late", config=hooked(journal, ("lxc.start.auto", "1"), ("lxc.start.order", "20")))
    make_container("early", config=hooked(journal, ("lxc.start.auto", "1"), ("lxc.start.order", "-3"),
                                          ("lxc.start.delay", "2")))
    make_container("mid", config=hooked(journal, ("lxc.start.auto", "1"), ("lxc.start.order", "7")))
    make_container("grouped", config=hooked(journal, ("lxc.start.auto", "1"), ("lxc.group", "web")))
    make_container("manual", config=hooked(journal, ("lxc.start.order", "1")))
    names = ["early", "mid", "late"]
    try:
        began = time.monotonic()
        result = cli("-P", lxcpath, "autostart")
        took = time.monotonic() - began
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
        starts = [row for row in noted(journal) if row[0] == "pre-start"]
        assert [name for _, name, _ in starts] == names
        # lxc.start.delay: the next start waited two seconds after "early" had started.
        assert starts[1][2] - starts[0][2] >= 2.0
        assert took >= 2.0
        for name in names:
            assert Container(name, lxcpath).state == st.RUNNING
        assert Container("grouped", lxcpath).state == st.STOPPED
        assert Container("manual", lxcpath).state == st.STOPPED
        # Nothing left to start: the list is empty, and a second run starts nothing.
        assert cli("-P", lxcpath, "autostart", "-L").stdout == ""
        # A stop takes them backwards; a reboot as a start does, with its delay.
        assert cli("-P", lxcpath, "autostart", "-L", "-s").stdout == "late\nmid\nearly\n"
        assert cli("-P", lxcpath, "autostart", "-L", "-k").stdout == "late\nmid\nearly\n"
        assert cli("-P", lxcpath, "autostart", "-L", "-r").stdout == "early 2\nmid 0\nlate 0\n"
        journal.write_text("")
        result = cli("-P", lxcpath, "autostart", "-s", "-t", "30")
        assert (result.returncode, result.stderr) == (0, "")
        assert [name for kind, name, _ in noted(journal) if kind == "post-stop"] == ["late", "mid", "early"]
        for name in names:
            assert not Container(name, lxcpath).running
        assert cli("-P", lxcpath, "autostart", "-L", "-s").stdout == ""
    finally:
        for name in [*names, "grouped"]:
            container = Container(name, lxcpath)
            if container.running:
                container.stop(kill=True)


def test_kill_groups_and_reboot_on_real_containers(make_container, lxcpath, journal):
    web = make_container("web1", config=hooked(journal, ("lxc.start.auto", "1"), ("lxc.group", "web")))
    db = make_container("db1", config=hooked(journal, ("lxc.start.auto", "1"), ("lxc.group", "db"),
                                             ("lxc.start.order", "1")))
    plain = make_container("plain", config=hooked(journal, ("lxc.start.auto", "1")))
    try:
        result = cli("-P", lxcpath, "autostart", "-g", "web", "-g", "db")
        assert result.returncode == 0, result.stderr
        assert [name for kind, name, _ in noted(journal) if kind == "pre-start"] == ["web1", "db1"]
        assert web.running and db.running and not plain.running
        first = web.init_pid
        result = cli("-P", lxcpath, "autostart", "-r", "-g", "web")
        assert result.returncode == 0, result.stderr
        deadline = time.monotonic() + 30
        while not (web.state == st.RUNNING and web.init_pid not in (-1, first)):
            assert time.monotonic() < deadline, "the reboot did not start it again"
            time.sleep(0.05)
        journal.write_text("")
        result = cli("-P", lxcpath, "autostart", "-k", "-a")
        assert result.returncode == 0, result.stderr
        # Every group, backwards: db1 (order 1) last started, first killed.
        assert [name for kind, name, _ in noted(journal) if kind == "post-stop"] == ["db1", "web1"]
        assert not web.running and not db.running
    finally:
        for container in (web, db, plain):
            if container.running:
                container.stop(kill=True)


def test_a_failed_start_is_status_1_when_all_fail_and_2_when_some_do(make_container, lxcpath):
    broken = make_container("broken", config=(("lxc.start.auto", "1"), ("lxc.init.cmd", "/no/such/init")))
    result = cli("-P", lxcpath, "autostart")
    assert result.returncode == 1, result.stderr
    # The monitor's own log line comes first, as for `start`; then the run's one line for it.
    assert result.stderr.splitlines()[-1] == ("lxcframe: error: broken: start failed at stage 'exec': "
                                              "cannot execute /no/such/init: No such file or directory")
    assert not broken.running
    fine = make_container("fine", config=(("lxc.start.auto", "1"),))
    try:
        result = cli("-P", lxcpath, "autostart")
        assert result.returncode == 2, result.stderr
        assert fine.running and not broken.running
    finally:
        if fine.running:
            fine.stop(kill=True)


def test_the_systemd_unit_runs_autostart_and_stops_with_shutdown():
    unit = Path(REPO, "contrib", "systemd", "lxcframe-autostart.service").read_text()
    lines = {line.split("=", 1)[0]: line.split("=", 1)[1] for line in unit.splitlines() if "=" in line}
    assert lines["Type"] == "oneshot" and lines["RemainAfterExit"] == "yes"
    start, stop = lines["ExecStart"].split(), lines["ExecStop"].split()
    assert start[1:] == ["autostart"] and stop[1:] == ["autostart", "-s"]
    assert Path(start[0]).name == "lxcframe" == Path(stop[0]).name
    # systemd reads it without a complaint but that lxcframe is not installed in its search path here.
    checked = subprocess.run(["systemd-analyze", "verify", "--man=no", str(Path(REPO, "contrib", "systemd",
                             "lxcframe-autostart.service"))], capture_output=True, text=True, check=False)
    other = [line for line in checked.stderr.splitlines() if "Command lxcframe is not executable" not in line]
    assert other == [], checked.stderr
