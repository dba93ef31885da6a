"""A namespace kept alive by a bind mount of its nsfs file, as ``ip netns add`` and CNI plugins keep a
pod's network namespace: made with util-linux's ``unshare --KIND=FILE``, unmounted and removed after."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from lxcframe import syscalls


@contextlib.contextmanager
def bound_namespace(path: Path, kind: str) -> Iterator[Path]:
    """A new ``kind`` namespace (``net``, ``uts``, ``ipc``…) bound at ``path`` for the block."""
    path.touch()
    try:
        subprocess.run(["unshare", f"--{kind}={path}", "true"], check=True, timeout=30)
        yield path
    finally:
        with contextlib.suppress(OSError):
            syscalls.umount2(str(path), syscalls.MNT_DETACH)
        path.unlink(missing_ok=True)


def in_namespace(path: Path, kind: str, *argv: str) -> None:
    """Run ``argv`` in the namespace bound at ``path`` (it must succeed)."""
    subprocess.run(["nsenter", f"--{kind}={path}", *argv], check=True, timeout=30)
