"""Where and how a container's snapshots are kept, as LXC keeps them.

``<lxcpath>/<name>/snaps/snapN/`` holds a copy of the container (``config``, ``rootfs`` or an overlay
``delta0``), ``ts`` (when it was taken, LXC's ``%Y:%m:%d %H:%M:%S`` in local time) and, when one was
given, ``comment`` (a copy of the comment file). The snapshot is itself a container named ``snapN``
whose lxcpath is the ``snaps`` directory, so ``lxc-snapshot`` and lxcframe read each other's.
"""

from __future__ import annotations

import os
import re
import time

import attrs

TS, COMMENT = "ts", "comment"
#: The files of a snapshot that are not part of the container it restores.
SNAPSHOT_ONLY = frozenset({TS, COMMENT})
_SNAP_NAME = re.compile(r"snap(\d+)\Z")


@attrs.frozen
class Snapshot:
    """One snapshot, as python3-lxc's ``snapshot_list`` gives it."""

    name: str
    #: The ``comment`` file, or ``None`` when the snapshot was taken without one.
    comment_path: str | None
    #: When it was taken, as written in its ``ts`` file ("" when that file is missing).
    timestamp: str
    #: The ``snaps`` directory: the snapshot's lxcpath.
    lxcpath: str


def snaps_dir(container_dir: str) -> str:
    return os.path.join(container_dir, "snaps")


def snapshot_names(container_dir: str) -> list[str]:
    """Names of the snapshots (directories ``snapN`` with a config), by their number."""
    directory = snaps_dir(container_dir)
    try:
        entries = os.listdir(directory)
    except FileNotFoundError:
        return []
    found = [(int(match.group(1)), entry) for entry in entries
             if (match := _SNAP_NAME.match(entry)) and os.path.isfile(os.path.join(directory, entry, "config"))]
    return [entry for _, entry in sorted(found)]


def next_name(container_dir: str) -> str:
    """The first ``snapN`` not taken, as LXC numbers them (a destroyed number is used again)."""
    directory = snaps_dir(container_dir)
    number = 0
    while os.path.lexists(os.path.join(directory, f"snap{number}")):
        number += 1
    return f"snap{number}"


def read_snapshot(container_dir: str, name: str) -> Snapshot:
    directory = snaps_dir(container_dir)
    comment = os.path.join(directory, name, COMMENT)
    try:
        with open(os.path.join(directory, name, TS), encoding="utf-8", errors="replace") as handle:
            timestamp = handle.read().strip()
    except FileNotFoundError:
        timestamp = ""
    return Snapshot(name, comment if os.path.isfile(comment) else None, timestamp, directory)


def timestamp_now() -> bytes:
    return time.strftime("%Y:%m:%d %H:%M:%S").encode()
