"""``exec --process FILE``: another process in a running container, through lxcframe's attach.

``process.json`` is the runtime-spec Process object: ``args``, ``env`` (the whole environment, nothing of
the caller's), ``cwd``, ``user.uid``/``user.gid``. The attach joins init's namespaces and cgroups and takes
the parts of the plan the container started with (capabilities, seccomp, LSM), as ``lxcframe attach``.
Without ``--detach`` the command waits and exits with the process's status; with it, it writes the
pid file and leaves: the process (the attach's static init, which runs the command and ends with its
status) outlives it and is reparented to the caller's subreaper, which reaps it.
"""

from __future__ import annotations

import json
import os
from typing import Any

import attrs

from lxcframe.oci.lifecycle import lxc_state, status
from lxcframe.oci.store import CREATED, RUNNING, OciError, Store


@attrs.frozen
class _Target:
    """What an attach asks of a container object: its name, lxcpath and plugins."""

    name: str
    lxcpath: str
    plugins: Any


@attrs.frozen
class ProcessSpec:
    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    uid: int
    gid: int
    terminal: bool


def read_process(path: str) -> ProcessSpec:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as err:
        raise OciError(f"{path}: {err}") from None

    def problem(why: str) -> OciError:
        return OciError(f"{path}: {why}")

    if not isinstance(data, dict):
        raise problem("not a Process object")
    args = data.get("args")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
        raise problem("args: a non-empty list of strings is required")
    env = data.get("env", [])
    if not isinstance(env, list) or not all(isinstance(e, str) and "=" in e for e in env):
        raise problem("env: a list of NAME=value strings is required")
    cwd = data.get("cwd", "/")
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        raise problem(f"cwd: {cwd!r} is not an absolute path")
    user = data.get("user", {}) or {}
    ids = []
    for field in ("uid", "gid"):
        value = user.get(field, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise problem(f"user.{field}: {value!r} is not an id")
        ids.append(value)
    return ProcessSpec(tuple(args), tuple(env), cwd, ids[0], ids[1], bool(data.get("terminal", False)))


def exec_process(store: Store, container_id: str, process_path: str, *, detach: bool, pid_file: str | None,
                 tty: bool, console_socket: str | None, plugins: Any) -> int:
    """Run the process; its exit status (0 once started with ``detach``)."""
    from lxcframe import attach
    from lxcframe.attach_options import attach_options

    state = store.read(container_id)
    current = status(store, state, plugins)
    if current not in (RUNNING, CREATED):
        raise OciError(f"cannot exec in a container that is {current}")
    spec = read_process(process_path)
    slave = -1
    if tty or spec.terminal:
        if console_socket is None:
            raise OciError("exec with a terminal needs --console-socket")
        from lxcframe.oci.console import container_pty, send_master

        master, slave, name = container_pty(state.pid)
        try:
            send_master(console_socket, name, master)
        except OSError:
            os.close(slave)
            raise
        finally:
            os.close(master)
    try:
        terminal = slave if slave >= 0 else None
        options = attach_options(clear_env=True, env=spec.env, uid=spec.uid, gid=spec.gid, cwd=spec.cwd,
                                 stdin=terminal, stdout=terminal, stderr=terminal)
        target = _Target(container_id, store.root, plugins)
        request = attach.prepare(target, lxc_state(store, state), spec.args, options)
        request = attrs.evolve(request, parent_death="" if detach else "SIGTERM")
        pid = attach._fork_command(plugins, request)
    except Exception as err:
        text = str(err)
        raise OciError(f"exec failed: {text.split(': attach failed: ', 1)[-1]}") from None
    finally:
        if slave >= 0:
            os.close(slave)  # the process has its own copies
    if pid_file:
        from lxcframe.oci.create import write_pid_file

        write_pid_file(pid_file, pid)
    if detach:
        return 0
    _, wait_status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code
