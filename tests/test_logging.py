"""Tests of lxcframe.log: the container bound per thread/task, level parsing, per-container sinks, JSON lines.

Every test builds its own LogHub; the process-wide HUB is never reconfigured.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcframe import log
from lxcframe.log import LEVELS, LogHub, bound_container, get_logger, parse_level

LINES_PER_THREAD = 200


@pytest.fixture
def hub() -> Iterator[LogHub]:
    own = LogHub()
    global_before = log.HUB.global_sink
    yield own
    own.global_sink.close()
    assert log.HUB.global_sink is global_before, "the global HUB was reconfigured by a test"


def read_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), "a line was written without its newline"
    return text.splitlines()


def console_container(line: str) -> str:
    # "lxcframe NAME TIMESTAMP LEVEL LOGGER - MESSAGE ..."
    fields = line.split()
    assert fields[0] == "lxcframe", line
    return fields[1]


# --- two threads, one sink -------------------------------------------------------------------------------


def test_threads_sharing_one_sink_each_name_their_own_container(hub: LogHub, tmp_path: Path) -> None:
    shared = tmp_path / "shared.log"
    hub.configure(level="debug", path=str(shared))
    logger = get_logger("test", hub=hub)  # one logger object for both threads
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(container: str) -> None:
        try:
            start.wait(timeout=10)
            with bound_container(container):
                for number in range(LINES_PER_THREAD):
                    logger.info("working", worker=container, n=number)
        except BaseException as err:  # reported below; a thread's exception would otherwise be lost
            errors.append(err)

    threads = [threading.Thread(target=work, args=(name,)) for name in ("alpha", "beta")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert log.current_container.get() is None  # the test's own context was never bound

    lines = read_lines(shared)
    assert len(lines) == 2 * LINES_PER_THREAD
    seen: dict[str, list[int]] = {"alpha": [], "beta": []}
    for line in lines:
        container = console_container(line)
        assert f"worker={container}" in line, line
        assert " INFO " in line
        number = int(line.rsplit("n=", 1)[1].split()[0])
        seen[container].append(number)
    assert seen == {"alpha": list(range(LINES_PER_THREAD)), "beta": list(range(LINES_PER_THREAD))}


def test_asyncio_tasks_each_name_their_own_container(hub: LogHub, tmp_path: Path) -> None:
    path = tmp_path / "tasks.log"
    hub.configure(level="debug", path=str(path), fmt="json")
    logger = get_logger("test", hub=hub)

    async def task(container: str) -> None:
        with bound_container(container):
            for number in range(20):
                logger.info("step", worker=container, n=number)
                await asyncio.sleep(0)  # let the other task run between lines

    async def main() -> None:
        await asyncio.gather(task("one"), task("two"))

    asyncio.run(main())
    records = [json.loads(line) for line in read_lines(path)]
    assert len(records) == 40
    assert all(r["container"] == r["worker"] for r in records)
    # The tasks did interleave, so the binding really is per task.
    assert [r["container"] for r in records[:2]] == ["one", "two"]


def test_bound_container_nests_and_restores(hub: LogHub, tmp_path: Path) -> None:
    path = tmp_path / "nest.log"
    hub.configure(level="debug", path=str(path))
    logger = get_logger("test", hub=hub)
    with bound_container("outer"):
        logger.info("a")
        with bound_container("inner"):
            logger.info("b")
        logger.info("c")
    logger.info("d")
    assert [console_container(line) for line in read_lines(path)] == ["outer", "inner", "outer", "-"]


# --- levels ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("trace", 0), ("TRACE", 0), ("debug", 1), ("info", 2), ("notice", 3), ("warn", 4), ("WARNING", 4),
        ("error", 5), ("crit", 6), ("critical", 6), ("alert", 7), ("fatal", 8), ("Fatal", 8),
        ("0", 0), ("1", 1), ("4", 4), ("8", 8), (" info ", 2),
    ],
)
def test_parse_level(text: str, level: int) -> None:
    assert parse_level(text) == level


@pytest.mark.parametrize("text", ["", "9", "10", "-1", "1.5", "verbose", "debugging", "inf o", "0x1"])
def test_parse_level_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="level"):
        parse_level(text)


def test_global_sink_filters_by_level(hub: LogHub, tmp_path: Path) -> None:
    path = tmp_path / "levels.log"
    hub.configure(level="warn", path=str(path))
    logger = get_logger("test", hub=hub)
    logger.debug("hidden-debug")
    logger.info("hidden-info")
    logger.warning("shown-warning")
    logger.error("shown-error")
    lines = read_lines(path)
    assert [line.rsplit(" - ", 1)[1] for line in lines] == ["shown-warning", "shown-error"]
    assert " WARN " in lines[0]
    assert " ERROR " in lines[1]


def test_configure_rejects_a_bad_level(hub: LogHub) -> None:
    with pytest.raises(ValueError):
        hub.configure(level="loud")


# --- per-container sinks --------------------------------------------------------------------------------------


def test_container_sink_gets_only_its_container(hub: LogHub, tmp_path: Path) -> None:
    shared = tmp_path / "all.log"
    web_log = tmp_path / "web" / "web.log"  # the directory is created on open
    db_log = tmp_path / "db.log"
    hub.configure(level="debug", path=str(shared))
    logger = get_logger("test", hub=hub)
    with (
        hub.container_sink("web", str(web_log), LEVELS["debug"]),
        hub.container_sink("db", str(db_log), LEVELS["info"]),
    ):
        with bound_container("web"):
            logger.info("web-1")
            logger.debug("web-2")
        with bound_container("db"):
            logger.debug("db-hidden")  # below the db sink's level
            logger.info("db-1")
        logger.info("nobody")
        with bound_container("other"):
            logger.info("other-1")
    with bound_container("web"):
        logger.info("web-after")  # the sink is gone once its block ends

    def messages(path: Path) -> list[str]:
        return [line.rsplit(" - ", 1)[1] for line in read_lines(path)]

    assert messages(web_log) == ["web-1", "web-2"]
    assert messages(db_log) == ["db-1"]
    assert messages(shared) == ["web-1", "web-2", "db-hidden", "db-1", "nobody", "other-1", "web-after"]
    assert all(console_container(line) == "web" for line in read_lines(web_log))


def test_container_sink_default_level_is_error(hub: LogHub, tmp_path: Path) -> None:
    hub.configure(level="debug", path=str(tmp_path / "all.log"))
    path = tmp_path / "c.log"
    logger = get_logger("test", hub=hub)
    with hub.container_sink("c", str(path), None), bound_container("c"):
        logger.warning("not-enough")
        logger.error("bad")
    assert [line.rsplit(" - ", 1)[1] for line in read_lines(path)] == ["bad"]


def test_container_sink_without_path_is_a_no_op(hub: LogHub, tmp_path: Path) -> None:
    hub.configure(level="debug", path=str(tmp_path / "all.log"))
    with hub.container_sink("c", None, LEVELS["debug"]), bound_container("c"):
        get_logger("test", hub=hub).info("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.log"]


def test_nested_container_sinks_restore_the_previous_one(hub: LogHub, tmp_path: Path) -> None:
    hub.configure(level="debug", path=str(tmp_path / "all.log"))
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    logger = get_logger("test", hub=hub)
    with bound_container("c"), hub.container_sink("c", str(first), LEVELS["debug"]):
        logger.info("one")
        with hub.container_sink("c", str(second), LEVELS["debug"]):
            logger.info("two")
        logger.info("three")
    assert [line.rsplit(" - ", 1)[1] for line in read_lines(first)] == ["one", "three"]
    assert [line.rsplit(" - ", 1)[1] for line in read_lines(second)] == ["two"]


# --- JSON lines ------------------------------------------------------------------------------------------------


def test_json_lines(hub: LogHub, tmp_path: Path) -> None:
    path = tmp_path / "json.log"
    hub.configure(level="debug", path=str(path), fmt="json")
    logger = get_logger("jsontest", hub=hub)
    with bound_container("c1"):
        logger.info("hello", path=tmp_path, count=3, text='quotes " and \n newline')
        logger.warning("careful")
        logger.error("broken")
    logger.info("unbound")
    records = [json.loads(line) for line in read_lines(path)]
    assert len(records) == 4
    for record in records[:3]:
        assert record["container"] == "c1"
        assert record["logger"] == "jsontest"
        assert isinstance(record["timestamp"], str)
    assert [r["level"] for r in records] == ["info", "warn", "error", "info"]
    assert [r["event"] for r in records] == ["hello", "careful", "broken", "unbound"]
    assert records[0]["path"] == str(tmp_path)  # not JSON-serialisable: written as text
    assert records[0]["count"] == 3
    assert records[0]["text"] == 'quotes " and \n newline'
    assert "container" not in records[3]


def test_trace_lines_keep_their_level(tmp_path):
    from lxcframe.log import LogHub, get_logger

    hub = LogHub()
    hub.configure(level="trace", path=str(tmp_path / "trace.log"))
    get_logger("t", hub=hub).trace("very fine detail")
    assert " TRACE " in (tmp_path / "trace.log").read_text()


# --- a monitor writing to its caller's stderr while a start is reported ------------------------------------------


def _read_all(fd: int) -> str:
    """Everything until EOF (every write end closed)."""
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_forwarded_lines_follow_the_callers_level_and_format_until_stopped(hub: LogHub, tmp_path: Path) -> None:
    hub.configure(level="error", path=str(tmp_path / "own.log"))
    read_end, write_end = os.pipe()
    hub.forward_to_caller(write_end, LEVELS["info"], "json")
    logger = get_logger("monitor", hub=hub)
    with bound_container("c1"):
        logger.debug("below the caller's level")
        logger.info("stage done", stage="pre-start")
        hub.stop_forwarding()
        logger.error("after the report")
    # stop_forwarding closed the only write end: EOF, with exactly the lines before it.
    records = [json.loads(line) for line in _read_all(read_end).splitlines()]
    os.close(read_end)
    assert records == [{"timestamp": records[0]["timestamp"], "level": "info", "event": "stage done",
                        "container": "c1", "logger": "monitor", "stage": "pre-start"}]
    # The hub's own sink got its own level's lines, the forwarded ones not twice.
    assert [line.rsplit(" - ", 1)[1] for line in read_lines(tmp_path / "own.log")] == ["after the report"]


def test_a_process_forked_while_forwarding_holds_nothing_of_the_callers(hub: LogHub) -> None:
    read_end, write_end = os.pipe()
    hold_read, hold_write = os.pipe()
    hub.forward_to_caller(write_end, LEVELS["debug"], "console")
    pid = os.fork()
    if pid == 0:  # the init child, a plugin's process: lives on past the report
        try:
            os.close(hold_write)
            os.read(hold_read, 1)
        finally:
            os._exit(0)
    try:
        os.close(hold_read)
        hub.stop_forwarding()
        # EOF while the child still runs: it closed its copy at the fork.
        ready, _, _ = select.select([read_end], [], [], 10)
        assert ready and os.read(read_end, 1) == b"", "a forked child kept the caller's stderr"
    finally:
        os.close(hold_write)
        os.waitpid(pid, 0)
        os.close(read_end)


def test_a_caller_gone_costs_a_line_not_the_monitor(hub: LogHub) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # `lxcframe --debug start c1 2>&1 | head -1`, head gone
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # as a monitor runs (for its hooks' sake)
            hub.forward_to_caller(write_end, LEVELS["debug"], "console")
            get_logger("monitor", hub=hub).info("nobody reads this")
            unchanged = signal.pthread_sigmask(signal.SIG_BLOCK, set()) == set()
            code = 0 if unchanged and signal.SIGPIPE not in signal.sigpending() else 2
        finally:
            os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_caller_stream_is_a_duplicate_of_stderr_or_none_for_a_file(hub: LogHub, tmp_path: Path) -> None:
    fd = hub.caller_stream()
    assert fd is not None
    try:
        assert fd >= 3 and not os.get_inheritable(fd)
        assert os.fstat(fd).st_ino == os.fstat(hub.global_sink.fd).st_ino
    finally:
        os.close(fd)
    hub.configure(path=str(tmp_path / "file.log"))  # the monitor writes to the file itself
    assert hub.caller_stream() is None


def test_child_log_records_name_the_plugin_logging() -> None:
    from lxcframe.channel import Channel, ChildLog

    monitor_end, child_end = Channel.pair()
    try:
        child_log = ChildLog(child_end)
        token = log.current_plugin.set("devices")
        try:
            child_log.debug("devpts mounted", options="gid=5")
            child_log.info("hook implementation", hook="lxcframe_child_devices", plugin="caps")
        finally:
            log.current_plugin.reset(token)
        child_log.warning("outside any hook")
        received = [monitor_end.recv(timeout=5) for _ in range(3)]
    finally:
        monitor_end.close()
        child_end.close()
    assert received == [
        {"t": "log", "level": 1, "event": "devpts mounted", "logger": "child", "options": "gid=5",
         "plugin": "devices"},
        {"t": "log", "level": 2, "event": "hook implementation", "logger": "child",
         "hook": "lxcframe_child_devices", "plugin": "caps"},  # the line's own plugin stands
        {"t": "log", "level": 4, "event": "outside any hook", "logger": "child"},
    ]
