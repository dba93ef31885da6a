"""``attach``: run a command inside a running container's namespaces, cgroup and security context.

The attaching process joins every namespace of the container's init at once with a pidfd
(``setns(pidfd, flags)``), then forks so that the command really is inside the pid namespace.
A multi-threaded caller execs ``python -m lxcframe.attach`` instead of forking itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from typing import Any

from lxcframe import syscalls
from lxcframe.context import DEFAULT_PATH, AttachChildContext, AttachContext
from lxcframe.errors import ContainerError
from lxcframe.launcher import single_threaded
from lxcframe.stage_runner import call_hook, describe

_NAMESPACES = (
    ("user", syscalls.CLONE_NEWUSER), ("mnt", syscalls.CLONE_NEWNS), ("pid", syscalls.CLONE_NEWPID),
    ("uts", syscalls.CLONE_NEWUTS), ("ipc", syscalls.CLONE_NEWIPC), ("net", syscalls.CLONE_NEWNET),
    ("cgroup", syscalls.CLONE_NEWCGROUP),
)


def namespaces_to_join(pid: int) -> int:
    """The namespaces where ``pid`` differs from us (joining our own user ns would fail)."""
    flags = 0
    for name, flag in _NAMESPACES:
        try:
            if os.stat(f"/proc/{pid}/ns/{name}").st_ino != os.stat(f"/proc/self/ns/{name}").st_ino:
                flags |= flag
        except FileNotFoundError:
            continue
    return flags


def _environment(clear: bool, extra: tuple[str, ...], uid: int) -> dict[str, str]:
    env = {} if clear else dict(os.environ)
    if clear:
        env["PATH"] = DEFAULT_PATH
        env["HOME"] = "/root" if uid == 0 else "/"
        if "TERM" in os.environ:
            env["TERM"] = os.environ["TERM"]
    env["container"] = "lxc"
    for item in extra:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def attach(container: Any, state: Any, argv: tuple[str, ...], *, clear_env: bool, uid: int | None,
           gid: int | None, env: tuple[str, ...]) -> int:
    if not argv:
        raise ContainerError("attach needs a command")
    ctx = AttachContext(state, container.load_config(), argv)
    call_hook(container.plugins, "lxcframe_attach", ctx=ctx)
    request = {
        "init_pid": state.init_pid, "argv": list(argv), "uid": 0 if uid is None else uid,
        "gid": 0 if gid is None else gid, "env": _environment(clear_env, env, uid or 0),
        "cgroup_procs": ctx.cgroup_procs, "data": ctx.child_data,
    }
    if not single_threaded():
        helper = subprocess.run([sys.executable, "-m", "lxcframe.attach", container.name, container.lxcpath,
                                 json.dumps(request)], check=False)
        return helper.returncode
    return _attach_forked(container, state, request)


def _attach_forked(container: Any, state: Any, request: dict[str, Any]) -> int:
    config = container.load_config()
    errors_r, errors_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(errors_r)
        code = 1
        try:
            code = _enter_and_run(container, state, config, request, errors_w)
        except BaseException as err:
            with contextlib.suppress(OSError):
                os.write(errors_w, describe(err).encode())
        finally:
            os._exit(code)
    os.close(errors_w)
    with os.fdopen(errors_r, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if message:
        raise ContainerError(f"{container.name}: attach failed: {message}")
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _enter_and_run(container: Any, state: Any, config: Any, request: dict[str, Any], errors_w: int) -> int:
    from lxcframe.child import preload

    preload()  # after setns the container's files replace the host's: import nothing lazily
    for procs in request["cgroup_procs"]:
        with open(procs, "w") as handle:
            handle.write("0")  # "0" moves the writing process itself
    pidfd = syscalls.pidfd_open(request["init_pid"])
    flags = namespaces_to_join(request["init_pid"])
    syscalls.setns(pidfd, flags)
    os.close(pidfd)
    pid = os.fork()  # only a child is inside the joined pid namespace
    if pid == 0:
        try:
            call_hook(container.plugins, "lxcframe_attach_child",
                      ctx=AttachChildContext(state, config, request["data"]))
            os.chdir("/")
            if request["gid"] != os.getgid() or request["uid"] != os.getuid():
                with contextlib.suppress(PermissionError):
                    os.setgroups([])
                os.setresgid(request["gid"], request["gid"], request["gid"])
                os.setresuid(request["uid"], request["uid"], request["uid"])
            argv = request["argv"]
            os.execvpe(argv[0], argv, request["env"])
        except BaseException as err:
            message = f"cannot execute {request['argv'][0]}: {err.strerror}" if isinstance(err, OSError) \
                else describe(err)
            with contextlib.suppress(OSError):
                os.write(errors_w, message.encode())
        os._exit(127)
    os.close(errors_w)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _helper_main(argv: list[str]) -> int:
    from lxcframe.container import Container

    name, lxcpath, raw = argv
    request = json.loads(raw)
    container = Container(name, lxcpath)
    state = container.current_state()
    if state is None:
        sys.stderr.write(f"{name}: not running\n")
        return 1
    try:
        return _attach_forked(container, state, request)
    except ContainerError as err:
        sys.stderr.write(f"{err}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(_helper_main(sys.argv[1:]))
