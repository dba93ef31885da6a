"""Child side: install a compiled seccomp program, and tell whether this process may get one.

Imported with the plugin, before any fork: after ``pivot_root`` (or ``setns`` into the container's
mount namespace) the host's files, Python's extension modules among them, are out of reach, so
everything loading needs is imported here up front and the program itself arrives as bytes.
"""

from __future__ import annotations

import array
import os
import re
import struct

from lxcframe import syscalls

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
#: One ``struct sock_filter`` (u16 code, u8 jt, u8 jf, u32 k).
INSN_SIZE = 8
#: The kernel refuses longer programs (BPF_MAXINSNS).
MAX_INSNS = 4096

_STATUS_LINE = re.compile(r"^Seccomp:\s*(\d+)", re.MULTILINE)


def seccomp_mode(status_path: str = "/proc/self/status") -> int | None:
    """This process's seccomp mode (0 none, 1 strict, 2 filter), or ``None`` when the kernel has none."""
    with open(status_path) as handle:
        match = _STATUS_LINE.search(handle.read())
    return None if match is None else int(match.group(1))


def why_not_filter(allow_nesting: bool, status_path: str = "/proc/self/status") -> str | None:
    """Why a policy must not be loaded here (as LXC decides), or ``None`` to load it."""
    if allow_nesting:
        return None  # lxc.seccomp.allow_nesting: stack on top of whatever filter is there
    try:
        mode = seccomp_mode(status_path)
    except OSError:
        return None  # no /proc to ask: try, as LXC does, and let the kernel answer
    if mode is None:
        return "the kernel has no seccomp support (no Seccomp line in /proc/self/status)"
    if mode != 0:
        return f"this process is already under seccomp (mode {mode}); set lxc.seccomp.allow_nesting = 1 to stack"
    return None


def read_fd(fd: int) -> bytes:
    """All of a (memfd) descriptor's contents, whatever its offset."""
    return os.pread(fd, os.fstat(fd).st_size, 0)


def load_program(program: bytes) -> None:
    """Install ``program`` (an array of ``struct sock_filter``) as this process's newest seccomp filter.

    Equivalent to libseccomp's ``seccomp_load`` for the attributes the builder sets (no TSYNC, no
    log flag, no_new_privs left alone). Without no_new_privs the kernel wants CAP_SYS_ADMIN in the
    process's user namespace: EACCES otherwise.
    """
    count, rest = divmod(len(program), INSN_SIZE)
    if rest or not 0 < count <= MAX_INSNS:
        raise ValueError(f"not a seccomp program: {len(program)} bytes")
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; }, laid out natively. Both
    # buffers stay referenced until prctl returns; the kernel copies the program.
    instructions = array.array("B", program)
    fprog = array.array("B", struct.pack("@HP", count, instructions.buffer_info()[0]))
    syscalls.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, fprog.buffer_info()[0])
