"""Runtime state of containers: where it lives, how it is read, and the locks that serialise commands.

Per container, under ``/run/lxcframe/<lxcpath key>/<name>/``:

* ``lock`` – ``flock``ed by every command that changes the container (create, start, stop, destroy).
* ``monitor.lock`` – held by the monitor for as long as it lives: if it can be taken, the monitor died.
* ``state.json`` – written atomically by the monitor: state, pids, and what plugins recorded (cgroup
  paths, devices…) so that another process can act on the container or clean up after a dead monitor.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from lxcframe.errors import ContainerError
from lxcframe.frozen import frozen_mapping

RUN_ROOT_ENV = "LXCFRAME_RUNDIR"
DEFAULT_RUN_ROOT = "/run/lxcframe"

STOPPED, STARTING, RUNNING, STOPPING, FROZEN = "STOPPED", "STARTING", "RUNNING", "STOPPING", "FROZEN"
STATES = (STOPPED, STARTING, RUNNING, STOPPING, FROZEN)


def run_root() -> str:
    return os.environ.get(RUN_ROOT_ENV) or DEFAULT_RUN_ROOT


ROOTFS_MOUNT_ENV = "LXCFRAME_ROOTFS_MOUNT"
DEFAULT_ROOTFS_MOUNT = "/run/lxcframe.rootfs"


def rootfs_mountpoint() -> str:
    """The directory every container mounts its rootfs on, inside its own mount namespace.

    Like LXC's ``…/lib/lxc/rootfs``: one fixed, world-traversable place, so that a container's root
    in a user namespace (and its hooks, through ``LXC_ROOTFS_MOUNT``) can reach it, whatever the
    permissions of the directories above the rootfs itself. Nothing is ever mounted on it on the host.
    """
    path = os.environ.get(ROOTFS_MOUNT_ENV) or DEFAULT_ROOTFS_MOUNT
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        pass
    return path


def runtime_dir(lxcpath: str, name: str) -> str:
    key = hashlib.sha256(os.path.abspath(lxcpath).encode()).hexdigest()[:16]
    return os.path.join(run_root(), key, name)


def process_start_time(pid: int) -> int | None:
    """Start time of a live ``pid`` in clock ticks, to tell it from a recycled pid; ``None`` if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None  # exited, only not yet reaped
    return int(fields[19])



@attrs.frozen
class ContainerState:
    """What a process outside the monitor knows of a container."""

    name: str
    lxcpath: str
    state: str
    monitor_pid: int | None = None
    monitor_start: int | None = None
    init_pid: int | None = None
    init_start: int | None = None
    started_at: float | None = None
    mode: str = "daemon"
    #: Per-plugin records (plugin name -> JSON-able data), e.g. the cgroup paths it created.
    plugins: Mapping[str, Any] = attrs.field(factory=dict, converter=frozen_mapping)

    @property
    def runtime_dir(self) -> str:
        return runtime_dir(self.lxcpath, self.name)

    def to_json(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["plugins"] = dict(self.plugins)
        return data


def _state_path(lxcpath: str, name: str) -> str:
    return os.path.join(runtime_dir(lxcpath, name), "state.json")


def write_state(state: ContainerState) -> None:
    directory = state.runtime_dir
    os.makedirs(directory, mode=0o700, exist_ok=True)
    tmp = os.path.join(directory, f".state.{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(state.to_json(), handle)
    os.replace(tmp, os.path.join(directory, "state.json"))


def remove_runtime(lxcpath: str, name: str, *, unless_locked: bool = False) -> None:
    """Remove the container's runtime files and, once empty, its directory.

    With ``unless_locked`` the command lock file stays when someone holds it: the holder (a stop
    waiting for this monitor) removes it when it is done.
    """
    directory = runtime_dir(lxcpath, name)
    for leaf in ("state.json", "monitor.lock"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(directory, leaf))
    _remove_lock_file(os.path.join(directory, "lock"), only_if_free=unless_locked)
    for path in (directory, os.path.dirname(directory)):
        try:
            os.rmdir(path)
        except OSError as err:
            if err.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST):
                raise
            break


def _remove_lock_file(path: str, *, only_if_free: bool) -> None:
    if not only_if_free:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.unlink(path)
    except (BlockingIOError, FileNotFoundError):
        pass
    finally:
        os.close(fd)


def monitor_alive(lxcpath: str, name: str) -> bool:
    """True while a monitor holds ``monitor.lock``."""
    path = os.path.join(runtime_dir(lxcpath, name), "monitor.lock")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def read_state(lxcpath: str, name: str) -> ContainerState | None:
    """The recorded state, or ``None`` when there is none. Does not check that the monitor lives."""
    try:
        with open(_state_path(lxcpath, name), encoding="utf-8") as handle:
            data = json.load(handle)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as err:
        raise ContainerError(f"{name}: unreadable state file: {err}") from None
    return ContainerState(**data)


def hold_monitor_lock(lxcpath: str, name: str) -> int:
    """Taken by the monitor for its lifetime; returns the descriptor (closed when the monitor exits)."""
    directory = runtime_dir(lxcpath, name)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(directory, "monitor.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def acquire_command_lock(lxcpath: str, name: str, timeout: float = 30.0) -> int:
    """Take the container's command lock; returns the descriptor whose closing releases it.

    The lock file may be unlinked by its holder (a stop removes the runtime directory), so after
    taking the lock we check that the file we locked is still the one at the path, else try again.
    """
    path = os.path.join(runtime_dir(lxcpath, name), "lock")
    deadline = time.monotonic() + timeout
    while True:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:  # the directory vanished between makedirs and open
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() > deadline:
                raise ContainerError(f"{name}: busy: another command holds its lock") from None
            time.sleep(0.005)
            continue
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


@contextlib.contextmanager
def command_lock(lxcpath: str, name: str, timeout: float = 30.0) -> Iterator[int]:
    """Serialise commands on one container across threads and processes."""
    fd = acquire_command_lock(lxcpath, name, timeout)
    try:
        yield fd
    finally:
        release_command_lock(lxcpath, name, fd)


def release_command_lock(lxcpath: str, name: str, fd: int) -> None:
    """Release the lock; with no container state left, its runtime directory goes too."""
    try:
        directory = runtime_dir(lxcpath, name)
        if not os.path.exists(os.path.join(directory, "state.json")) and not monitor_alive(lxcpath, name):
            remove_runtime(lxcpath, name)
    finally:
        os.close(fd)
