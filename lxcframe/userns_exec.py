"""Run a function as a container's root, in a user namespace of its own: LXC's ``lxc-usernsexec``.

A non-root user cannot give files to its subordinate ids, nor remove the files they own; the root
of a user namespace mapped onto those ids can. The function runs in a forked child that unshares
a user namespace, whose maps ``newuidmap``/``newgidmap`` write: the container's ``lxc.idmap`` and,
above its ranges, the caller's own uid and gid, so the caller's directories stay reachable. What
the function returns (or the error it raised) comes back pickled over a pipe from that child, a
process of this same program.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from lxcframe import subid, syscalls
from lxcframe.idmap import IdMapEntry

T = TypeVar("T")


def with_caller(entries: Sequence[IdMapEntry]) -> list[IdMapEntry]:
    """``entries`` plus the caller's own uid and gid mapped just above them (unless mapped already)."""
    out = list(entries)
    for kind, own in (("u", os.getuid()), ("g", os.getgid())):
        mine = [e for e in entries if e.kind == kind]
        if any(e.hostid <= own < e.hostid + e.count for e in mine):
            continue
        top = max((e.nsid + e.count for e in mine), default=0)
        out.append(IdMapEntry(kind, top, own, 1))
    return out


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _child(ready: int, go: int, result: int, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
    outcome: tuple[bool, Any]
    try:
        syscalls.unshare(syscalls.CLONE_NEWUSER)
        os.write(ready, b"u")
        if os.read(go, 1) != b"g":
            os._exit(1)
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        with contextlib.suppress(OSError):
            os.setgroups([])
        outcome = (True, func(*args))
    except BaseException as err:  # reported to the parent, which raises it
        outcome = (False, f"{err}")
    try:
        data = pickle.dumps(outcome)
    except Exception as err:
        data = pickle.dumps((False, f"cannot send the result back: {err}"))
    os.write(result, data)
    os._exit(0 if outcome[0] else 1)


def run_as_root(entries: Sequence[IdMapEntry], func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` as uid and gid 0 of a new user namespace with ``entries`` (and the caller) mapped.

    An error inside comes back as :class:`OSError` with its message; a map the helpers refuse too.
    """
    maps = with_caller(entries)
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    result_r, result_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        for fd in (ready_r, go_w, result_r):
            os.close(fd)
        _child(ready_w, go_r, result_w, func, args)
    for fd in (ready_w, go_r, result_w):
        os.close(fd)
    try:
        try:
            if os.read(ready_r, 1) != b"u":
                raise OSError("the user namespace helper process could not unshare a user namespace")
            for kind in ("u", "g"):
                subid.write_with_helper(pid, kind, [e for e in maps if e.kind == kind])
        except BaseException:
            os.kill(pid, signal.SIGKILL)
            raise
        os.write(go_w, b"g")
        os.close(go_w)
        go_w = -1
        data = _read_all(result_r)
    finally:
        for fd in (ready_r, result_r, go_w):
            if fd >= 0:
                os.close(fd)
        os.waitpid(pid, 0)
    if not data:
        raise OSError("the user namespace helper process died without an answer")
    ok, value = pickle.loads(data)  # our own forked child's answer
    if not ok:
        raise OSError(value)
    return value


def remove_as_user(directory: str, config: object | None) -> None:
    """A non-root caller's ``rm -r`` of a container directory whose rootfs its container's ids own:
    as the container's root (its ``lxc.idmap``, else the caller's first subid ranges), as LXC's
    destroy does through ``userns_exec_full``."""
    import shutil

    from lxcframe.idmap import config_entries

    entries = config_entries(config) if config is not None else []
    run_as_root(entries or subid.default_idmap(), shutil.rmtree, directory)
