"""What every way of getting a monitor (or an attaching process) running shares: whether this process
may fork, how a detached process lets go of the caller's stdio, and the environment a fresh
interpreter of ours starts with.

A new interpreter of ours (the supervisor, a helper monitor, an attach helper) never gets the
caller's whole environment: only :data:`RUNTIME_ENV`, the variables lxcframe itself reads. What a
container gets is in its plan (``lxc.environment`` resolved by the caller), and a command attached
to a container gets its environment in the attach request.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable

#: A detached monitor's umask, as LXC's (and the supervisor's monitors'): not whatever the caller had.
MONITOR_UMASK = 0o022

#: Every variable lxcframe's own processes read, and nothing else of the caller's environment.
RUNTIME_ENV = (
    "PATH",  # host hooks, network scripts and helper programs (apparmor_parser) are found through it
    "LXCFRAME_RUNDIR",
    "LXCFRAME_ROOTFS_MOUNT",
    "LXCFRAME_HOST_CONFIG",
    "LXCFRAME_DISABLE_PLUGINS",
    "LXCFRAME_DISABLE_PLUGIN_AUTOLOAD",
    "LXCFRAME_APPARMOR_CACHE_DIR",
    "LXCFRAME_SUPERVISOR",
    "LXCFRAME_SUPERVISOR_IDLE",
    "LXCFRAME_ADOPT",
    # A non-root caller's defaults: its run directory and lxcpath (run_root.py, hostconfig.py).
    "XDG_RUNTIME_DIR",
    "XDG_DATA_HOME",
    "HOME",
    # Coverage measurement (the test suite) follows our processes through these; nothing else reads them.
    "COVERAGE_PROCESS_START",
    "COVERAGE_PROCESS_CONFIG",
    "COVERAGE_FILE",
)


def runtime_environment() -> dict[str, str]:
    """The caller's values of :data:`RUNTIME_ENV` (those it has)."""
    return {name: os.environ[name] for name in RUNTIME_ENV if name in os.environ}


def interpreter_environment(runtime: dict[str, str]) -> dict[str, str]:
    """The whole environment of a fresh interpreter of ours: ``runtime`` plus a ``PYTHONPATH`` that
    finds this very lxcframe first (a checkout as much as an installed copy), then the caller's own
    entries (where its third-party plugins may be installed)."""
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    caller_path = os.environ.get("PYTHONPATH", "")
    return {**runtime, "PYTHONPATH": os.pathsep.join(p for p in (package_parent, caller_path) if p)}


def single_threaded() -> bool:
    """True when this process has exactly one thread (Python's or any native library's)."""
    # The kernel counts a process's threads in the link count of /proc/self/task (two links more):
    # one stat. Listing the directory gives the GIL up at every entry, and in a caller whose other
    # threads are busy each time costs a switch interval or more (~0.13 s with 8 busy threads).
    try:
        return os.stat("/proc/self/task").st_nlink == 3
    except OSError:
        return False


def detach_stdio() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)


def read_descriptor(fd: int, limit: int) -> bytes:
    """Everything in ``fd`` (a pipe or a memfd passed to a helper) up to ``limit`` bytes; closes it."""
    chunks: list[bytes] = []
    size = 0
    with os.fdopen(fd, "rb") as stream:
        while chunk := stream.read(65536):
            size += len(chunk)
            if size > limit:
                raise ValueError(f"more than {limit} bytes in descriptor {fd}")
            chunks.append(chunk)
    return b"".join(chunks)


#: Every seal a memfd of ours gets once filled: no write, no growing or shrinking, no seal lifted.
SEALED = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def sealed_memfd(name: str, data: bytes) -> int:
    """A memfd holding ``data``, sealed against any change, at offset 0, to be read by a helper as
    its input. It is close-on-exec like every descriptor of ours: only the helper it is passed to
    (``subprocess``'s ``pass_fds``) gets it, no other program this process starts meanwhile."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALED)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def start_server(*, wait: bool) -> None:
    """Start the supervisor of this run directory (``python -m lxcframe.supervisor``, which detaches).

    With ``wait`` this returns once it detached (~0.1 s: its imports come first); without, at once, and
    the process that detaches stays this process's child until it exits (a command line that is about
    to end anyway does not wait for it).
    """
    import subprocess
    import sys

    # cwd "/": ``-m`` puts the working directory first on sys.path, and root's supervisor must not
    # import whatever lies in the directory its first caller happened to be in. The caller's own
    # lxcframe comes first instead, so that the supervisor runs the caller's code (a checkout as
    # much as an installed copy); the fingerprint check catches any other difference. Of the first
    # caller's environment it gets only what the runtime reads: it serves other callers too.
    process = subprocess.Popen(
        [sys.executable, "-m", "lxcframe.supervisor"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True, cwd="/", env=interpreter_environment(runtime_environment()),
    )
    if wait:
        process.wait()


def fork_worker(work: Callable[[], int]) -> int:
    """Fork a process that runs ``work`` and exits with what it returns; returns its pid.

    An exception ``work`` lets out is the worker's last word: its traceback goes to the worker's stderr
    and the exit code is 1. The worker never returns into its parent's code (``os._exit``).
    """
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = work()
        except BaseException:
            try:
                import sys
                import traceback

                traceback.print_exc()
                sys.stderr.flush()
            except BaseException:
                pass
        finally:
            os._exit(code)
    return pid
