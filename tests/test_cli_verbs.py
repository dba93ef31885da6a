"""The verbs users run that the other CLI tests leave out, each run as ``python -m lxcframe`` on a real container.

freeze / unfreeze, start -F, stop -t, attach -v / --clear-env / -u -g, umount -l, console -e, and the
--log-* options. Every call imports this working tree (PYTHONPATH), not an installed copy.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lxcframe import state as st
from lxcframe.container import Container
from lxcframe.plugins.cgroup import fs
from lxcframe.plugins.cgroup.layout import V1, V2

from .conftest import run_cli
from .test_cgroups import leftovers, placed_of

pytestmark = pytest.mark.container

REPO = str(Path(__file__).resolve().parent.parent)

#: busybox's init halts on SIGUSR1, and the busybox template says so (lxc.signal.halt = SIGUSR1).
HALT_TRAP = 'trap "echo halted > /halted; exit 0" USR1'
#: An init that counts (one byte per tick into /count), halting cleanly on the halt signal.
COUNTER_INIT = f"{HALT_TRAP}; while :; do echo x >> /count; usleep 20000 & wait $!; done"


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = REPO
    env.update(extra)
    return env


def cli(*args: str, timeout: float = 60, **extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=cli_env(**extra), timeout=timeout)


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "lxcframe", *args]


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lxcframe: error: "), result.stderr
    return lines[0]


def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def rootfs(container: Container) -> Path:
    return Path(container.load_config().get("lxc.rootfs.path"))


def info(container: Container, *options: str) -> dict[str, object]:
    result = cli(*options, "-P", container.lxcpath, "info", container.name, "--format", "json")
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def start(container: Container, script: str, *options: str) -> None:
    result = cli(*options, "-P", container.lxcpath, "start", container.name, "--", "/bin/sh", "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_cli_runs_the_working_tree():
    result = subprocess.run([sys.executable, "-c", "import lxcframe; print(lxcframe.__file__)"], cwd="/",
                            env=cli_env(), capture_output=True, text=True, timeout=30, check=True)
    assert result.stdout.strip() == os.path.join(REPO, "lxcframe", "__init__.py")


# --- freeze / unfreeze ---------------------------------------------------------------------------------------


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _grows(path: Path, timeout: float = 5.0) -> bool:
    before = _size(path)
    return wait_for(lambda: _size(path) > before, timeout)


@pytest.mark.parametrize("plugin_opts", [(), ("-p", "no:cgroup.v2")], ids=["v2-freeze", "v1-freezer"])
def test_freeze_stops_the_processes_and_unfreeze_resumes_them(make_container, plugin_opts):
    container = make_container("vfrz")
    count = rootfs(container) / "count"
    start(container, COUNTER_INIT, *plugin_opts)
    assert _grows(count), "the counter runs"

    def freezer_state() -> str:
        if plugin_opts:
            (freezer,) = [p for p in placed_of(container, V1) if "freezer" in p.controllers]
            return fs.read(freezer.path(freezer.payload, "freezer.state"))
        (unified,) = placed_of(container, V2)
        events = fs.keyed(fs.read(unified.path(unified.payload, "cgroup.events")))
        return {"1": "FROZEN", "0": "THAWED"}[events["frozen"]]

    result = cli(*plugin_opts, "-P", container.lxcpath, "freeze", container.name)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert freezer_state() == "FROZEN"
    assert info(container, *plugin_opts)["state"] == "FROZEN"
    frozen_at = _size(count)
    # Nothing to wait on for something that must not happen: watch the counter for a while.
    assert not _grows(count, timeout=0.5), "a frozen container went on counting"
    assert _size(count) == frozen_at

    result = cli(*plugin_opts, "-P", container.lxcpath, "unfreeze", container.name)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert freezer_state() == "THAWED"
    assert container.state == st.RUNNING
    assert _grows(count), "the counter runs again"

    # A frozen container is thawed before it is asked to halt: its init handles the signal at once.
    container.freeze()
    assert freezer_state() == "FROZEN"
    begun = time.monotonic()
    result = cli(*plugin_opts, "-P", container.lxcpath, "stop", container.name, "-t", "30")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - begun < 15  # not the 30 s of -t: halted at once
    assert (rootfs(container) / "halted").read_text() == "halted\n"
    assert container.state == st.STOPPED
    assert leftovers("vfrz") == []


def test_freeze_of_a_stopped_container_is_one_error(make_container):
    container = make_container("vfrz2")
    for verb in ("freeze", "unfreeze"):
        line = one_error_line(cli("-P", container.lxcpath, verb, container.name))
        assert line == "lxcframe: error: vfrz2: not running"


# --- start -F ------------------------------------------------------------------------------------------------


def test_start_foreground_keeps_the_callers_stdio_and_returns_inits_status(make_container, rundir):
    container = make_container("vfg")
    script = 'read line; echo "got:$line"; echo "to-stderr" >&2; exit 7'
    proc = subprocess.Popen(cli_argv("-P", container.lxcpath, "start", "-F", container.name, "--", "/bin/sh", "-c",
                                     script),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
    try:
        # The command lock is released once the start succeeded: others see it running meanwhile.
        assert wait_for(lambda: container.state == st.RUNNING)
        assert proc.poll() is None, "start -F returned while init still ran"
        out, err = proc.communicate(b"hello\n", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 7
    assert out == b"got:hello\n"
    assert err == b"to-stderr\n"
    assert container.state == st.STOPPED
    assert st.read_state(container.lxcpath, container.name) is None


def test_start_foreground_killed_by_stop_returns_128_plus_signal(make_container):
    container = make_container("vfgk")
    proc = subprocess.Popen(cli_argv("-P", container.lxcpath, "start", "-F", container.name, "--", "/bin/sh", "-c",
                                     "exec sleep 1000"),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
    try:
        assert wait_for(lambda: container.state == st.RUNNING)
        result = cli("-P", container.lxcpath, "stop", container.name, "-k")
        assert result.returncode == 0, result.stderr
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGKILL
    assert (out, err) == (b"", b"")
    assert container.state == st.STOPPED


# --- stop -t ---------------------------------------------------------------------------------------------------


def test_stop_timeout_returns_as_soon_as_init_halted(make_container, tmp_path):
    container = make_container("vstop")
    assert container.get_config_item("lxc.signal.halt") == "SIGUSR1"
    log = tmp_path / "monitor.log"
    start(container, COUNTER_INIT, "--log-file", str(log), "--log-level", "info")
    begun = time.monotonic()
    result = cli("-P", container.lxcpath, "stop", container.name, "-t", "60")
    elapsed = time.monotonic() - begun
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert elapsed < 15, f"stop -t 60 took {elapsed:.1f}s for an init that halts at once"
    assert (rootfs(container) / "halted").read_text() == "halted\n"
    assert container.state == st.STOPPED
    # The monitor (it logs where its start was told to) saw init exit by itself, status 0.
    stopped = [line for line in log.read_text().splitlines() if " monitor - container stopped " in line]
    assert len(stopped) == 1 and stopped[0].endswith("status='exit status 0'"), log.read_text()


def test_stop_timeout_kills_an_init_that_ignores_the_halt_signal(make_container, tmp_path):
    container = make_container("vstopk")
    log = tmp_path / "monitor.log"
    # No trap: a pid 1 does not get signals it has no handler for.
    start(container, "while :; do usleep 20000; done", "--log-file", str(log), "--log-level", "info")
    begun = time.monotonic()
    result = cli("-P", container.lxcpath, "stop", container.name, "-t", "1.5")
    elapsed = time.monotonic() - begun
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert 1.5 <= elapsed < 20, elapsed  # waited for the halt, then killed: not the default 60 s
    assert container.state == st.STOPPED
    stopped = [line for line in log.read_text().splitlines() if " monitor - container stopped " in line]
    assert len(stopped) == 1 and stopped[0].endswith("status='killed by SIGKILL'"), log.read_text()


# --- attach -v / --clear-env / -u -g ----------------------------------------------------------------------------


def test_attach_environment_and_ids(make_container):
    container = make_container("vatt")
    container.start(["/bin/sh", "-c", "while :; do usleep 200000; done"])
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    base = ("-P", container.lxcpath, "attach", container.name)
    env = cli_env(FOO="from-caller", KEPT="yes")
    env.pop("TERM", None)

    def attach(*args: str, term: str | None = None) -> list[str]:
        run_env = dict(env, **({"TERM": term} if term else {}))
        result = run_cli(*base, *args, env=run_env)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        return result.stdout.splitlines()

    # --clear-env: exactly LXC's minimal environment, then the -v variables in order.
    assert attach("--clear-env", "-v", "FOO=a=b", "-v", "EMPTY=", "--", "/usr/bin/env") == [
        f"PATH={path}", "HOME=/root", "container=lxc", "FOO=a=b", "EMPTY="]
    assert attach("--clear-env", "--", "/usr/bin/env", term="xterm-test") == [
        f"PATH={path}", "HOME=/root", "TERM=xterm-test", "container=lxc"]
    # Without it the caller's environment is kept; -v overrides a variable of the caller's.
    lines = attach("-v", "FOO=x", "--", "/usr/bin/env")
    assert "FOO=x" in lines and "FOO=from-caller" not in lines
    assert "KEPT=yes" in lines and "container=lxc" in lines
    assert f"PYTHONPATH={REPO}" in lines
    # -u/-g: real, effective, saved and filesystem ids, and no supplementary group; HOME is / for a user.
    status = attach("-u", "1000", "-g", "2000", "--clear-env", "--", "/bin/sh", "-c",
                    "grep -E '^(Uid|Gid|Groups):' /proc/self/status; echo HOME=$HOME")
    assert [line.split() for line in status] == [
        ["Uid:", "1000", "1000", "1000", "1000"], ["Gid:", "2000", "2000", "2000", "2000"], ["Groups:"],
        ["HOME=/"]]
    container.stop(kill=True)


# --- umount -l --------------------------------------------------------------------------------------------------


def _mountpoints(pid: int) -> list[str]:
    with open(f"/proc/{pid}/mountinfo") as handle:
        return [line.split()[4] for line in handle]


def test_umount_lazy_detaches_a_busy_mount(make_container, source_dir):
    container = make_container("vumnt")
    # Init opens a file of the mount as soon as it appears and keeps it open on descriptor 3.
    pid = container.start(["/bin/sh", "-c", "while [ ! -e /mnt/data/hello ]; do usleep 20000; done; "
                           "exec 3</mnt/data/hello; touch /opened; while :; do usleep 200000; done"])
    result = cli("-P", container.lxcpath, "mount", container.name, str(source_dir), "/mnt/data")
    assert result.returncode == 0, result.stderr
    assert wait_for(lambda: (rootfs(container) / "opened").exists())
    assert "/mnt/data" in _mountpoints(pid)

    line = one_error_line(cli("-P", container.lxcpath, "umount", container.name, "/mnt/data"))
    assert line == "lxcframe: error: umount /mnt/data: umount2: Device or resource busy: /mnt/data"
    assert "/mnt/data" in _mountpoints(pid), "a failed umount left the mount in place"

    result = cli("-P", container.lxcpath, "umount", container.name, "-l", "/mnt/data")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert "/mnt/data" not in _mountpoints(pid)
    # The open file still reads through the detached mount.
    with open(f"/proc/{pid}/fd/3") as handle:
        assert handle.read() == "injected\n"
    # and a lazy umount of what is no longer mounted fails.
    line = one_error_line(cli("-P", container.lxcpath, "umount", container.name, "-l", "/mnt/data"))
    assert "umount2: Invalid argument: /mnt/data" in line
    container.stop(kill=True)


# --- console -e -------------------------------------------------------------------------------------------------


def _read_until(fd: int, needle: bytes, timeout: float = 10.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def _console(container: Container, escape: str) -> tuple[subprocess.Popen[bytes], int]:
    primary, secondary = os.openpty()
    proc = subprocess.Popen(cli_argv("-P", container.lxcpath, "console", container.name, "-t", "1", "-e", escape),
                            stdin=secondary, stdout=secondary, stderr=secondary, start_new_session=True,
                            env=cli_env())
    os.close(secondary)
    return proc, primary


def _type_until(primary: int, line: bytes, needle: bytes) -> bytes:
    # The shell's line editing may ask where the cursor is (ESC[6n) and take what comes first as the
    # answer, so the first line typed can be lost: type until it runs.
    seen = b""
    for _ in range(5):
        os.write(primary, line)
        seen += _read_until(primary, needle, timeout=2)
        if needle in seen:
            break
    return seen


def test_console_escape_character(make_container):
    container = make_container("vcon", config=(("lxc.tty.max", "1"),))
    (rootfs(container) / "etc" / "inittab").write_text("tty1::respawn:/bin/sh\n")
    container.start()

    # -e ^b: Ctrl-b q detaches, Ctrl-a q is typed into the container like any other keys.
    proc, primary = _console(container, "^b")
    try:
        banner = _read_until(primary, b"to enter Ctrl b itself")
        assert b"Connected to tty 1" in banner
        assert b"Type <Ctrl b q> to exit the console, <Ctrl b Ctrl b> to enter Ctrl b itself" in banner
        assert b"ready-42" in _type_until(primary, b"echo ready-$((6*7))\r", b"ready-42")
        os.write(primary, b"\x01q\r")
        # The shell got "q" (Ctrl-a only moved its cursor): it says so, and we are still connected.
        assert b"q: not found" in _read_until(primary, b"q: not found")
        assert proc.poll() is None
        os.write(primary, b"\x02q")
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)
    assert container.running

    # -e ~ (a plain character): ~~ types one ~, ~q detaches. The tty is free again after the first client.
    proc, primary = _console(container, "~")
    try:
        assert b"Type <~ q> to exit the console" in _read_until(primary, b"to enter ~ itself")
        seen = _type_until(primary, b"echo $((6*7))~~x\r", b"42~x")
        assert b"42~x" in seen and b"42~~x" not in seen
        os.write(primary, b"~q")
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)
    assert container.running
    container.stop(kill=True)


def test_console_bad_escape_is_one_error(make_container):
    container = make_container("vcone")
    line = one_error_line(cli("-P", container.lxcpath, "console", container.name, "-e", "^1"))
    assert line == "lxcframe: error: -e ^1: expected ^LETTER or a single character"


# --- --log-file / --log-level / --log-format ----------------------------------------------------------------------


def _levels(lines: list[str]) -> set[str]:
    # "lxcframe NAME TIMESTAMP LEVEL LOGGER - MESSAGE ..."
    return {line.split()[3] for line in lines}


def test_log_file_and_level_reach_the_daemon_monitor(make_container, tmp_path):
    container = make_container("vlog")
    log = tmp_path / "logs" / "start.log"  # its directory is made
    start(container, "while :; do usleep 200000; done", "--log-file", str(log), "--log-level", "info")
    lines = log.read_text().splitlines()
    running = [line for line in lines if " monitor - container running " in line]
    assert len(running) == 1, lines
    assert running[0].startswith("lxcframe vlog ")
    assert _levels(lines) <= {"INFO", "NOTICE", "WARN", "ERROR"}, lines  # nothing below info
    assert oct(log.stat().st_mode & 0o777) == oct(0o640)
    container.stop(kill=True)
    # The monitor kept writing there until the container's end.
    assert any(" monitor - container stopped " in line for line in log.read_text().splitlines())


def test_relative_log_file_is_the_callers(make_container, tmp_path):
    container = make_container("vlogr")
    name = "vlogr-relative.log"
    stray = os.path.join("/", name)
    assert not os.path.exists(stray)
    try:
        result = subprocess.run(cli_argv("--log-file", name, "--log-level", "info", "-P", container.lxcpath,
                                         "start", container.name), cwd=tmp_path, env=cli_env(),
                                capture_output=True, text=True, timeout=60, check=False)
        assert (result.returncode, result.stderr) == (0, "")
        container.stop(kill=True)
        # The daemon monitor (forked by the supervisor, which lives in /) writes where the caller meant.
        assert not os.path.exists(stray)
    finally:
        if os.path.exists(stray):  # written by a monitor that took the path as its own
            os.unlink(stray)
    lines = (tmp_path / name).read_text().splitlines()
    assert [line.split(" - ", 1)[1].split()[:2] for line in lines if " monitor - " in line] == [
        ["container", "running"], ["container", "stopped"]]


def test_log_level_debug_in_json_with_options_after_the_verb(make_container, tmp_path):
    container = make_container("vlogj")
    log = tmp_path / "run.json"
    result = cli("-P", container.lxcpath, "execute", container.name, "--log-level", "debug", "--log-format", "json",
                 "--log-file", str(log), "--", "/bin/true")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records
    for record in records:
        assert record["container"] == "vlogj"
        assert record["level"] in ("debug", "info")
        assert isinstance(record["event"], str) and record["timestamp"]
    events = [(r["level"], r["logger"], r["event"]) for r in records]
    assert ("info", "monitor", "container running") in events
    assert ("info", "monitor", "container stopped") in events
    assert ("debug", "child", "devpts mounted") in events  # the child's lines come through the monitor


def test_log_level_on_stderr_without_a_file(make_container):
    container = make_container("vlogs")
    quiet = cli("-P", container.lxcpath, "execute", container.name, "--", "/bin/true")
    assert (quiet.returncode, quiet.stderr) == (0, ""), "below warn nothing is written by default"
    loud = cli("--log-level", "info", "-P", container.lxcpath, "execute", container.name, "--", "/bin/true")
    assert loud.returncode == 0
    lines = loud.stderr.splitlines()
    assert lines and _levels(lines) == {"INFO"}, lines
    assert [line.split(" - ", 1)[1].split()[:2] for line in lines if " monitor - " in line] == [
        ["container", "running"], ["container", "stopped"]]
    err = cli("--log-level", "error", "-P", container.lxcpath, "execute", container.name, "--", "/bin/true")
    assert (err.returncode, err.stderr) == (0, "")
    # --debug: debug lines too (the child's, through the monitor).
    debug = cli("--debug", "-P", container.lxcpath, "execute", container.name, "--", "/bin/true")
    assert debug.returncode == 0
    assert _levels(debug.stderr.splitlines()) == {"DEBUG", "INFO"}
    assert any(" DEBUG    child - devpts mounted " in line for line in debug.stderr.splitlines()), debug.stderr


@pytest.mark.parametrize("args", [("--log-level", "loud"), ("--log-level", "9")])
def test_bad_log_level_is_one_error(rundir, args):
    line = one_error_line(cli(*args, "extensions"))
    assert line == f"lxcframe: error: --log-level {args[1]}: expected a level name (trace … fatal) or 0..8"


def test_log_file_that_cannot_be_opened_is_one_error(rundir, tmp_path):
    line = one_error_line(cli("--log-file", str(tmp_path), "extensions"))
    assert "Is a directory" in line and str(tmp_path) in line
