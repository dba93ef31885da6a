"""A command of the thin client (:mod:`lxcframe.thin_client`), as the server checks it and its worker runs it;
and the attach of a multi-threaded library caller, which a worker runs instead of a fresh interpreter.

The worker is forked from the warm server for one command and takes on the client's context before
running the command line's own ``main``: the client's stdin, stdout and stderr, working directory,
umask, environment and first module search path entry, a session of its own, and whatever plugins
read of the calling process (``lxcframe_act_for``: the cgroup plugin joins the client's cgroups, so
``lxc.cgroup.relative`` means the client's). Its exit status is the command's.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from typing import Any

import attrs

from lxcframe.supervisor_client import MAX_PASSED_FDS

#: stdin, stdout, stderr and the working directory (an O_PATH descriptor), in this order; then the
#: descriptors the command passes on (``attach --pass-fd``), in the order of ``pass_fds``.
DESCRIPTORS = 4


@attrs.frozen
class Command:
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    umask: int
    path0: str
    #: The numbers the client has them at, which the worker gives them too.
    pass_fds: tuple[int, ...] = ()


def parse(document: Any) -> Command:
    """The command a client sent, or a ``ValueError`` saying what is wrong with it."""
    if not isinstance(document, dict) or set(document) != {"argv", "env", "umask", "path0", "pass_fds"}:
        raise ValueError("a command holds argv, env, umask, path0 and pass_fds, nothing else")
    passed = _descriptor_numbers(document["pass_fds"])
    argv, env = _strings(document, "argv"), _string_map(document, "env")
    umask, path0 = document["umask"], document["path0"]
    if not isinstance(umask, int) or isinstance(umask, bool) or not 0 <= umask <= 0o777:
        raise ValueError("umask: not a mode")
    if not isinstance(path0, str):
        raise ValueError("path0: not a string")
    return Command(argv, env, umask, path0, passed)


def _descriptor_numbers(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > MAX_PASSED_FDS or len(set(value)) != len(value) or not all(
            isinstance(fd, int) and not isinstance(fd, bool) and 3 <= fd < 65536 for fd in value):
        raise ValueError(f"pass_fds: not at most {MAX_PASSED_FDS} distinct descriptor numbers from 3")
    return tuple(value)


def _strings(document: dict[str, Any], key: str) -> tuple[str, ...]:
    value = document[key]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{key}: not a list of strings")
    return tuple(value)


def _string_map(document: dict[str, Any], key: str) -> tuple[tuple[str, str], ...]:
    value = document[key]
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError(f"{key}: not an object of strings")
    return tuple(value.items())


def place(fds: list[int], wanted: tuple[int, ...]) -> None:
    """Give received descriptors the numbers the caller had them at, closing the received ones."""
    # Above every number in play first: a received descriptor may sit at a number another must take.
    above = max((*wanted, *fds)) + 1
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, above) for fd in fds]
    for fd in fds:
        os.close(fd)
    for target, fd in zip(wanted, moved, strict=True):
        os.dup2(fd, target)  # inheritable, as the caller's were
    for fd in moved:
        os.close(fd)


def run_in_worker(command: Command, fds: list[int], client_pid: int, plugins: Any) -> int:
    """In the forked worker: become the client's process as far as the command can tell, run it."""
    from lxcframe import syscalls

    syscalls.set_process_name("lxcframe")  # not the server's name: tools look the server up by it
    os.setsid()
    os.fchdir(fds[3])
    os.close(fds[3])
    place([*fds[:3], *fds[4:]], (0, 1, 2, *command.pass_fds))
    os.umask(command.umask)
    os.environ.clear()
    os.environ.update(dict(command.env))
    if sys.path:
        sys.path[0] = command.path0
    sys.argv = ["lxcframe", *command.argv]
    # The server's stdout was /dev/null: a terminal of the client's is written line by line, as it
    # would be by the client itself.
    sys.stdout.reconfigure(line_buffering=os.isatty(1))  # type: ignore[union-attr]
    try:
        plugins.hook.lxcframe_act_for(pid=client_pid)
    except Exception as err:
        from lxcframe.plugin_calls import raised_by

        sys.stderr.write(f"lxcframe: error: plugin {raised_by(err)!r} cannot act for this command: {err}\n")
        return 1
    from lxcframe.cli.main import main

    try:
        code = main(list(command.argv), here=True)
    except SystemExit as ended:  # argparse: --help, a usage error
        code = ended.code if isinstance(ended.code, int) else (0 if ended.code is None else 1)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except OSError:
                pass
    return code


@attrs.frozen
class NamedAttach:
    """A threaded caller's attach by name: what ``Container.attach_wait`` was given, and the caller's
    environment (the command's unless cleared) and plugin selection (still encoded)."""

    lxcpath: str
    name: str
    argv: tuple[str, ...]
    clear_env: bool
    uid: int | None
    gid: int | None
    env: tuple[str, ...]
    pass_fds: tuple[int, ...]
    environ: tuple[tuple[str, str], ...]
    plugins: Any


def parse_named_attach(document: Any) -> NamedAttach:
    """The attach a caller sent by name, or a ``ValueError`` saying what is wrong with it."""
    fields = {"lxcpath", "name", "argv", "clear_env", "uid", "gid", "env", "pass_fds", "environ", "plugins"}
    if not isinstance(document, dict) or set(document) != fields:
        raise ValueError(f"an attach by name holds {', '.join(sorted(fields))}, nothing else")

    def optional_id(key: str) -> int | None:
        value = document[key]
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32):
            raise ValueError(f"{key}: not an id")
        return value

    if not isinstance(document["lxcpath"], str) or not isinstance(document["name"], str):
        raise ValueError("lxcpath and name: not strings")
    if not isinstance(document["clear_env"], bool):
        raise ValueError("clear_env: not a boolean")
    return NamedAttach(document["lxcpath"], document["name"], _strings(document, "argv"), document["clear_env"],
                       optional_id("uid"), optional_id("gid"), _strings(document, "env"),
                       _descriptor_numbers(document["pass_fds"]), _string_map(document, "environ"),
                       document["plugins"])


def run_named_attach(named: NamedAttach, plugins: Any, fds: list[int], conn: socket.socket) -> int:
    """In the forked worker: the attach prepared here as the caller would have (its environment, its
    plugins); an error of the preparation goes back to be raised there, an error of the attach itself
    is said on stderr with status 1, as a helper interpreter of the caller's would."""
    from lxcframe import syscalls
    from lxcframe.attach import prepare, run_request
    from lxcframe.attach_options import AttachOptions
    from lxcframe.container import Container
    from lxcframe.errors import LxcframeError

    syscalls.set_process_name("lxcframe-attach")
    os.setsid()
    place(fds, (0, 1, 2, *named.pass_fds))
    os.environ.clear()
    os.environ.update(dict(named.environ))
    container = Container(named.name, named.lxcpath, plugins=plugins)
    try:
        options = AttachOptions(clear_env=named.clear_env, uid=named.uid, gid=named.gid, env=named.env,
                                pass_fds=named.pass_fds)
        request = prepare(container, container._running_state(), named.argv, options)
    except LxcframeError as err:
        record = {"error": {"class": type(err).__name__, "message": str(err)}}
        conn.send(json.dumps(record).encode(), socket.MSG_NOSIGNAL)
        return 1
    return int(run_request(plugins, request))
