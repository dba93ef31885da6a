"""Finding the namespace a container joins (``lxc.namespace.share.NS``), in the monitor before the fork.

The target is a pid, or a container (``NAME`` in the same lxcpath, or ``/LXCPATH/NAME``) whose init is
proven from its state file as every command proves it (:mod:`lxcframe.process_proof`). The namespace
file is opened while a pidfd of the process is held, and the pidfd is asked afterwards whether the
process still lives: if it does, the namespace is that process's, not a recycled pid's.

An absolute path that is no directory is a namespace file itself: ``/proc/PID/ns/NS``, or a namespace
kept by a bind mount (``ip netns add``, the network namespaces CNI plugins and containerd's CRI make
for a pod). It is opened as it is, and must be a namespace of the key's kind.
"""

from __future__ import annotations

import os
import stat

from lxcframe import process_proof, syscalls
from lxcframe.errors import ConfigError
from lxcframe.plugins.namespaces_config import NAMES, Share
from lxcframe.state import read_state


def _refuse(share: Share, why: str) -> ConfigError:
    return ConfigError(why, path=share.path, line=share.line, key=share.key, value=share.target)


def _target_pidfd(share: Share, lxcpath: str, own_name: str) -> tuple[int, int]:
    """``(pid, pidfd)`` of the process whose namespace is shared."""
    if share.target.isdigit():
        pid = int(share.target)
        try:
            return pid, syscalls.pidfd_open(pid)
        except ProcessLookupError:
            raise _refuse(share, f"no process {pid} is running") from None
    own_lxcpath = lxcpath
    if share.target.startswith("/"):
        lxcpath, name = os.path.split(share.target)
    else:
        name = share.target
    if name == own_name and os.path.realpath(lxcpath) == os.path.realpath(own_lxcpath):
        raise _refuse(share, "a container cannot share a namespace of its own")
    state = read_state(lxcpath, name)
    pidfd = None
    if state is not None and state.state == "RUNNING":
        pidfd = process_proof.open_init(state.init_pid, state.init_start, None, state.init_pidns)
    if state is None or pidfd is None or not state.init_pid:
        raise _refuse(share, f"container {name!r} of {lxcpath} is not running")
    return state.init_pid, pidfd


def _open_namespace_file(share: Share) -> int:
    """A descriptor of the namespace file ``share.target``, checked to be a namespace of ``share.name``."""
    try:
        opened = _namespace_at(share.target)
    except OSError as err:
        raise _refuse(share, f"cannot open {share.target}: {err.strerror}") from None
    if opened is None:
        raise _refuse(share, f"{share.target} is not a namespace file")
    fd, kind = opened
    if kind != share.flag:
        os.close(fd)
        raise _refuse(share, f"{share.target} is a {NAMES.get(kind, hex(kind))} namespace, not a {share.name} one")
    return fd


def _namespace_at(path: str) -> tuple[int, int] | None:
    """``(descriptor, CLONE_NEW* type)`` of the namespace file at ``path``; ``None`` when it is none.

    Looked at through an ``O_PATH`` descriptor first: opening a device or a fifo for reading can act on
    it (a watchdog starts counting), and a namespace file is a regular file of nsfs."""
    where = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(where).st_mode):
            return None
        fd = os.open(f"/proc/self/fd/{where}", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(where)
    try:
        return fd, syscalls.namespace_type(fd)
    except OSError:  # ENOTTY: a regular file of another filesystem
        os.close(fd)
        return None


def open_namespace(share: Share, lxcpath: str, own_name: str) -> int:
    """A descriptor of the target's ``share.name`` namespace (close-on-exec), or a :class:`ConfigError`
    naming the line."""
    if share.target.startswith("/") and os.path.exists(share.target) and not os.path.isdir(share.target):
        return _open_namespace_file(share)
    pid, pidfd = _target_pidfd(share, lxcpath, own_name)
    try:
        try:
            fd = os.open(f"/proc/{pid}/ns/{share.name}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            raise _refuse(share, f"cannot open the {share.name} namespace of process {pid}: {err.strerror}") from None
        if not process_proof.is_alive(pidfd):
            os.close(fd)
            raise _refuse(share, f"process {pid} ended while its {share.name} namespace was opened")
        return fd
    finally:
        os.close(pidfd)
