"""Runtime state of containers: where it lives, how it is read, and the locks that serialise commands.

Per container, under ``/run/lxcframe/<lxcpath key>/<name>/``:

* ``lock`` – ``flock``ed by every command that changes the container (create, start, stop, destroy).
* ``monitor.lock`` – held by the monitor for as long as it lives: if it can be taken, the monitor died.
* ``state.json`` – written atomically by the monitor: state, pids, and what plugins recorded (cgroup
  paths, devices…) so that another process can act on the container or clean up after a dead monitor.
* ``parts.json`` – written once by the monitor: the parts of the plan the container started with
  (``lxcframe_plan``), which ``attach`` applies instead of planning the config again.
* ``config.json`` – written once by the monitor: the config the container started with, for
  ``get_running_config_item`` (see :mod:`lxcframe.started_config`).

Every directory here is created ``0700`` and every file ``0600`` by explicit ``chmod``/mode, never
through the umask: a start under ``umask 000`` must not leave a state file anyone can rewrite (root
acts on the pids it names). A state file that someone else could have written is refused.

Besides, a monitor holds ``/run/lxcframe/locks/<key>`` for its life, keyed by the real path of the
lxcpath and the name, whatever the run directory: two run directories never run one container twice.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

import attrs

from lxcframe.errors import ContainerError
from lxcframe.frozen import frozen_mapping
from lxcframe.hashing import sha256
from lxcframe.run_root import DEFAULT_RUN_ROOT as DEFAULT_RUN_ROOT
from lxcframe.run_root import RUN_ROOT_ENV as RUN_ROOT_ENV
from lxcframe.run_root import run_root, user_runtime_dir

T = TypeVar("T")

STOPPED, STARTING, RUNNING, STOPPING, FROZEN = "STOPPED", "STARTING", "RUNNING", "STOPPING", "FROZEN"
STATES = (STOPPED, STARTING, RUNNING, STOPPING, FROZEN)


def make_private_dirs(path: str) -> None:
    """Create ``path`` and its missing parents ``0700``, whatever the umask.

    ``os.makedirs`` gives the parents it creates ``0777 & ~umask``: under ``umask 000`` the run
    root would be world-writable, and anyone could plant a state file or a socket in it.
    """
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return
    except FileNotFoundError:
        parent = os.path.dirname(path)
        if parent == path:
            raise
        make_private_dirs(parent)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            return
    os.chmod(path, 0o700)  # mkdir's mode went through the umask (0o777 would leave 0o000 here)


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
    key = sha256(os.path.abspath(lxcpath).encode()).hexdigest()[:16]
    return os.path.join(run_root(), key, name)


def process_start_time(pid: int) -> int | None:
    """Start time of a live ``pid`` in clock ticks, to tell it from a recycled pid; ``None`` if gone."""
    from lxcframe.process_proof import start_time

    return start_time(pid)


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
    #: Inode of init's pid namespace, read when the state was written: a proof that a live pid is
    #: still that init (see :mod:`lxcframe.process_proof`).
    init_pidns: int | None = None
    #: Per-plugin typed records, encoded (see :mod:`lxcframe.records`), e.g. the cgroups a start
    #: created; read with :meth:`record`.
    records: Mapping[str, Any] = attrs.field(factory=dict, converter=frozen_mapping)
    #: The monitor is the server that adopted the container (see :mod:`lxcframe.adoption`): it never
    #: exits with the container, and init is proven by its namespaces alone (a server started after the
    #: one that was init's parent adopts it again).
    adopted: bool = False

    @property
    def runtime_dir(self) -> str:
        return runtime_dir(self.lxcpath, self.name)

    def record(self, cls: type[T]) -> T | None:
        """The record of class ``cls`` a plugin saved, or ``None``; a malformed one is an error."""
        from lxcframe.transfer import TransferError, decode_by_class

        try:
            return decode_by_class(self.records, cls)
        except TransferError as err:
            raise ContainerError(f"{self.name}: malformed {cls.__qualname__} record in the state file: {err}") from None

    def to_json(self) -> dict[str, Any]:
        data = attrs.asdict(self, recurse=False)
        data["records"] = dict(self.records)
        return data


def _state_path(lxcpath: str, name: str) -> str:
    return os.path.join(runtime_dir(lxcpath, name), "state.json")


def write_state(state: ContainerState) -> None:
    if state.init_pid and state.init_pidns is None:
        from lxcframe.process_proof import pidns_inode

        state = attrs.evolve(state, init_pidns=pidns_inode(state.init_pid))
    write_private_file(state.runtime_dir, "state.json", json.dumps(state.to_json()).encode())


#: The parts of the plan a running container started with, next to its state (see :mod:`lxcframe.started_parts`).
PARTS_FILE = "parts.json"
#: The config a running container started with (see :mod:`lxcframe.started_config`).
STARTED_CONFIG_FILE = "config.json"
#: The start request of a container a server adopted, as the server received it (see :mod:`lxcframe.adopted`).
START_FILE = "start.json"


def write_private_file(directory: str, leaf: str, data: bytes) -> None:
    """``data`` as ``directory/leaf``, ``0600`` whatever the umask, replaced atomically: a reader sees
    the old file or the new one, never half of it."""
    make_private_dirs(directory)
    tmp = os.path.join(directory, f".{leaf}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    with open(fd, "wb") as handle:
        os.fchmod(fd, 0o600)  # a leftover of the same name may have had another mode
        handle.write(data)
    os.replace(tmp, os.path.join(directory, leaf))


def read_private_file(path: str, name: str, what: str) -> bytes | None:
    """The bytes of ``path`` (``what`` of container ``name``), or ``None`` when there is none.

    The file must be owned by root or by us and writable by nobody else: root acts on what it says.
    """
    try:
        with open(path, "rb", opener=_open_nofollow) as handle:
            info = os.fstat(handle.fileno())
            data = handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:
        raise ContainerError(f"{name}: unreadable {what} {path}: {err}") from None
    if info.st_uid not in (0, os.geteuid()) or info.st_mode & 0o022:
        raise ContainerError(f"{name}: {what} {path} could have been written by another user "
                             f"(owner uid {info.st_uid}, mode {info.st_mode & 0o7777:o}): not trusting it")
    return data


def remove_runtime(lxcpath: str, name: str, *, unless_locked: bool = False) -> None:
    """Remove the container's runtime files and, once empty, its directory.

    With ``unless_locked`` the command lock file stays when someone holds it: the holder (a stop
    waiting for this monitor) removes it when it is done.
    """
    _release_key_lock(lxcpath, name)
    directory = runtime_dir(lxcpath, name)
    for leaf in ("state.json", PARTS_FILE, STARTED_CONFIG_FILE, START_FILE, "monitor.lock"):
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
    return _held(os.path.join(runtime_dir(lxcpath, name), "monitor.lock"))


def _held(path: str, flags: int = 0) -> bool:
    """True while some process holds an exclusive flock on ``path``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | flags)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


_STATE_FIELDS = {field.name: field for field in attrs.fields(ContainerState)}
_PID_FIELDS = ("monitor_pid", "monitor_start", "init_pid", "init_start", "init_pidns")


def read_state(lxcpath: str, name: str) -> ContainerState | None:
    """The recorded state, or ``None`` when there is none. Does not check that the monitor lives.

    The file must be owned by root or by us and writable by nobody else (else anyone could make
    root act on pids of their choosing), and well-formed: anything else is a clear error.
    """
    path = _state_path(lxcpath, name)
    raw = read_private_file(path, name, "state file")
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError as err:
        raise ContainerError(f"{name}: unreadable state file {path}: {err}") from None
    return _state_from(data, name, path)


def _open_nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)


def _state_from(data: Any, name: str, path: str) -> ContainerState:
    def bad(why: str) -> ContainerError:
        return ContainerError(f"{name}: malformed state file {path}: {why}")

    if not isinstance(data, dict):
        raise bad("not a JSON object")
    if "plugins" in data:
        raise bad("written by an earlier lxcframe (untyped 'plugins' records): stop its container with "
                  "that version, or remove the file once its processes are gone")
    unknown = sorted(set(data) - set(_STATE_FIELDS))
    if unknown:
        raise bad(f"unknown key {unknown[0]!r}")
    for key in _PID_FIELDS:
        value = data.get(key)
        if value is not None and (type(value) is not int or value <= 0):
            raise bad(f"{key} must be a positive integer, not {value!r}")
    if type(data.get("adopted", False)) is not bool:
        raise bad(f"adopted must be true or false, not {data.get('adopted')!r}")
    if data.get("state") not in STATES:
        raise bad(f"state must be one of {', '.join(STATES)}, not {data.get('state')!r}")
    if data.get("name") != name:
        raise bad(f"it names container {data.get('name')!r}")
    records = data.get("records", {})
    if not isinstance(records, dict) or not all(isinstance(value, dict) for value in records.values()):
        raise bad("records must be a JSON object of objects")
    try:
        return ContainerState(**data)
    except (TypeError, ValueError) as err:
        raise bad(str(err)) from None


def hold_monitor_lock(lxcpath: str, name: str) -> int:
    """Taken by the monitor for its lifetime; returns the descriptor (closed when the monitor exits).

    The monitor also takes the container's key lock (see :func:`key_lock_path`), released by
    :func:`remove_runtime`: a monitor of the same container from another run directory refuses.
    """
    directory = runtime_dir(lxcpath, name)
    make_private_dirs(directory)
    fd = os.open(os.path.join(directory, "monitor.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        key = _take_key_lock(lxcpath, name)
    except BaseException:
        os.close(fd)
        raise
    if key is not None:
        _KEY_LOCKS[(os.path.abspath(lxcpath), name)] = key
    return fd


#: Key locks held by monitors of this process, released by :func:`remove_runtime`.
_KEY_LOCKS: dict[tuple[str, str], int] = {}
KEY_LOCK_DIR = "/run/lxcframe/locks"


def key_lock_path(lxcpath: str, name: str) -> str | None:
    """The lock naming (real path of ``lxcpath``, ``name``) in one fixed directory, whatever
    ``LXCFRAME_RUNDIR`` says: the run directory is per caller, the container is not.

    Root's is under ``/run/lxcframe/locks``; another user's under its own runtime directory (it can
    only start its own containers).
    """
    base = KEY_LOCK_DIR if os.geteuid() == 0 else os.path.join(user_runtime_dir(), "locks")
    key = sha256(f"{os.path.realpath(lxcpath)}\0{name}".encode()).hexdigest()[:32]
    return os.path.join(base, key)


def _take_key_lock(lxcpath: str, name: str) -> int | None:
    path = key_lock_path(lxcpath, name)
    if path is None:
        return None
    return _lock_file(path, f"{name}: already running (its monitor uses another run directory than {run_root()})",
                      flags=os.O_NOFOLLOW)


def running_elsewhere(lxcpath: str, name: str) -> bool:
    """True while some monitor (of any run directory) holds the container's key lock."""
    path = key_lock_path(lxcpath, name)
    return path is not None and _held(path, os.O_NOFOLLOW)


def key_lock_fd(lxcpath: str, name: str) -> int | None:
    """The key lock this process's monitor holds for the container, if any."""
    return _KEY_LOCKS.get((os.path.abspath(lxcpath), name))


def adopt_key_lock(lxcpath: str, name: str, fd: int) -> None:
    """Hold ``fd`` as the container's key lock, released by :func:`remove_runtime` here."""
    _KEY_LOCKS[(os.path.abspath(lxcpath), name)] = fd


def forget_key_lock(lxcpath: str, name: str) -> None:
    """Close this process's descriptor of the key lock, which another process holds on to."""
    fd = _KEY_LOCKS.pop((os.path.abspath(lxcpath), name), None)
    if fd is not None:
        os.close(fd)


def _release_key_lock(lxcpath: str, name: str) -> None:
    fd = _KEY_LOCKS.pop((os.path.abspath(lxcpath), name), None)
    if fd is None:
        return
    os.close(fd)
    path = key_lock_path(lxcpath, name)
    if path is not None:
        _remove_lock_file(path, only_if_free=True)


def acquire_command_lock(lxcpath: str, name: str, timeout: float = 30.0) -> int:
    """Take the container's command lock; returns the descriptor whose closing releases it.

    The lock file may be unlinked by its holder (a stop removes the runtime directory), so after
    taking the lock we check that the file we locked is still the one at the path, else try again.
    """
    path = os.path.join(runtime_dir(lxcpath, name), "lock")
    return _lock_file(path, f"{name}: busy: another command holds its lock", timeout=timeout)


def _lock_file(path: str, busy: str, *, timeout: float = 0.0, flags: int = 0) -> int:
    """An exclusive flock on the file at ``path`` (made ``0600``, its directory ``0700``).

    Tries for ``timeout`` seconds, then raises :class:`ContainerError` with ``busy``. The holder may
    unlink the file, so after taking the lock the file locked must still be the one at the path,
    else it starts over.
    """
    deadline = time.monotonic() + timeout
    while True:
        make_private_dirs(os.path.dirname(path))
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | flags, 0o600)
        except FileNotFoundError:  # the directory vanished between making it and the open
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                raise ContainerError(busy) from None
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
