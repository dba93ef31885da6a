"""Logging: structlog in front, the container name bound per thread, one or more sinks behind.

The container a thread (or asyncio task) works on is held in a :class:`contextvars.ContextVar`, so two
threads working on two containers and sharing one log file are told apart on every line. structlog is
imported only when a logger is first asked for, never on the ``--version`` path.

Sinks: one process-wide (stderr by default, or a file), and one per container that sets
``lxc.log.file`` (with its own ``lxc.log.level``). Lines are written whole with one ``write`` on an
``O_APPEND`` descriptor so that processes sharing a file do not interleave.

A monitor that is not its caller's own process also writes to the caller's stderr while the start
is reported (:meth:`LogHub.forward_to_caller`): the caller hands over its stderr with the start
request, and the monitor lets go of it before it reports the outcome, and in every process it forks.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import json
import os
import sys
import threading
import weakref
from collections.abc import Iterator
from typing import Any

#: LXC's priorities (lxc.log.level accepts the names or 0..8), mapped to ascending severity.
LEVELS: dict[str, int] = {
    "trace": 0, "debug": 1, "info": 2, "notice": 3, "warn": 4, "warning": 4,
    "error": 5, "crit": 6, "critical": 6, "alert": 7, "fatal": 8,
}
_LEVEL_NAMES = ["TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "ERROR", "CRIT", "ALERT", "FATAL"]

current_container: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "lxcframe_container", default=None
)
#: The plugin whose hook implementation this context is running (set by :mod:`lxcframe.plugin_calls`).
current_plugin: contextvars.ContextVar[str | None] = contextvars.ContextVar("lxcframe_plugin", default=None)


def parse_level(value: str) -> int:
    """Validator for ``lxc.log.level``: a name (any case) or a number 0..8."""
    text = value.strip().lower()
    if text.isdigit() and int(text) <= 8:
        return int(text)
    if text in LEVELS:
        return LEVELS[text]
    raise ValueError("expected a level name (trace … fatal) or 0..8")


class Sink:
    """A destination for log lines with its own minimum level and format."""

    def __init__(self, fd: int, level: int, fmt: str = "console", owned: bool = False) -> None:
        self.fd = fd
        self.level = level
        self.fmt = fmt
        self.owned = owned

    @classmethod
    def open(cls, path: str, level: int, fmt: str = "console") -> Sink:
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        return cls(fd, level, fmt, owned=True)

    def write(self, event: dict[str, Any], level: int) -> None:
        if level < self.level:
            return
        line = render_json(event, level) if self.fmt == "json" else render_console(event, level)
        with contextlib.suppress(OSError):  # a full disk must not crash a container's start
            os.write(self.fd, line.encode("utf-8", "replace"))

    def close(self) -> None:
        if self.owned:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.owned = False


#: The host's syslog socket (a datagram socket, as syslog(3) writes to it).
SYSLOG_SOCKET = "/dev/log"
#: ``lxc.log.syslog``'s facilities (LXC's: daemon and local0…local7) and their numbers.
SYSLOG_FACILITIES = {"daemon": 3, **{f"local{n}": 16 + n for n in range(8)}}
#: syslog severities of lxcframe's levels (trace and debug are syslog's debug, fatal its emergency).
_SYSLOG_SEVERITY = (7, 7, 6, 5, 4, 3, 2, 1, 0)


class SyslogSink(Sink):
    """``lxc.log.syslog``: lines about the container as syslog messages of ``facility``, sent to
    :data:`SYSLOG_SOCKET` as syslog(3) sends them (``<PRI>lxcframe[PID]: line``). A host without a
    syslog daemon drops them, as syslog(3) does."""

    def __init__(self, facility: str, level: int) -> None:
        import socket

        super().__init__(-1, level)
        self.facility = SYSLOG_FACILITIES[facility]
        self.sock: socket.socket | None = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def write(self, event: dict[str, Any], level: int) -> None:
        if level < self.level or self.sock is None:
            return
        line = render_console(event, level).rstrip("\n")
        priority = self.facility * 8 + _SYSLOG_SEVERITY[min(level, len(_SYSLOG_SEVERITY) - 1)]
        with contextlib.suppress(OSError):  # no daemon, or a full queue: the container goes on
            self.sock.sendto(f"<{priority}>lxcframe[{os.getpid()}]: {line}".encode("utf-8", "replace"),
                             SYSLOG_SOCKET)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class TeeSink(Sink):
    """Several sinks of one container (its log file and syslog), as one."""

    def __init__(self, sinks: list[Sink]) -> None:
        super().__init__(-1, min(sink.level for sink in sinks))
        self.sinks = sinks

    def write(self, event: dict[str, Any], level: int) -> None:
        for sink in self.sinks:
            sink.write(event, level)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


class CallerSink(Sink):
    """The stderr of the process that asked for a start, written by the monitor running it.

    That stderr may be a pipe whose reader has gone (``lxcframe --debug start c1 2>&1 | head -1``).
    A monitor runs with SIGPIPE's default action (for its hooks' sake), which would kill it half way
    through the start: SIGPIPE is blocked around each write, so the write fails with EPIPE instead,
    and the signal it raised is taken off the pending set before it is unblocked.
    """

    def write(self, event: dict[str, Any], level: int) -> None:
        if level < self.level:
            return
        import signal

        line = render_json(event, level) if self.fmt == "json" else render_console(event, level)
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPIPE})
        try:
            with contextlib.suppress(OSError):
                os.write(self.fd, line.encode("utf-8", "replace"))
        finally:
            if signal.SIGPIPE not in previous:
                if signal.SIGPIPE in signal.sigpending():
                    signal.sigtimedwait({signal.SIGPIPE}, 0)
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _timestamp() -> str:
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y%m%d%H%M%S.") + f"{now.microsecond // 1000:03d}"


def render_console(event: dict[str, Any], level: int) -> str:
    event = dict(event)
    message = str(event.pop("event", ""))
    name = event.pop("container", None) or "-"
    logger = event.pop("logger", "lxcframe")
    extra = " ".join(f"{k}={v!r}" if isinstance(v, str) and (" " in v or "\n" in v) else f"{k}={v}"
                     for k, v in event.items())
    # One event, one line: a message with line breaks must not look like several events.
    message = message.replace("\n", "\\n")
    return f"lxcframe {name} {_timestamp()} {_LEVEL_NAMES[level]:<8} {logger} - {message}" + (
        f" {extra}\n" if extra else "\n"
    )


def render_json(event: dict[str, Any], level: int) -> str:
    record = {"timestamp": _timestamp(), "level": _LEVEL_NAMES[level].lower(), **event}
    return json.dumps(record, default=str) + "\n"


class _Router:
    """The object structlog hands finished event dicts to; sends each to the sinks that want it."""

    def __init__(self, hub: LogHub) -> None:
        self._hub = hub

    def _emit(self, level: int, event: dict[str, Any]) -> None:
        # structlog has no trace method: trace lines come through debug with their own level.
        self._hub.emit(event.pop("_level", level), event)

    def trace(self, **event: Any) -> None:
        self._emit(0, event)

    def debug(self, **event: Any) -> None:
        self._emit(1, event)

    def info(self, **event: Any) -> None:
        self._emit(2, event)

    def notice(self, **event: Any) -> None:
        self._emit(3, event)

    def warning(self, **event: Any) -> None:
        self._emit(4, event)

    warn = warning

    def error(self, **event: Any) -> None:
        self._emit(5, event)

    def critical(self, **event: Any) -> None:
        self._emit(6, event)

    exception = error
    msg = info


class LogHub:
    """Sinks of one process: the global one and one per container that asked for a file."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.global_sink = Sink(sys.stderr.fileno() if sys.stderr else 2, LEVELS["warn"])
        self.global_path: str | None = None
        self._container_sinks: dict[str, Sink] = {}
        #: The caller's stderr while a start is reported to it (:meth:`forward_to_caller`).
        self._caller_sink: CallerSink | None = None
        hub = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _forget_caller_in_child(hub))

    def configure(self, level: str | int | None = None, path: str | None = None, fmt: str | None = None) -> None:
        with self._lock:
            sink = self.global_sink
            new_level = parse_level(str(level)) if level is not None else sink.level
            new_fmt = fmt or sink.fmt
            if path:
                # Absolute: a monitor set up from settings() lives elsewhere (the supervisor's in /).
                path = os.path.abspath(path)
                self.global_sink = Sink.open(path, new_level, new_fmt)
                self.global_path = path
                sink.close()
            else:
                sink.level, sink.fmt = new_level, new_fmt

    @contextlib.contextmanager
    def container_sink(self, name: str, path: str | None, level: int | None,
                       syslog: str | None = None) -> Iterator[None]:
        """While the block runs, lines about container ``name`` also go to ``path`` and, with a
        ``syslog`` facility, to syslog (``lxc.log.file``, ``lxc.log.syslog``; both at ``level``)."""
        threshold = LEVELS["error"] if level is None else level
        sinks = ([Sink.open(path, threshold)] if path else []) + ([SyslogSink(syslog, threshold)] if syslog else [])
        if not sinks:
            yield
            return
        sink = sinks[0] if len(sinks) == 1 else TeeSink(sinks)
        with self._lock:
            previous = self._container_sinks.get(name)
            self._container_sinks[name] = sink
        try:
            yield
        finally:
            with self._lock:
                if previous is None:
                    self._container_sinks.pop(name, None)
                else:
                    self._container_sinks[name] = previous
            sink.close()

    def caller_stream(self) -> int | None:
        """A duplicate (close-on-exec, never 0-2) of the global sink's descriptor, for a monitor to
        write to while it reports a start to this process; ``None`` when the global sink is a file,
        which the monitor opens and writes itself (:meth:`settings`), or when there is no stderr."""
        if self.global_path is not None:
            return None
        import fcntl

        try:
            return fcntl.fcntl(self.global_sink.fd, fcntl.F_DUPFD_CLOEXEC, 3)
        except OSError:
            return None

    def forward_to_caller(self, fd: int, level: int | None, fmt: str | None) -> None:
        """Until :meth:`stop_forwarding`, every line at or above ``level`` also goes to ``fd`` (the
        stderr of the process that asked for this start), which is this hub's to close. A process
        forked meanwhile (the init child, a plugin's helper) closes its copy at once."""
        os.set_inheritable(fd, False)  # a helper got it through pass_fds; a hook must not inherit it
        sink = CallerSink(fd, LEVELS["warn"] if level is None else level, fmt or "console", owned=True)
        with self._lock:
            previous, self._caller_sink = self._caller_sink, sink
        if previous is not None:
            previous.close()

    def stop_forwarding(self) -> None:
        """Close the caller's stderr: nothing more of this process reaches it."""
        with self._lock:
            sink, self._caller_sink = self._caller_sink, None
        if sink is not None:
            sink.close()

    def settings(self) -> dict[str, Any]:
        """What ``configure`` was given, to set up another process the same way."""
        return {"level": self.global_sink.level, "path": self.global_path, "fmt": self.global_sink.fmt}

    def threshold(self, container: str | None) -> int:
        """The lowest level any sink would write for ``container``: below it, nothing is built."""
        level = self.global_sink.level
        caller = self._caller_sink
        if caller is not None:
            level = min(level, caller.level)
        if container is not None:
            with self._lock:
                extra = self._container_sinks.get(container)
            if extra is not None:
                level = min(level, extra.level)
        return level

    def emit(self, level: int, event: dict[str, Any]) -> None:
        name = event.get("container")
        sinks: list[Sink] = [self.global_sink]
        caller = self._caller_sink
        if caller is not None:
            sinks.append(caller)
        if name is not None:
            with self._lock:
                extra = self._container_sinks.get(name)
            if extra is not None:
                sinks.append(extra)
        for sink in sinks:
            sink.write(event, level)


def _forget_caller_in_child(hub_ref: weakref.ref[LogHub]) -> None:
    # In a child forked while a start is reported (the init child, a plugin's process): the
    # caller's stderr belongs to the monitor alone, which closes it when it reports. No lock: the
    # thread that held it at the fork does not exist in the child.
    hub = hub_ref()
    sink = hub._caller_sink if hub is not None else None
    if hub is not None and sink is not None:
        hub._caller_sink = None
        sink.close()


HUB = LogHub()


def _add_container(_logger: Any, _method: str, event: Any) -> Any:
    name = current_container.get()
    if name is not None:
        event.setdefault("container", name)
    plugin = current_plugin.get()
    if plugin is not None:
        event.setdefault("plugin", plugin)
    return event


def _as_kwargs(_logger: Any, _method: str, event: Any) -> Any:
    return (), event


_METHOD_LEVELS = {"trace": 0, "debug": 1, "info": 2, "notice": 3, "warning": 4, "warn": 4, "error": 5,
                  "critical": 6, "exception": 5, "msg": 2}


class Logger:
    """A structlog logger built on first use: a line no sink wants costs no structlog import.

    Importing structlog (it pulls in asyncio) costs ~100 ms, more than a whole ``execute``; most
    lines of a start are debug lines nobody asked for. ``bind`` keeps context as structlog does.
    """

    def __init__(self, hub: LogHub, context: dict[str, Any]) -> None:
        self._hub = hub
        self._context = context
        self._real: Any = None

    def bind(self, **values: Any) -> Logger:
        return Logger(self._hub, {**self._context, **values})

    def _structlog(self) -> Any:
        if self._real is None:
            import structlog

            self._real = structlog.wrap_logger(
                _Router(self._hub),
                processors=[_add_container, structlog.processors.format_exc_info, _as_kwargs],
            ).bind(**self._context)
        return self._real

    def __getattr__(self, method: str) -> Any:
        level = _METHOD_LEVELS.get(method)
        if level is None:
            raise AttributeError(method)

        def log(event: str, **fields: Any) -> None:
            container = fields.get("container") or self._context.get("container") or current_container.get()
            if level >= self._hub.threshold(container):
                if method == "trace":
                    self._structlog().debug(event, _level=0, **fields)
                else:
                    getattr(self._structlog(), method)(event, **fields)

        return log


def get_logger(name: str = "lxcframe", hub: LogHub | None = None) -> Logger:
    """A logger whose lines carry the container bound in the current context (structlog underneath)."""
    return Logger(hub or HUB, {"logger": name})


@contextlib.contextmanager
def bound_container(name: str) -> Iterator[None]:
    """Every line logged in this context (thread or task) names container ``name``."""
    token = current_container.set(name)
    try:
        yield
    finally:
        current_container.reset(token)
