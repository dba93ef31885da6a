"""One file of a running container's cgroup, read or written by its key: LXC's ``lxc-cgroup NAME KEY
[VALUE]`` and python3-lxc's ``get_cgroup_item``/``set_cgroup_item``.

A key is ``CONTROLLER.FILE`` (``pids.max``, ``memory.limit_in_bytes``, ``cgroup.max.depth``): the
name of a file in the container's payload cgroup (the limit cgroup, as LXC's), never a path. The
controller picks the hierarchy through the drivers, in their order of preference: cgroup2 first
where its root offers the controller, then the v1 hierarchies bound to it, then the unified cgroup
for cgroup2's files of a controller it does not hand down (``cpu.stat``, ``memory.pressure``). The
first of them that has the file is used. Nothing but a regular file of that cgroup is opened, and
never through a symlink.
"""

from __future__ import annotations

import os
import stat

from lxcframe.errors import ContainerError
from lxcframe.plugins.cgroup import runtime
from lxcframe.plugins.cgroup.drivers import DRIVERS
from lxcframe.plugins.cgroup.placement import Placed

_READ_CHUNK = 65536


def _why_not_a_key(key: str) -> str | None:
    if "/" in key or ".." in key or not key.isprintable():
        return "a key is the name of a file of the container's cgroup: no '/', '..' or control characters"
    controller, dot, rest = key.partition(".")
    if not (controller and dot and rest):
        return "expected CONTROLLER.FILE (pids.max, memory.max, cpu.shares)"
    return None


def check_key(key: str) -> str:
    """The controller ``key`` names; a :class:`ContainerError` naming the key when it is no such name."""
    why = _why_not_a_key(key)
    if why is not None:
        raise ContainerError(f"cgroup key {key!r}: {why}")
    return key.partition(".")[0]


def candidates(placed: list[Placed], controller: str) -> list[Placed]:
    """The container's cgroups that may hold ``controller``'s files, in the order they are looked in."""
    found = [p for driver in DRIVERS.values() for p in driver.item_cgroups(placed, controller)]
    unified = runtime.unified(placed)
    if unified is not None and unified not in found:
        # cgroup2 shows some files of a controller it does not offer (cpu.stat, io.pressure) in every cgroup.
        found.append(unified)
    return found


def _find(placed: list[Placed], key: str) -> tuple[str, os.stat_result]:
    """The path of ``key``'s file in the first cgroup that has it as a regular file, with its stat."""
    controller = check_key(key)
    looked = []
    for p in candidates(placed, controller):
        path = p.path(p.payload, key)
        try:
            info = os.stat(path, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            info = None
        if info is not None and stat.S_ISREG(info.st_mode):
            return path, info
        looked.append(p.path(p.payload))
    where = f"looked in {', '.join(looked)}" if looked else f"no hierarchy of it has the controller {controller!r}"
    raise ContainerError(f"cgroup key {key!r}: no such file in the container's cgroup ({where})")


def _refuse_mode(key: str, info: os.stat_result, writing: bool) -> None:
    # kernfs gives a file without a read (write) handler no r (w) bit; opening it anyway is EACCES even for root.
    if not info.st_mode & (0o222 if writing else 0o444):
        raise ContainerError(f"cgroup key {key!r}: the file is {'read' if writing else 'write'}-only")


def read(placed: list[Placed], key: str) -> str:
    """The text of ``key``'s file, its trailing newline stripped."""
    path, info = _find(placed, key)
    _refuse_mode(key, info, writing=False)
    chunks = []
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            while chunk := os.read(fd, _READ_CHUNK):
                chunks.append(chunk)
        finally:
            os.close(fd)
    except OSError as err:
        raise ContainerError(f"cgroup key {key!r}: the kernel refused to read it: {err.strerror} "
                             f"({path})") from None
    return b"".join(chunks).decode("utf-8", "replace").rstrip("\n")


def write(placed: list[Placed], key: str, value: str) -> None:
    """Write ``value`` to ``key``'s file, whole, as ``echo -n VALUE > FILE`` would."""
    if not value.replace("\t", " ").isprintable():
        raise ContainerError(f"cgroup key {key!r} = {value!r}: a value is one line of text, without control "
                             "characters")
    path, info = _find(placed, key)
    _refuse_mode(key, info, writing=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as err:
        raise ContainerError(f"cgroup key {key!r} = {value!r}: the kernel refused it: {err.strerror} "
                             f"({path})") from None
