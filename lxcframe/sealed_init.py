"""The static init through which runtime processes enter a container, executed from a sealed copy.

Why: a process of ours that a container can see must not map a writable host file. A container's
root with CAP_SYS_ADMIN can open ``/proc/PID/map_files/*`` or ``/proc/PID/exe`` of any process in
its pid namespace for writing (the runc CVE-2019-5736 class), and a Python process maps libpython,
libc and friends straight from the host. So nothing Python ever enters a container's pid namespace:

* ``execute`` runs tini as the container's pid 1 (signals forwarded, orphans reaped, the command's
  exit status passed on);
* ``attach`` executes tini, with every namespace but the pid one already entered and the security
  context applied, so that only tini's child, a copy of tini, is created inside; it executes the
  command.

tini is Debian's static build (``tini-static``, package ``tini``): one statically linked file, no
libraries. It is not executed from the host's file but from a copy in a memfd sealed against any
write, growth or shrink (runc's fix), so ``/proc/PID/exe`` of it leads to nothing of the host, and
the copy cannot be changed by whoever can reach it. The copy is made once per process and kept
(close-on-exec); forked children inherit it, and a descriptor number that was closed and reused
since is detected by the inode it is checked against before use.
"""

from __future__ import annotations

import fcntl
import os
import threading

from lxcframe.elf import is_static_elf
from lxcframe.errors import ContainerError
from lxcframe.spawning import SEALED

#: Where Debian (and the upstream release) put the static tini.
CANDIDATES = ("/usr/bin/tini-static", "/usr/local/bin/tini-static", "/usr/sbin/tini-static", "/sbin/tini-static")
#: argv[0] the init runs under; ``-s``: a subreaper, which also keeps tini quiet when it is not pid 1.
INIT_ARGV0 = "init"

_MFD_EXEC = 0x10  # Linux 6.3: executable memfd even where vm.memfd_noexec asks for noexec by default
_F_SEAL_EXEC = 0x20  # Linux 6.3: the mode's exec bits cannot change either

_lock = threading.Lock()
_cached: tuple[int, int, int] | None = None  # (fd, st_dev, st_ino)


def find_static_init() -> str | None:
    """The first candidate that is a static ELF program, by its real path (a distribution may install
    it through a symbolic link; the copy is then opened without following any)."""
    for candidate in CANDIDATES:
        path = os.path.realpath(candidate)
        if os.path.isfile(path) and is_static_elf(path):
            return path
    return None


def _still_ours(cached: tuple[int, int, int]) -> bool:
    fd, dev, ino = cached
    try:
        info = os.fstat(fd)
    except OSError:
        return False
    return (info.st_dev, info.st_ino) == (dev, ino)


def _sealed_copy(path: str) -> int:
    source = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        size = os.fstat(source).st_size
        flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
        try:
            memfd = os.memfd_create("tini", flags | _MFD_EXEC)
        except OSError:
            memfd = os.memfd_create("tini", flags)  # before Linux 6.3 every memfd is executable
        try:
            copied = 0
            while copied < size:
                sent = os.sendfile(memfd, source, copied, size - copied)
                if sent == 0:
                    raise ContainerError(f"{path}: shrank while being copied")
                copied += sent
            try:
                fcntl.fcntl(memfd, fcntl.F_ADD_SEALS, SEALED | _F_SEAL_EXEC)
            except OSError:
                fcntl.fcntl(memfd, fcntl.F_ADD_SEALS, SEALED)
        except BaseException:
            os.close(memfd)
            raise
        return memfd
    finally:
        os.close(source)


def sealed_init_fd() -> int:
    """A close-on-exec descriptor of a sealed copy of the static init, made once per process."""
    global _cached
    with _lock:
        if _cached is not None and _still_ours(_cached):
            return _cached[0]
        path = find_static_init()
        if path is None:
            raise ContainerError("no static init on this host: install tini (Debian's package ships "
                                 "/usr/bin/tini-static), which execute and attach run commands under")
        fd = _sealed_copy(path)
        info = os.fstat(fd)
        _cached = (fd, info.st_dev, info.st_ino)
        return fd


def init_argv(argv: list[str] | tuple[str, ...], parent_death: str | None = None) -> list[str]:
    """tini's command line; with ``parent_death`` (e.g. ``"SIGTERM"``) tini gets that signal when its
    parent dies and passes it on to the command's whole process group (``-g``), as a terminal's hangup
    reaches a session's jobs: a shell's background children end too."""
    return [INIT_ARGV0, "-s", *(("-p", parent_death, "-g") if parent_death else ()), "--", *argv]
