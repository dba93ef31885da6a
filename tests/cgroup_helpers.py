"""What the cgroup tests share: a process that keeps writing inside a container, to see it frozen or
running, and undoing the controllers a start handed down from a base cgroup the tests do not own."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

from lxcframe.container import Container
from lxcframe.plugins.cgroup import fs


def counter(container: Container) -> str:
    """A process in the container appending to /count every 20 ms; returns the file's host path."""
    rootfs = container.load_config().get("lxc.rootfs.path")
    code = container.attach_wait(["/bin/sh", "-c",
                                  "while :; do echo x >> /count; usleep 20000; done </dev/null >/dev/null 2>&1 &"])
    assert code == 0
    path = os.path.join(rootfs, "count")
    deadline = time.monotonic() + 5
    while not (os.path.exists(path) and os.path.getsize(path) > 0):
        assert time.monotonic() < deadline, "the counter never wrote"
        time.sleep(0.02)
    return path


def grows(path: str, seconds: float = 0.3) -> bool:
    size = os.path.getsize(path)
    time.sleep(seconds)  # a window for a running counter to write (every 20 ms) in
    return os.path.getsize(path) > size


class SubtreeControlRestored:
    """Controllers a start enables in a base's ``cgroup.subtree_control`` are taken back by
    :meth:`restore`; the start itself leaves them, as LXC does, since other containers may rely on them."""

    def __init__(self, base_directory: str) -> None:
        self.path = os.path.join(base_directory, "cgroup.subtree_control")
        self.before = set(fs.read(self.path).split())

    def restore(self) -> None:
        added = set(fs.read(self.path).split()) - self.before
        if added:
            fs.write(self.path, " ".join(f"-{c}" for c in sorted(added)))


T = TypeVar("T")


def settled(read: Callable[[], T], tries: int = 50) -> T:
    """A value read twice in a row, 0.1 s apart, the same (a container's init may still be spawning)."""
    last = read()
    for _ in range(tries):
        time.sleep(0.1)
        current = read()
        if current == last:
            return current
        last = current
    raise AssertionError(f"never settled: {last!r}")


def capture(container: Container, script: str) -> tuple[int, str]:
    """``script``'s exit status and output, run by ``sh`` attached to the running container (the output
    goes through a file of its rootfs, so that nothing of the caller's is handed in)."""
    rootfs = container.load_config().get("lxc.rootfs.path")
    code = container.attach_wait(["/bin/sh", "-c", f"({script}) > /.capture 2>&1"])
    path = os.path.join(rootfs, ".capture")
    with open(path) as handle:
        text = handle.read()
    os.unlink(path)
    return code, text
