"""What the tests of the warm server under load and failure share (``tests/test_server_load.py``).

The facts these helpers read come from the kernel (``/proc``, the cgroup file systems, the server's
socket credentials), not from lxcframe's own state, so that a test can tell what the server did
independently of what lxcframe believes it did. Two installations of lxcframe are told apart by a
third-party plugin both find (:data:`MARKER_PLUGIN`): every process that runs a container's start or
prepares an attach notes which package it imported and its version, its pid and its parent's.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import attrs

from lxcframe.run_root import listening_pid, socket_path

from . import hostfacts

REPO = Path(__file__).resolve().parent.parent


# --- waiting and processes --------------------------------------------------------------------------------


def process_gone(pid: int) -> bool:
    """Whether ``pid`` has ended (gone, or a zombie its parent has not reaped yet), read from /proc only:
    no state read of lxcframe's, which would clean up after a dead monitor itself."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return data[data.rindex(b")") + 2:].split()[0] in (b"Z", b"X")


def wait_until(condition: Callable[[], object], timeout: float = 30.0, what: str = "",
               found: Callable[[], object] | None = None) -> object:
    """``condition()`` once it is true; an AssertionError naming ``what`` (and what ``found()`` says then)
    when it is not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what or condition}"
                                 + (f"; found: {found()}" if found is not None else ""))
        time.sleep(0.02)


def living(pids: Iterable[int]) -> dict[int, str]:
    """Those of ``pids`` still alive, with their command lines."""
    found = {}
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as handle:
                found[pid] = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    return found


def stat_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` after the command name (state first, then the parent's pid), or ``None``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return data[data.rindex(b")") + 2 :].decode().split()


def alive(pid: int) -> bool:
    """Whether ``pid`` names a process that has not exited (a zombie has)."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def parent_of(pid: int) -> int | None:
    fields = stat_fields(pid)
    return None if fields is None else int(fields[1])


def children(pid: int) -> set[int]:
    found: set[int] = set()
    with contextlib.suppress(FileNotFoundError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(FileNotFoundError):
                found |= {int(child) for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split()}
    return found


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children(todo.pop()) - found:
            found.add(child)
            todo.append(child)
    return found


def processes_of_run_directory(rundir: str) -> dict[int, str]:
    """Every process but this one that was started with ``LXCFRAME_RUNDIR=rundir`` (clients, servers,
    their monitors and workers, helpers), with its command line: what a test of that run directory
    left running."""
    wanted = f"LXCFRAME_RUNDIR={rundir}".encode()
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as handle:
                if wanted not in handle.read().split(b"\0"):
                    continue
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                found[int(name)] = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
    return {pid: line for pid, line in found.items() if alive(pid)}


# --- cgroups ----------------------------------------------------------------------------------------------


def cgroup_dirs(pid: int) -> list[str]:
    """The directory of every cgroup ``pid`` is in, one per hierarchy mounted here (from the kernel's
    ``/proc/PID/cgroup`` and this mount namespace's cgroup mounts, not from lxcframe's records)."""
    facts = hostfacts.cgroups()
    with open(f"/proc/{pid}/cgroup") as handle:
        lines = handle.read().splitlines()
    found = []
    for line in lines:
        _, labels, path = line.split(":", 2)
        parts = frozenset(labels.split(",")) - {""}
        # cgroup2's line names no controller; a v1 hierarchy's names the controllers its mount has.
        mount = facts.unified_mount if not parts else next((m.mountpoint for m in facts.v1 if m.parts == parts), None)
        if mount is not None:
            found.append(os.path.join(mount, path.lstrip("/")))
    return found


# --- network namespace ids ---------------------------------------------------------------------------------

_RTM_NEWNSID, _RTM_GETNSID, _NLMSG_ERROR = 88, 90, 2
_NETNSA_NSID, _NETNSA_PID = 1, 2


def netns_id_of(pid: int) -> int | None:
    """The id the host's network namespace gives the network namespace of ``pid`` (RTM_GETNSID by pid,
    as ``ip netns list-id`` lists them), or ``None`` when it has none."""
    attribute = struct.pack("=HHI", 8, _NETNSA_PID, pid)
    request = struct.pack("=IHHII", 16 + 4 + len(attribute), _RTM_GETNSID, 0x1, 1, 0) + bytes(4) + attribute
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE) as sock:
        sock.bind((0, 0))
        sock.send(request)
        data = sock.recv(65536)
    length, kind = struct.unpack_from("=IH", data)
    if kind == _NLMSG_ERROR:
        code = -struct.unpack_from("=i", data, 16)[0]
        raise OSError(code, f"RTM_GETNSID of pid {pid}: {os.strerror(code)}")
    assert kind == _RTM_NEWNSID, kind
    offset = 16 + 4
    while offset + 4 <= length:
        size, attr_type = struct.unpack_from("=HH", data, offset)
        if attr_type == _NETNSA_NSID:
            nsid = struct.unpack_from("=i", data, offset + 4)[0]
            return None if nsid < 0 else int(nsid)
        offset += (size + 3) & ~3
    return None


# --- the server -------------------------------------------------------------------------------------------


def server_up() -> bool:
    with contextlib.closing(socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)) as probe:
        try:
            probe.connect(socket_path())
        except OSError:
            return False
    return True


def server_pid() -> int:
    """The pid of the process listening on this run directory's socket (its connection's credentials)."""
    pid = listening_pid(socket_path())
    assert pid is not None, f"no server listens on {socket_path()}"
    return pid


#: Seconds a test waits for a server to leave once idle (its idle time plus the poll rounds around it).
SERVER_EXIT_TIMEOUT = 20.0


@contextlib.contextmanager
def running_server(env: dict[str, str]) -> Iterator[int]:
    """A server started as ``lxcframe.spawning.start_server`` starts one (``python -m lxcframe.supervisor``
    from ``/``, detached) with the environment ``env``; yields its pid.

    Leaving, it waits for the server to leave on its own (it does once idle); one still there after
    :data:`SERVER_EXIT_TIMEOUT` is killed through the pidfd taken when it started, and that is an error.
    """
    assert not server_up(), "a server already serves this run directory"
    subprocess.run([sys.executable, "-m", "lxcframe.supervisor"], env=env, cwd="/", check=True, timeout=60,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
    wait_until(server_up, what="the server listens")
    pid = server_pid()
    pidfd = os.pidfd_open(pid)
    try:
        yield pid
    finally:
        try:
            wait_until(lambda: not alive(pid), SERVER_EXIT_TIMEOUT, what=f"the server {pid} leaves when idle")
        except AssertionError:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            raise
        finally:
            os.close(pidfd)


@contextlib.contextmanager
def ended_processes_of(rundir: str) -> Iterator[None]:
    """After the block, every process of the run directory ends on its own (servers leave when idle);
    one still there after :data:`SERVER_EXIT_TIMEOUT` is killed by its pid, and that is an error."""
    try:
        yield
    finally:
        try:
            wait_until(lambda: not processes_of_run_directory(rundir), SERVER_EXIT_TIMEOUT,
                       "every process of the run directory ends", found=lambda: processes_of_run_directory(rundir))
        except AssertionError:
            for pid in processes_of_run_directory(rundir):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            raise


def runtime_env(pythonpath: str) -> dict[str, str]:
    """What a server gets of its first caller's environment (``spawning.runtime_environment``), with
    ``pythonpath`` finding its lxcframe first."""
    from lxcframe.spawning import RUNTIME_ENV

    return {**{name: os.environ[name] for name in RUNTIME_ENV if name in os.environ}, "PYTHONPATH": pythonpath}


# --- installations ----------------------------------------------------------------------------------------


#: A third-party plugin, the same file for every installation of a test: it notes which lxcframe ran a
#: container's start (in the monitor) or prepared an attach (in the attaching process), as JSON lines.
MARKER_PLUGIN = '''
"""Notes which installation of lxcframe runs a start's pre-start stage or prepares an attach."""
import json
import os

import lxcframe
from lxcframe.hooks import hookimpl
from lxcframe.version import __version__

NOTES = {notes!r}


def _note(hook, name):
    record = {{"hook": hook, "name": name, "pid": os.getpid(), "ppid": os.getppid(),
              "package": os.path.dirname(os.path.realpath(lxcframe.__file__)), "version": __version__}}
    fd = os.open(NOTES, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, (json.dumps(record) + "\\n").encode())
    finally:
        os.close(fd)


@hookimpl
def lxcframe_pre_start(ctx):
    _note("pre_start", ctx.name)


@hookimpl
def lxcframe_attach(ctx):
    _note("attach", ctx.state.name)
'''


@attrs.frozen
class Note:
    """One line of the marker plugin: which process ran ``hook`` for container ``name``, with which code."""

    hook: str
    name: str
    pid: int
    ppid: int
    package: str
    version: str


def install_marker_plugin(site: Path, notes: Path) -> None:
    """The marker plugin as an installed distribution in ``site`` (a directory put on ``PYTHONPATH``)."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "lxcframe_installation_marker.py").write_text(MARKER_PLUGIN.format(notes=str(notes)))
    info = site / "lxcframe_installation_marker-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lxcframe-installation-marker\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[lxcframe.plugins]\ninstallation-marker = lxcframe_installation_marker\n")


def read_notes(notes: Path) -> list[Note]:
    if not notes.exists():
        return []
    return [Note(**json.loads(line)) for line in notes.read_text().splitlines()]


@attrs.frozen
class Installation:
    """An installation of lxcframe: the directory holding its ``lxcframe`` package, its version, and the
    environment of its command line (``PYTHONPATH`` finds that package first, then ``site``)."""

    label: str
    root: Path
    version: str
    env: dict[str, str] = attrs.field(hash=False)

    @property
    def package(self) -> str:
        return os.path.realpath(self.root / "lxcframe")

    @property
    def server_env(self) -> dict[str, str]:
        return runtime_env(self.env["PYTHONPATH"])

    def cli(self, *args: str, cwd: Path, timeout: float = 120) -> tuple[int, subprocess.CompletedProcess[str]]:
        """Run ``python -m lxcframe ARGS`` of this installation; its pid and what it did.

        ``cwd`` must hold no ``lxcframe`` package: ``-m`` puts the working directory first on the path.
        """
        process = subprocess.Popen([sys.executable, "-m", "lxcframe", *args], env=self.env, cwd=cwd,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        return process.pid, subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def copy_of_the_checkout(destination: Path, version: str) -> Path:
    """This checkout's ``lxcframe`` package copied below ``destination``, its ``version.py`` saying
    ``version``: another installation of the same code (another place, another version, so another
    fingerprint). Returns ``destination``."""
    shutil.copytree(REPO / "lxcframe", destination / "lxcframe", ignore=shutil.ignore_patterns("__pycache__"))
    (destination / "lxcframe" / "version.py").write_text(textwrap.dedent(f'''\
        """A copy of lxcframe made by a test, told apart by its version."""

        __version__ = {version!r}
        '''))
    return destination


def client_env(root: Path, site: Path | None, idle: float) -> dict[str, str]:
    """The environment of a thin client (``LXCFRAME_SERVER=1``) of the lxcframe in ``root``."""
    path = [str(root)] + ([str(site)] if site is not None else [])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LXCFRAME_SUPERVISOR")}
    env.update(LXCFRAME_SERVER="1", LXCFRAME_SUPERVISOR_IDLE=str(idle), PYTHONPATH=os.pathsep.join(path))
    return env


def installation_of(env: dict[str, str], cwd: Path) -> list[object]:
    """``lxcframe.installation.installation()`` as a client with ``env`` computes it: what the server
    compares a command's request with."""
    done = subprocess.run([sys.executable, "-c", "import json; from lxcframe.installation import installation; "
                           "print(json.dumps(installation()))"], env=env, cwd=cwd, capture_output=True, text=True,
                          check=True, timeout=60)
    return list(json.loads(done.stdout))
