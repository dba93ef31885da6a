"""Process attributes: execveat, prctl and what goes through it (name, parent-death signal,
no_new_privs, ambient and bounding capabilities), personality, and the dispositions of the C
library's own signals."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping, Sequence

from lxcframe.syscalls.capabilities import cap_number
from lxcframe.syscalls.constants import (
    PR_CAP_AMBIENT,
    PR_CAP_AMBIENT_CLEAR_ALL,
    PR_CAP_AMBIENT_IS_SET,
    PR_CAP_AMBIENT_RAISE,
    PR_CAPBSET_DROP,
    PR_CAPBSET_READ,
    PR_GET_PDEATHSIG,
    PR_SET_NAME,
    PR_SET_NO_NEW_PRIVS,
    PR_SET_PDEATHSIG,
)
from lxcframe.syscalls.libc import StrPath, _b, _checked, _libc, _raise, _raw, _syscall_numbers


def _cstring_array(items: Sequence[str | bytes]) -> ctypes.Array[ctypes.c_char_p]:
    encoded = [os.fsencode(item) for item in items]
    array = (ctypes.c_char_p * (len(encoded) + 1))()
    for index, item in enumerate(encoded):
        array[index] = item  # the array keeps a reference to the bytes
    # The trailing element is already NULL from zero-initialisation.
    return array


def execveat(
    dirfd: int,
    path: StrPath,
    argv: Sequence[str | bytes],
    envp: Mapping[str, str] | Sequence[str | bytes],
    flags: int = 0,
) -> None:
    """execveat(2). Only ever returns by raising.

    ``envp`` may be a mapping or a ready-made list of ``KEY=VALUE`` strings.
    Pass ``path=""`` and ``flags=AT_EMPTY_PATH`` to execute ``dirfd`` itself.
    """
    if isinstance(envp, Mapping):
        env_list: list[str | bytes] = [f"{key}={value}" for key, value in envp.items()]
    else:
        env_list = list(envp)
    c_argv = _cstring_array(argv)
    c_envp = _cstring_array(env_list)
    _raw("execveat", dirfd, _b(path), c_argv, c_envp, flags)
    _raise("execveat", path or None)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2) with integer arguments; returns the (non-negative) result."""
    return _checked("prctl", _libc().prctl(option, arg2, arg3, arg4, arg5))


#: prctl(2) core scheduling (Linux 5.14, CONFIG_SCHED_CORE): option, its commands, and the scope of a cookie.
PR_SCHED_CORE = 62
PR_SCHED_CORE_GET = 0
PR_SCHED_CORE_CREATE = 1
PR_SCHED_CORE_SCOPE_THREAD_GROUP = 1


def sched_core_create() -> None:
    """A new core scheduling cookie for this process's thread group, inherited by every child it forks:
    no task of another cookie runs on a sibling hyperthread of the same core at the same time."""
    prctl(PR_SCHED_CORE, PR_SCHED_CORE_CREATE, 0, PR_SCHED_CORE_SCOPE_THREAD_GROUP, 0)


def sched_core_cookie() -> int:
    """This thread group's core scheduling cookie (0: none); raises where the kernel has no core
    scheduling (EINVAL: built without CONFIG_SCHED_CORE; ENODEV: no SMT to schedule)."""
    cookie = ctypes.c_ulong()
    prctl(PR_SCHED_CORE, PR_SCHED_CORE_GET, 0, PR_SCHED_CORE_SCOPE_THREAD_GROUP, ctypes.addressof(cookie))
    return cookie.value


def set_process_name(name: str) -> None:
    """Set this thread's name (``comm``, as ps and top show it); the kernel keeps 15 bytes."""
    buffer = ctypes.create_string_buffer(name.encode(errors="replace")[:15])
    prctl(PR_SET_NAME, ctypes.addressof(buffer))


def blank_initial_arguments_and_environment() -> None:
    """Overwrite with NULs the argument and environment strings the kernel gave this process at its
    exec, which ``/proc/PID/cmdline`` and ``/proc/PID/environ`` show (Python's ``sys.argv`` and
    ``os.environ`` are copies of them and stay as they were, and so does what a child inherits)."""
    with open("/proc/self/stat", "rb") as handle:
        # After the command name in parentheses, which may hold anything: fields 48 to 51 are
        # arg_start, arg_end, env_start and env_end (proc(5)).
        fields = handle.read().rsplit(b")", 1)[1].split()
    arg_start, arg_end, env_start, env_end = (int(value) for value in fields[45:49])
    for start, end in ((arg_start, arg_end), (env_start, env_end)):
        if 0 < start < end:
            ctypes.memset(start, 0, end - start)
    # The C library's environment pointed into those strings: it is built again from os.environ, in
    # memory of its own, for what this process still executes without an environment of its own.
    _libc().clearenv()
    for key, value in os.environ.items():
        os.putenv(key, value)


def set_pdeathsig(sig: int) -> None:
    """Ask for ``sig`` when the parent thread dies."""
    prctl(PR_SET_PDEATHSIG, sig)


#: personality(2) domains (linux/personality.h): what ``uname -m`` reports to the process.
PER_LINUX = 0x0000
PER_LINUX32 = 0x0008


def set_personality(persona: int) -> None:
    """personality(2) for this process and what it executes.

    The syscall table is chosen from the machine first: under ``PER_LINUX32`` ``uname`` (and so
    :func:`os.uname`'s machine) names the 32-bit machine, whose numbers are not this kernel's.
    """
    try:
        _syscall_numbers()
    except OSError:
        pass  # a machine without a table: no call of ours needs one
    _checked("personality", _libc().personality(persona))


def get_pdeathsig() -> int:
    """Return the current parent-death signal (0 if none)."""
    # PR_GET_PDEATHSIG writes into an int*: its address goes as prctl's unsigned long argument.
    value = ctypes.c_int(0)
    prctl(PR_GET_PDEATHSIG, ctypes.addressof(value))
    return value.value


def set_no_new_privs() -> None:
    """Irreversibly forbid privilege gain through execve (setuid, fcaps)."""
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def ambient_raise(cap: int | str) -> None:
    """Raise a capability in the ambient set (it must already be in both the
    permitted and the inheritable sets)."""
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap_number(cap))


def ambient_clear_all() -> None:
    """Empty the ambient capability set."""
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def ambient_is_set(cap: int | str) -> bool:
    """Whether ``cap`` is in the ambient set."""
    return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap_number(cap)) == 1


def drop_bounding_cap(cap: int | str) -> None:
    """Remove a capability from the bounding set (needs CAP_SETPCAP)."""
    prctl(PR_CAPBSET_DROP, cap_number(cap))


def bounding_has(cap: int | str) -> bool:
    """Whether ``cap`` is in the bounding set."""
    return prctl(PR_CAPBSET_READ, cap_number(cap)) == 1


# The kernel's struct sigaction: handler, flags, restorer and a 64-bit mask on x86_64 and aarch64
# alike. Only the handler is read or set here; the rest stays zero (no flags, nothing blocked).
class _KernelSigaction(ctypes.Structure):
    _fields_ = [("handler", ctypes.c_ulong), ("flags", ctypes.c_ulong),
                ("restorer", ctypes.c_ulong), ("mask", ctypes.c_ulong)]


_SIG_IGN = 1
_KERNEL_SIGSET_SIZE = 8


def unignore_signal(signum: int) -> bool:
    """Set ``signum`` back to its default action if it is ignored; whether it was.

    For the C library's own real-time signals (32 and 33 with glibc), which its ``sigaction``
    refuses to touch: ``posix_spawn`` leaves them ignored in the process it starts, and an
    ignored signal survives every exec after it. A handler the C library installed is left
    alone (an exec resets it anyway), so this is safe in any process.
    """
    old = _KernelSigaction()
    _checked("rt_sigaction", _raw("rt_sigaction", signum, None, ctypes.byref(old), _KERNEL_SIGSET_SIZE))
    if old.handler != _SIG_IGN:
        return False
    default = _KernelSigaction()
    _checked("rt_sigaction", _raw("rt_sigaction", signum, ctypes.byref(default), None, _KERNEL_SIGSET_SIZE))
    return True
