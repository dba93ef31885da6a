"""Handing cgroup2 controllers down the unified tree (``cgroup.subtree_control``), as far as needed.

A controller's files appear in a cgroup only once its parent enables it for its children, level by
level from the base. Only what is missing is written: a base that hands them down already is left
as it is, and nothing a start enabled there is taken back (other containers may rely on it, as in LXC).
"""

from __future__ import annotations

import errno
import os
import posixpath

from lxcframe.plugins.cgroup import fs
from lxcframe.plugins.cgroup.placement import Placed


def levels(base: str, last: str) -> list[str]:
    """``base`` and each cgroup below it down to ``last`` included."""
    found = [base]
    relative = posixpath.relpath(last, base)
    current = base
    if relative != ".":
        for part in relative.split("/"):
            current = posixpath.join(current, part)
            found.append(current)
    return found


def enable_controllers(unified: Placed, wanted: set[str], down_to: str) -> None:
    """Enable ``wanted`` controllers in ``cgroup.subtree_control`` from the base down to ``down_to``."""
    if not wanted:
        return
    for level in levels(unified.base, down_to):
        directory = unified.path(level)
        offered = set((fs.read_or_none(os.path.join(directory, "cgroup.controllers")) or "").split())
        enabled = set((fs.read_or_none(os.path.join(directory, "cgroup.subtree_control")) or "").split())
        missing = sorted((wanted & offered) - enabled)
        if not missing:
            continue
        try:
            fs.write(os.path.join(directory, "cgroup.subtree_control"), " ".join(f"+{c}" for c in missing))
        except OSError as err:
            if err.errno == errno.EBUSY:
                raise OSError(errno.EBUSY, f"cannot hand {', '.join(missing)} down from {level}: it has processes "
                              "of its own (cgroup2 allows no process in a cgroup that hands controllers down); "
                              "set lxc.cgroup.dir or start from another cgroup") from None
            raise
