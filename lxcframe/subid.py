"""A non-root caller's subordinate ids (``/etc/subuid``, ``/etc/subgid``) and the setuid helpers
``newuidmap``/``newgidmap`` (Debian's ``uidmap``) that write its user namespaces' maps.

A user may not write another process's ``uid_map`` with ranges beyond its own uid; the helpers do it
for the ranges the operator granted in the subid files, as LXC does for unprivileged users.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Iterable, Sequence

from lxcframe.idmap import IdMapEntry

SUBUID_FILE = "/etc/subuid"
SUBGID_FILE = "/etc/subgid"
HELPERS = {"u": "newuidmap", "g": "newgidmap"}
FILES = {"u": SUBUID_FILE, "g": SUBGID_FILE}


def _names(uid: int) -> set[str]:
    names = {str(uid)}
    try:
        names.add(pwd.getpwuid(uid).pw_name)
    except KeyError:
        pass
    return names


def ranges(kind: str, uid: int | None = None, path: str | None = None) -> list[tuple[int, int]]:
    """The ``(first, count)`` ranges the subid file of ``kind`` ("u" or "g") grants ``uid``, in order."""
    uid = os.getuid() if uid is None else uid
    path = path or FILES[kind]
    names = _names(uid)
    found = []
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        fields = line.strip().split(":")
        if len(fields) != 3 or fields[0] not in names:
            continue
        try:
            first, count = int(fields[1]), int(fields[2])
        except ValueError:
            continue
        if first >= 0 and count > 0:
            found.append((first, count))
    return found


def default_idmap(uid: int | None = None) -> list[IdMapEntry]:
    """Container root to the first subuid and subgid range of ``uid`` (LXC's ``lxc.idmap`` lines of a
    user's ``default.conf``); a missing range is a :class:`ValueError` naming the file."""
    entries = []
    for kind in ("u", "g"):
        granted = ranges(kind, uid)
        if not granted:
            who = pwd.getpwuid(os.getuid() if uid is None else uid).pw_name
            raise ValueError(f"{FILES[kind]} grants {who} no range (a non-root user's containers map "
                             "their root there; the operator adds e.g. 'NAME:100000:65536')")
        first, count = granted[0]
        entries.append(IdMapEntry(kind, 0, first, count))
    return entries


def write_with_helper(pid: int, kind: str, entries: Sequence[IdMapEntry]) -> None:
    """Write ``pid``'s uid or gid map through ``newuidmap``/``newgidmap``; the helper's refusal is an
    :class:`OSError` with its own words (a range the subid file does not grant, most often)."""
    helper = HELPERS[kind]
    path = shutil.which(helper, path=os.environ.get("PATH") or os.defpath) or shutil.which(helper, path="/usr/bin")
    if path is None:
        raise OSError(f"{helper} is missing: a non-root user's user namespace needs it (Debian package uidmap)")
    words = [str(n) for e in entries for n in (e.nsid, e.hostid, e.count)]
    done = subprocess.run([path, str(pid), *words], capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        reason = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
        raise OSError(f"{helper} {pid} {' '.join(words)} failed: {reason}")


def granted(kind: str, entries: Iterable[IdMapEntry], uid: int | None = None) -> list[str]:
    """The entries of ``kind`` that no subid range of ``uid`` (nor its own id, for one) covers."""
    uid = os.getuid() if uid is None else uid
    own = uid if kind == "u" else os.getgid()
    allowed = ranges(kind, uid)
    problems = []
    for entry in entries:
        if entry.kind != kind:
            continue
        if entry.hostid == own and entry.count == 1:
            continue
        if not any(first <= entry.hostid and entry.hostid + entry.count <= first + count for first, count in allowed):
            problems.append(f"{entry.kind} {entry.line()} is not within {FILES[kind]}'s ranges for this user")
    return problems


def probe() -> object:
    """``lxcframe check``'s row: what a non-root caller needs for its user namespaces (root needs none)."""
    from lxcframe.probe import Probe

    if os.geteuid() == 0:
        return Probe("idmap:subids", True, "root writes the maps itself")
    missing = []
    for kind in ("u", "g"):
        helper = shutil.which(HELPERS[kind], path=os.environ.get("PATH") or os.defpath)
        if helper is None or not os.stat(helper).st_mode & 0o4000:
            missing.append(f"{HELPERS[kind]} (setuid; Debian package uidmap)")
        if not ranges(kind):
            missing.append(f"a range in {FILES[kind]}")
    if missing:
        return Probe("idmap:subids", False, "a non-root user's containers need " + ", ".join(missing))
    granted_ranges = ", ".join(f"{k}id {first}+{count}" for k in ("u", "g") for first, count in ranges(k)[:1])
    return Probe("idmap:subids", True, f"newuidmap and newgidmap write the maps; first ranges: {granted_ranges}")
