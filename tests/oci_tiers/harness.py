"""Driving one OCI runtime binary as runc's callers do, and recording what it answered.

:class:`Oci` runs a runtime with a private ``--root`` and a JSON ``--log``; ``create`` and ``exec`` run
under :mod:`tests.oci_tiers.reaper` (a subreaper, as conmon is), so that the container's init and
exec'd processes are reaped there and their exit statuses read back. :class:`Transcript` holds one
scenario's answers as (label, text) pairs, so that two runtimes' runs compare entry by entry.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs

from lxcframe.oci.layout import RUN_DIR
from lxcframe.testing import wait_for_supervisor_exit

from .runtimes import REPOSITORY

STEP_TIMEOUT = 30.0
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


@attrs.frozen
class Answer:
    rc: int
    stdout: str
    stderr: str
    log: str  # what the call wrote to its --log file

    def says(self, text: str) -> bool:
        """Whether the error ``text`` reached the caller: on stderr or in an error line of the log."""
        return text in self.stderr.lower() or any(text in str(line.get("msg", "")).lower() for line in self.errors())

    def errors(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log.splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("level") == "error":
                    found.append(entry)
        return found


class Launched:
    """A ``create`` or ``exec`` running under the reaper: its stdin, output files and exit report."""

    def __init__(self, proc: subprocess.Popen[bytes], base: Path) -> None:
        self.proc = proc
        self.report, self.stdout, self.stderr, self.log = (Path(f"{base}.{name}") for name in
                                                           ("report", "stdout", "stderr", "log.json"))

    def entries(self) -> list[dict[str, Any]]:
        if not self.report.exists():
            return []
        return [json.loads(line) for line in self.report.read_text().splitlines() if line.endswith("}")]

    def _wait_for(self, match: Any, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while True:
            found = [entry for entry in self.entries() if match(entry)]
            if found:
                return found[0]
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)

    def command_rc(self, timeout: float = STEP_TIMEOUT) -> int:
        """The runtime command's exit status (``create`` or ``exec``); -1 when it did not end in time."""
        entry = self._wait_for(lambda e: e["command"] == 1, timeout)
        if entry is None:
            return -1
        return entry["status"] if entry["status"] is not None else -entry["signal"]

    def exit_of(self, pid: int, timeout: float = STEP_TIMEOUT) -> str:
        """How the process ``pid`` ended, as ``exit N`` or ``signal N``; ``running`` if not in time."""
        entry = self._wait_for(lambda e: e["pid"] == pid, timeout)
        if entry is None:
            return "running"
        return f"exit {entry['status']}" if entry["status"] is not None else f"signal {entry['signal']}"

    def send(self, text: str) -> bool:
        """Write ``text`` to the container's stdin; False if nothing reads it any more."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(text.encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            return False
        return True

    def output(self) -> str:
        return self.stdout.read_text(errors="replace")

    def answer(self, timeout: float = STEP_TIMEOUT) -> Answer:
        """The runtime command's answer (its stdout is the container's too)."""
        rc = self.command_rc(timeout)
        log = self.log.read_text(errors="replace") if self.log.exists() else ""
        return Answer(rc, self.output(), self.stderr.read_text(errors="replace"), log)

    def wait_output(self, text: str, timeout: float = STEP_TIMEOUT) -> bool:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def finish(self, timeout: float = 10.0) -> None:
        """Close stdin and wait for the reaper (it leaves with its last child); SIGKILL it after ``timeout``."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


class ConsoleSocket:
    """A ``--console-socket``: the runtime connects and sends the pty master (SCM_RIGHTS), as to conmon."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(1)
        self.master: int | None = None

    def receive(self, timeout: float = STEP_TIMEOUT) -> bool:
        """Accept the runtime's connection and take the fd it sent; whether it was a terminal."""
        self.sock.settimeout(timeout)
        try:
            conn, _ = self.sock.accept()
        except TimeoutError:
            return False
        with conn:
            conn.settimeout(timeout)
            _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 4)
        for extra in fds[1:]:
            os.close(extra)
        if not fds:
            return False
        self.master = fds[0]
        return os.isatty(self.master)

    def read_until(self, text: str, timeout: float = STEP_TIMEOUT) -> str:
        """What the container wrote to its terminal, until ``text`` appeared, the terminal closed or ``timeout``."""
        got = b""
        deadline = time.monotonic() + timeout
        while self.master is not None and text.encode() not in got and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: the last slave side closed
                break
            if not chunk:
                break
            got += chunk
        return got.decode(errors="replace")

    def close(self) -> None:
        if self.master is not None:
            os.close(self.master)
            self.master = None
        self.sock.close()
        self.path.unlink(missing_ok=True)


class Oci:
    """One runtime binary with a private ``--root`` below ``work``; remembers the ids it created."""

    def __init__(self, binary: str, work: Path) -> None:
        self.binary = binary
        self.work = work
        self.root = work / "root"
        self.work.mkdir(parents=True, exist_ok=True)
        self.ids: list[str] = []
        #: lxcframe-oci's server of this root (create starts it) leaves a second after the last command.
        self.env = {**os.environ, "LXCFRAME_SUPERVISOR_IDLE": "1"}
        self.launched: list[Launched] = []
        self.consoles: list[ConsoleSocket] = []
        self._calls = 0

    def _next(self, what: str) -> Path:
        self._calls += 1
        return self.work / f"{self._calls:03d}-{what}"

    def argv(self, log: Path, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.root), "--log", str(log), "--log-format", "json", *args]

    def call(self, *args: str, timeout: float = STEP_TIMEOUT) -> Answer:
        log = self._next("log.json")
        try:
            done = subprocess.run(self.argv(log, *args), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  env=self.env, timeout=timeout, check=False)
            rc, stdout, stderr = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired as err:
            rc, stdout, stderr = -1, str(err.stdout or ""), f"timed out after {timeout}s"
        return Answer(rc, stdout, stderr, log.read_text(errors="replace") if log.exists() else "")

    def _launch(self, what: str, args: list[str]) -> Launched:
        base = self._next(what)
        env = {**self.env, "PYTHONPATH": str(REPOSITORY)}
        with open(f"{base}.stdout", "wb") as out, open(f"{base}.stderr", "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "tests.oci_tiers.reaper", f"{base}.report", "--",
                                     *self.argv(Path(f"{base}.log.json"), *args)],
                                    stdin=subprocess.PIPE, stdout=out, stderr=err, env=env, cwd=str(REPOSITORY))
        launched = Launched(proc, base)
        self.launched.append(launched)
        return launched

    def create(self, cid: str, bundle: Path, console: ConsoleSocket | None = None) -> tuple[Launched, Path]:
        """``create --bundle B --pid-file F [--console-socket S] ID`` under the reaper; returns it and the pid file."""
        pid_file = self._next("init.pid")
        self.ids.append(cid)
        extra = ["--console-socket", str(console.path)] if console else []
        return self._launch("create", ["create", "--bundle", str(bundle), "--pid-file", str(pid_file), *extra,
                                       cid]), pid_file

    def exec(self, cid: str, process: dict[str, Any], console: ConsoleSocket | None = None) -> tuple[Launched, Path]:
        """``exec --process P --detach --pid-file F [--tty --console-socket S] ID`` under the reaper, as podman
        calls it."""
        process_file, pid_file = self._next("process.json"), self._next("exec.pid")
        process_file.write_text(json.dumps(process))
        extra = ["--tty", "--console-socket", str(console.path)] if console else []
        return self._launch("exec", ["exec", "--process", str(process_file), "--detach", "--pid-file",
                                     str(pid_file), *extra, cid]), pid_file

    def console_socket(self) -> ConsoleSocket:
        console = ConsoleSocket(self._next("c.sock"))
        self.consoles.append(console)
        return console

    def state(self, cid: str) -> tuple[Answer, dict[str, Any] | None]:
        answer = self.call("state", cid)
        try:
            return answer, json.loads(answer.stdout) if answer.rc == 0 else None
        except ValueError:
            return answer, None

    def cleanup(self) -> None:
        """``delete --force`` every id created, then wait for (or kill) each reaper."""
        for cid in self.ids:
            self.call("delete", "--force", cid)
        for launched in self.launched:
            launched.finish()
        for console in self.consoles:
            console.close()
        wait_for_supervisor_exit(self.root / RUN_DIR)


def read_pid(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def is_rfc3339(text: Any) -> bool:
    return isinstance(text, str) and RFC3339.fullmatch(text) is not None


def state_summary(answer: Answer, state: dict[str, Any] | None, cid: str, bundle: Path, init_pid: int,
                  annotations: dict[str, str]) -> str:
    """``state``'s answer in the terms the two runtimes must agree on (pids compared with the init's)."""
    if state is None:
        return f"rc={answer.rc} no-such-container={answer.says('does not exist')}"
    pid = state.get("pid")
    pid_text = "0" if pid == 0 else ("init" if pid == init_pid and pid else f"other:{pid}")
    checks = {
        "id": state.get("id") == cid,
        "bundle": state.get("bundle") == str(bundle),
        "annotations": (state.get("annotations") or {}) == annotations,
        "ociVersion": bool(state.get("ociVersion")),
        "created": is_rfc3339(state.get("created")),
    }
    wrong = sorted(key for key, ok in checks.items() if not ok)
    return f"rc={answer.rc} status={state.get('status')} pid={pid_text} wrong={','.join(wrong) or '-'}"


class Transcript:
    """What one runtime answered in a scenario, step by step."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str]] = []
        self.notes: list[str] = []

    def add(self, label: str, value: object) -> None:
        self.entries.append((label, str(value)))

    def note(self, text: str) -> None:
        self.notes.append(text)


def assert_transcript(got: Transcript, want: list[tuple[str, str]], who: str) -> None:
    """Entry by entry, so that a failure names the step that differs."""
    labels = [label for label, _ in want]
    assert [label for label, _ in got.entries] == labels, f"{who} recorded other steps: {got.entries}"
    differing = [f"{label}: want {w!r}, {who} gave {g!r}"
                 for (label, w), (_, g) in zip(want, got.entries, strict=True) if w != g]
    assert not differing, "\n".join(differing) + "\n" + "\n".join(got.notes)
