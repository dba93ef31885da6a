"""A command of the thin client (:mod:`lxcframe.thin_client`), as the server checks it and its worker runs it.

The worker is forked from the warm server for one command and takes on the client's context before
running the command line's own ``main``: the client's stdin, stdout and stderr, working directory,
umask, environment and first module search path entry, a session of its own, and whatever plugins
read of the calling process (``lxcframe_act_for``: the cgroup plugin joins the client's cgroups, so
``lxc.cgroup.relative`` means the client's). Its exit status is the command's.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import attrs

#: stdin, stdout, stderr and the working directory (an O_PATH descriptor), in this order.
DESCRIPTORS = 4


@attrs.frozen
class Command:
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    umask: int
    path0: str


def parse(document: Any) -> Command:
    """The command a client sent, or a ``ValueError`` saying what is wrong with it."""
    if not isinstance(document, dict) or set(document) != {"argv", "env", "umask", "path0"}:
        raise ValueError("a command holds argv, env, umask and path0, nothing else")
    argv, env, umask, path0 = document["argv"], document["env"], document["umask"], document["path0"]
    if not isinstance(argv, list) or not all(isinstance(word, str) for word in argv):
        raise ValueError("argv: not a list of strings")
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ValueError("env: not an object of strings")
    if not isinstance(umask, int) or isinstance(umask, bool) or not 0 <= umask <= 0o777:
        raise ValueError("umask: not a mode")
    if not isinstance(path0, str):
        raise ValueError("path0: not a string")
    return Command(tuple(argv), tuple(env.items()), umask, path0)


def run_in_worker(command: Command, fds: list[int], client_pid: int, plugins: Any) -> int:
    """In the forked worker: become the client's process as far as the command can tell, run it."""
    from lxcframe import syscalls

    syscalls.set_process_name("lxcframe")  # not the server's name: tools look the server up by it
    os.setsid()
    for target, fd in zip((0, 1, 2), fds[:3], strict=True):
        os.dup2(fd, target)
    os.fchdir(fds[3])
    for fd in fds:
        if fd > 2:
            os.close(fd)
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
