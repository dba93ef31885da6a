"""What an attach is asked for besides the command: ``Container.attach``'s and ``attach_wait``'s options,
checked once in the caller (lxc-attach's and python3-lxc's ``lxc_attach_options_t``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from lxcframe.errors import ContainerError

#: Every namespace an attach may join, as ``CLONE_NEW*`` flags (0x80: the time namespace).
NAMESPACE_FLAGS = (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
                   | 0x00000080)


def _descriptor(value: Any, which: str) -> int:
    """An int descriptor, or an object's ``fileno()``; -1 for None (the caller's own)."""
    if value is None:
        return -1
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if number is None and hasattr(value, "fileno"):
        number = value.fileno()
    if not isinstance(number, int) or number < 0:
        raise ContainerError(f"attach {which}: {value!r} is neither a descriptor nor has a fileno()")
    return number


def _ids(value: int | None, which: str) -> int | None:
    if value is None or value == -1:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32 - 1:
        raise ContainerError(f"attach {which}: {value!r} is not an id")
    return value


def _variables(values: Iterable[str], which: str) -> tuple[str, ...]:
    found = tuple(values)
    for item in found:
        if not isinstance(item, str) or "\0" in item:
            raise ContainerError(f"attach {which}: {item!r} is not a string without NUL")
    return found


@attrs.frozen
class AttachOptions:
    """The options of one attach, as the attaching process applies them."""

    clear_env: bool = False
    #: Names of the caller's variables kept by ``clear_env`` (python3-lxc's ``extra_keep_env``).
    keep_env: tuple[str, ...] = ()
    #: ``NAME=value`` set last (``extra_env_vars``).
    env: tuple[str, ...] = ()
    uid: int | None = None
    gid: int | None = None
    cwd: str = "/"
    #: stdin, stdout and stderr of the attached process as descriptors of the caller; -1: the caller's own.
    stdio: tuple[int, int, int] = (-1, -1, -1)
    #: ``CLONE_NEW*`` flags of the namespaces to join; -1: every namespace of the container's.
    namespaces: int = -1
    #: personality(2) of the attached process; -1: the container's (``lxc.arch``).
    personality: int = -1
    pass_fds: tuple[int, ...] = ()

    @property
    def plain(self) -> bool:
        """Nothing beyond what an attach by name through the server carries."""
        return (self.keep_env, self.cwd, self.stdio, self.namespaces, self.personality) == ((), "/", (-1, -1, -1),
                                                                                           -1, -1)


def attach_options(*, clear_env: bool = False, keep_env: Iterable[str] = (), env: Iterable[str] = (),
                   uid: int | None = None, gid: int | None = None, cwd: str | None = "/", stdin: Any = None,
                   stdout: Any = None, stderr: Any = None, namespaces: int | None = None,
                   personality: int | None = None, pass_fds: Iterable[int] = ()) -> AttachOptions:
    """The options of ``Container.attach`` checked; a :class:`ContainerError` naming the one that is wrong."""
    if namespaces is not None and namespaces != -1 and (
            not isinstance(namespaces, int) or namespaces & ~NAMESPACE_FLAGS or not namespaces):
        raise ContainerError(f"attach namespaces: {namespaces!r} is not an OR of CLONE_NEW* flags")
    if personality is not None and personality != -1 and (not isinstance(personality, int) or personality < 0):
        raise ContainerError(f"attach personality: {personality!r} is not a personality")
    if cwd is not None and (not isinstance(cwd, str) or not cwd.startswith("/") or "\0" in cwd):
        raise ContainerError(f"attach cwd: {cwd!r} is not an absolute path")
    for item in _variables(env, "env"):
        if "=" not in item:
            raise ContainerError(f"attach env: {item!r} is not NAME=value")
    passed = tuple(pass_fds)
    for fd in passed:
        if not isinstance(fd, int) or isinstance(fd, bool) or fd < 3:
            raise ContainerError(f"attach pass_fds: {fd!r} is not a descriptor above stderr")
    return AttachOptions(
        clear_env=bool(clear_env), keep_env=_variables(keep_env, "keep_env"), env=_variables(env, "env"),
        uid=_ids(uid, "uid"), gid=_ids(gid, "gid"), cwd=cwd or "/",
        stdio=(_descriptor(stdin, "stdin"), _descriptor(stdout, "stdout"), _descriptor(stderr, "stderr")),
        namespaces=-1 if namespaces is None else namespaces, personality=-1 if personality is None else personality,
        pass_fds=passed,
    )
