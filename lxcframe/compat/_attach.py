"""python3-lxc's attach: ``attach``/``attach_wait`` with its keyword options, ``attach_run_command`` and
``attach_run_shell``, over the native ``Container.attach``.

python3-lxc calls ``run(payload)`` (``run()`` without a payload) in a forked child that has entered
the container; an int return value is the exit code, anything else (or an exception, printed) is
-1, i.e. exit 255, which ``attach_wait`` reports as -1. ``attach_wait`` returns the raw wait status.
``attach_run_command`` with an argv payload is handed to the native attach as an argv, so no Python
process runs inside the container for it.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from lxcframe.errors import LxcframeError

#: What python3-lxc's attach returns when the container is not running (liblxc's command socket
#: refuses the connection: ``-ECONNREFUSED``).
NOT_RUNNING = -errno.ECONNREFUSED
#: Told apart from ``None``: python3-lxc calls ``run()`` without a payload, ``run(None)`` with one.
NO_PAYLOAD = object()


def _exec_status(err: OSError) -> int:
    # liblxc 5.0's lxc_attach_run_command: 126 when the file cannot be executed, 127 when it is missing.
    return {errno.ENOEXEC: 126, errno.EACCES: 126, errno.ENOENT: 127}.get(err.errno or 0, -1)


def _command(cmd: Any) -> tuple[str, list[str]]:
    """``(program, argv)`` of ``attach_run_command``'s payload: a list, a str, or ``(prog, [argv])``."""
    if isinstance(cmd, tuple):
        if len(cmd) != 2 or not isinstance(cmd[0], str):
            raise TypeError("attach_run_command: a tuple payload is (program, [argv])")
        if not isinstance(cmd[1], list):
            raise TypeError("Second part of tuple passed to attach_run_command must be a list.")
        program, argv = cmd
    elif isinstance(cmd, list):
        if not cmd:
            raise IndexError("list index out of range")
        program, argv = cmd[0], cmd
    else:
        program, argv = cmd, [cmd]
    if not isinstance(program, str) or not all(isinstance(word, str) for word in argv):
        raise ValueError("Expected a string")
    return program, list(argv)


def attach_run_command(cmd: Any) -> int:
    """Execute ``cmd`` (in the attached process); returns only when that fails: 127, 126 or -1."""
    program, argv = _command(cmd)
    try:
        os.execvp(program, argv)
    except OSError as err:
        print(f'Failed to exec "{program}": {err.strerror}', file=sys.stderr)
        return _exec_status(err)
    return -1  # unreachable: execvp returns only by raising


def attach_run_shell(_payload: Any = None) -> int:
    """Execute the login shell of the current user (``/bin/sh`` when it has none); -1 if that fails."""
    import pwd

    try:
        shell = pwd.getpwuid(os.getuid()).pw_shell or "/bin/sh"
    except KeyError:
        shell = "/bin/sh"
    for candidate in (shell, "/bin/sh"):
        try:
            os.execlp(candidate, candidate)
        except OSError:
            continue
    return -1


def _call(run: Callable[..., Any], payload: Any) -> int:
    """The attached child's body: python3-lxc's conversion of ``run``'s outcome to an exit status."""
    try:
        result = run() if payload is NO_PAYLOAD else run(payload)
    except BaseException:  # python3-lxc prints the traceback and exits 255 whatever was raised
        traceback.print_exc()
        return -1
    return result if isinstance(result, int) and not isinstance(result, bool) else -1


def _in_python(run: Callable[..., Any], payload: Any) -> Callable[[], int]:
    """``run`` called in the attached child as python3-lxc calls it."""
    import functools

    return functools.partial(_call, run, payload)


def native_run(run: Any, payload: Any) -> Any:
    """What the native attach runs: an argv for ``attach_run_command`` with a well-formed payload,
    otherwise a callable of no argument that calls ``run`` as python3-lxc does."""
    if not callable(run):
        raise TypeError("attach: object not callable")
    if run is attach_run_command and payload is not NO_PAYLOAD:
        try:
            program, argv = _command(payload)
        except (TypeError, ValueError, IndexError):
            pass  # raised in the child as python3-lxc does: exit 255
        else:
            # An argv names its program first; (program, argv) with another argv[0] keeps both only
            # through execvp in the child.
            if argv and argv[0] == program:
                return tuple(argv)
    return _in_python(run, payload)


def _stdio(value: Any, which: str) -> Any:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return value.fileno()
    except AttributeError:
        raise TypeError(f"argument must be an int, or have a fileno() method ({which})") from None


def native_options(container: Any, *, attach_flags: int = 0xFFFF, namespaces: int = -1, personality: int = -1,
                   initial_cwd: str | bytes | os.PathLike[str] | None = None, uid: int = -1, gid: int = -1,
                   env_policy: int = 0,
                   extra_env_vars: Sequence[str] | None = None, extra_keep_env: Sequence[str] | None = None,
                   stdin: Any = None, stdout: Any = None, stderr: Any = None) -> dict[str, Any]:
    """python3-lxc's keyword options as the native attach's; an unknown keyword is a ``TypeError``."""
    for name, value in (("attach_flags", attach_flags), ("namespaces", namespaces),
                        ("personality", personality), ("uid", uid), ("gid", gid), ("env_policy", env_policy)):
        if not isinstance(value, int):
            raise TypeError(f"{name} must be an integer, not {type(value).__name__}")
    for name, seq in (("extra_env_vars", extra_env_vars), ("extra_keep_env", extra_keep_env)):
        if seq is not None and not isinstance(seq, (list, tuple)):
            raise TypeError(f"{name}: Expected list or tuple.")
        if seq is not None and not all(isinstance(item, str) for item in seq):
            raise ValueError("Expected a string")
    if initial_cwd is not None:
        initial_cwd = os.fsdecode(initial_cwd)
    return {
        "clear_env": env_policy == 1,
        "keep_env": tuple(extra_keep_env or ()),
        "env": tuple(extra_env_vars or ()),
        "uid": None if uid == -1 else uid,
        "gid": None if gid == -1 else gid,
        "cwd": initial_cwd if initial_cwd is not None else _callers_cwd_inside(container),
        "stdin": _stdio(stdin, "stdin"),
        "stdout": _stdio(stdout, "stdout"),
        "stderr": _stdio(stderr, "stderr"),
        "namespaces": None if namespaces == -1 else namespaces,
        "personality": None if personality == -1 else personality,
    }


def _callers_cwd_inside(container: Any) -> str:
    """LXC's default working directory: the caller's own path if it exists inside the container, else
    ``/`` (where LXC only warns). Looked up through init's root from the host."""
    try:
        cwd = os.getcwd()
        pid = container.init_pid
    except (OSError, LxcframeError):
        return "/"
    if pid > 0 and os.path.isdir(f"/proc/{pid}/root{cwd}"):
        return cwd
    return "/"


def attach(container: Any, run: Any, payload: Any, options: dict[str, Any]) -> int:
    """python3-lxc's ``attach``: the attached process's pid (a child of the caller), negative on failure."""
    native = native_run(run, payload)
    try:
        kwargs = native_options(container, **options)
    except TypeError as err:
        raise TypeError(f"attach: {err}") from None
    try:
        if not container.running:
            return NOT_RUNNING
        return int(container.attach(native, **kwargs))
    except (LxcframeError, OSError) as err:
        failure: BaseException = err
    if isinstance(native, tuple):
        # The native attach refuses a command it cannot execute; python3-lxc's attached child tries
        # execvp itself and exits 127 or 126: done the same way, inside the container.
        try:
            return int(container.attach(_in_python(run, payload), **kwargs))
        except (LxcframeError, OSError) as err:
            failure = err
    from lxcframe.compat._shared import refused

    refused(container.name, "attach", failure)
    return -1


def attach_wait(container: Any, run: Any, payload: Any, options: dict[str, Any]) -> int:
    """python3-lxc's ``attach_wait``: the raw wait status; 255 as an exit code and failures are negative."""
    pid = attach(container, run, payload, options)
    if pid < 0:
        return pid
    _pid, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 255:
        return -1
    return status

