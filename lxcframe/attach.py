"""``attach``: run a command inside a running container's namespaces, cgroup and security context.

The attaching process joins every namespace of the container's init at once with a pidfd
(``setns(pidfd, flags)``), takes on the container's security context, and executes a sealed copy
of the static init (:mod:`lxcframe.sealed_init`), whose child is the first process inside the pid
namespace and executes the command.
A multi-threaded caller execs ``python -m lxcframe.attach`` instead of forking itself, and hands it
the :class:`AttachRequest` it prepared (state, parts, plugin selection, environment) in a sealed
memfd: the helper loads no plugin the caller disabled.

What an attach applies of the container (seccomp policy, capabilities, personality…) is the plan's
parts the container started with, which its monitor kept (:mod:`lxcframe.started_parts`): as runc
and crun keep a container's spec, the config is neither read nor planned again, so a config changed
or an fstab file removed since the start changes nothing here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from typing import Any, NoReturn

import attrs

from lxcframe import entering, sealed_init, started_parts, syscalls, transfer
from lxcframe.context import DEFAULT_PATH, AttachChildContext, AttachContext
from lxcframe.errors import ContainerError
from lxcframe.frozen import frozen_mapping
from lxcframe.sealed_init import sealed_init_fd
from lxcframe.spawning import (
    interpreter_environment,
    read_descriptor,
    runtime_environment,
    sealed_memfd,
    single_threaded,
)
from lxcframe.stage_runner import call_hook, describe
from lxcframe.start_request import MAX_REQUEST, PluginSelection, plugin_packages
from lxcframe.state import ContainerState

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


@attrs.frozen
class AttachRequest:
    """Everything the attaching process needs, prepared by the caller (which ran the host hooks)."""

    name: str
    lxcpath: str
    plugins: PluginSelection
    state: ContainerState
    init_pid: int
    argv: tuple[str, ...]
    uid: int
    gid: int
    #: The command's whole environment (lxc-attach keeps the caller's unless it is cleared).
    env: Mapping[str, str] = attrs.field(converter=frozen_mapping)
    cgroup_procs: tuple[str, ...]
    #: The parts of the plan the container started with (``lxcframe_plan``: capabilities, the compiled
    #: seccomp policy…), as its monitor kept them.
    parts: tuple[Any, ...]
    #: Frozen attrs messages the host-side attach hooks hand their child side, one per class.
    messages: tuple[Any, ...]
    pass_fds: tuple[int, ...]


def attach_wait(container: Any, argv: tuple[str, ...], *, clear_env: bool, uid: int | None, gid: int | None,
                env: tuple[str, ...], pass_fds: tuple[int, ...]) -> int:
    """``Container.attach_wait``: by name through the server for a multi-threaded caller, else here."""
    options: dict[str, Any] = {"clear_env": clear_env, "uid": uid, "gid": gid, "env": env, "pass_fds": pass_fds}
    if single_threaded():
        return attach(container, container._running_state(), argv, **options)
    from lxcframe.handoffs import quick_handoffs

    with quick_handoffs():
        code = attach_by_name(container, argv, **options)
    if code is not None:
        return code
    return attach(container, container._running_state(), argv, **options)


def attach(container: Any, state: Any, argv: tuple[str, ...], *, clear_env: bool, uid: int | None,
           gid: int | None, env: tuple[str, ...], pass_fds: tuple[int, ...] = ()) -> int:
    request = prepare(container, state, argv, clear_env=clear_env, uid=uid, gid=gid, env=env, pass_fds=pass_fds)
    plugins = container.plugins
    if not single_threaded():
        # Never a fork of this interpreter: a fresh interpreter of ours (``attach_wait`` tried the
        # server's worker, by name, first).
        return _run_helper(request)
    return _attach_forked(plugins, request)


def prepare(container: Any, state: Any, argv: tuple[str, ...], *, clear_env: bool, uid: int | None,
            gid: int | None, env: tuple[str, ...], pass_fds: tuple[int, ...] = ()) -> AttachRequest:
    """What an attach runs: the start's parts, what the plugins' attach hooks hand their child side,
    the command's environment (the caller's unless cleared, as lxc-attach)."""
    if not argv:
        raise ContainerError("attach needs a command")
    plugins = container.plugins
    parts = started_parts.read(container.lxcpath, container.name, plugin_packages(plugins))
    ctx = AttachContext(state, argv, parts)
    call_hook(plugins, "lxcframe_attach", ctx=ctx)
    request = AttachRequest(
        name=container.name, lxcpath=container.lxcpath, plugins=PluginSelection.of(plugins), state=state,
        init_pid=state.init_pid, argv=argv, uid=0 if uid is None else uid, gid=0 if gid is None else gid,
        env=_environment(clear_env, env, uid or 0),
        cgroup_procs=tuple(ctx.cgroup_procs), parts=parts, messages=ctx.handover.messages(),
        pass_fds=pass_fds,
    )
    return request


def attach_by_name(container: Any, argv: tuple[str, ...], *, clear_env: bool, uid: int | None, gid: int | None,
                   env: tuple[str, ...], pass_fds: tuple[int, ...]) -> int | None:
    """A multi-threaded caller's whole attach, handed by name to a worker of the warm server; ``None``
    when the caller is single-threaded or no server of its installation takes it.

    Every system call such a caller makes gives up the GIL, and taking it back from threads busy in
    Python costs a switch interval (5 ms): reading the state and the start's parts, running the
    attach hooks and encoding the request here took seconds. By name, the caller connects, sends
    and receives; the worker does the rest, and errors of the preparation are raised here as before.
    """
    if single_threaded():
        return None
    from lxcframe import supervisor_client as server

    plugins = container.plugins
    if plugins.has_extras or not server.enabled(container.server) or len(pass_fds) > server.MAX_PASSED_FDS:
        return None
    named = {"lxcpath": container.lxcpath, "name": container.name, "argv": list(argv), "clear_env": clear_env,
             "uid": uid, "gid": gid, "env": list(env), "pass_fds": list(pass_fds), "environ": dict(os.environ),
             "plugins": transfer.wrap(PluginSelection.of(plugins))}
    return server.submit_attach_by_name(named, server.fingerprint(plugins), pass_fds)


def _run_helper(request: AttachRequest) -> int:
    """``python -m lxcframe.attach --request-fd N``: the request in a sealed memfd, the helper's own
    environment only what the runtime reads (the command's is in the request)."""
    request_fd = sealed_memfd("lxcframe-attach", transfer.dumps(request))
    try:
        helper = subprocess.run(
            [sys.executable, "-m", "lxcframe.attach", "--request-fd", str(request_fd)], check=False,
            pass_fds=(*request.pass_fds, request_fd), env=interpreter_environment(runtime_environment()),
        )
    finally:
        os.close(request_fd)
    return helper.returncode


def _attach_forked(plugins: Any, request: AttachRequest) -> int:
    init_fd = sealed_init_fd()  # made on the host, before anything enters the container
    foreground = _foreground_group()
    errors_r, errors_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(errors_r)
        try:
            _enter_and_exec(plugins, request, errors_w, init_fd)
        except BaseException as err:
            message = f"cannot execute {request.argv[0]}: {err.strerror}" if isinstance(err, OSError) \
                else describe(err)
            with contextlib.suppress(OSError):
                os.write(errors_w, message.encode())
        finally:
            os._exit(127)
    os.close(errors_w)
    try:
        # EOF when the static init executed (the pipe is close-on-exec) or the child gave up.
        with os.fdopen(errors_r, "rb") as pipe:
            message = pipe.read().decode(errors="replace")
        _, status = os.waitpid(pid, 0)
    finally:
        _restore_foreground(foreground)
    if message:
        raise ContainerError(f"{request.name}: attach failed: {message}")
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _enter_and_exec(plugins: Any, request: AttachRequest, errors_w: int, init_fd: int) -> NoReturn:
    """Join the container, take on its security context, and execute the sealed static init.

    This process joins the pid namespace too, but setns(2) puts only its children there: it never
    appears in the container itself. The one child it gets is tini's, a copy of the sealed init
    that executes the command; so no Python process (mapping host libraries) is ever visible to
    the container, privileged or not.
    """
    from lxcframe.child import become, preload

    preload()  # after setns the container's files replace the host's: import nothing lazily
    for procs in request.cgroup_procs:
        with open(procs, "w") as handle:
            handle.write("0")  # "0" moves the writing process itself
    proc_self = os.open("/proc/self", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    pidfd = syscalls.pidfd_open(request.init_pid)
    flags = namespaces_to_join(request.init_pid)
    syscalls.setns(pidfd, flags)
    os.close(pidfd)
    call_hook(plugins, "lxcframe_attach_child",
              ctx=AttachChildContext(request.state, request.parts, request.messages, proc_self))
    os.close(proc_self)
    entering.enter_cwd("/")
    if request.gid != os.getgid() or request.uid != os.getuid():
        become(request.uid, request.gid)
    argv, env = list(request.argv), dict(request.env)
    if entering.resolve_command(argv[0], env) is None:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory")
    # As lxc-attach: the caller's descriptors stay behind, but for stdio and those passed on purpose.
    entering.close_descriptors({errors_w, init_fd, *request.pass_fds})
    entering.default_signals()
    for fd in request.pass_fds:
        os.set_inheritable(fd, True)
    # The attaching process (a command line, a library caller, a worker of the server) may die first,
    # killed with its terminal or its client: the command then gets SIGTERM, as lxc-attach's would
    # with its session, rather than running on unseen until the container stops.
    os.execve(init_fd, sealed_init.init_argv(argv, parent_death="SIGTERM"), env)


def _foreground_group() -> int | None:
    """Our process group when it owns the terminal on stdin (tini gives the terminal to its child)."""
    try:
        group = os.tcgetpgrp(0)
    except OSError:
        return None
    return group if group == os.getpgrp() else None


def _restore_foreground(group: int | None) -> None:
    if group is None:
        return
    # From a background group tcsetpgrp raises SIGTTOU unless it is blocked, as a shell does.
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
    try:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(0, group)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def decode_request(encoded: Any) -> tuple[AttachRequest, Any]:
    """The attach request in ``encoded`` (a parsed :func:`transfer.wrap`) and the plugins it names, or a
    :class:`transfer.TransferError`."""
    # The plugin selection first: the parts may hold values of those plugins' classes.
    selection = transfer.decode(transfer.encoded_field(encoded, "plugins", "an attach request"), PluginSelection)
    plugins = selection.load(runtime_environment())
    return transfer.decode(encoded, AttachRequest, plugin_packages(plugins)), plugins


def run_request(plugins: Any, request: AttachRequest) -> int:
    """The attach of a helper or a server's worker: its exit status, a failure said on stderr (status 1)."""
    try:
        return _attach_forked(plugins, request)
    except ContainerError as err:
        sys.stderr.write(f"{err}\n")
        return 1


def _helper_main(argv: list[str]) -> int:
    """``python -m lxcframe.attach --request-fd N``: the attach of a multi-threaded caller with no server."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lxcframe.attach")
    parser.add_argument("--request-fd", type=int, required=True)
    options = parser.parse_args(argv)
    try:
        request, plugins = decode_request(transfer.parse(read_descriptor(options.request_fd, MAX_REQUEST)))
    except (transfer.TransferError, ValueError, OSError) as err:
        sys.stderr.write(f"attach: malformed request: {err}\n")
        return 1
    return run_request(plugins, request)


if __name__ == "__main__":
    # Run as lxcframe.attach, not __main__: the request names its class by the module's real name.
    from lxcframe import attach as _attach

    raise SystemExit(_attach._helper_main(sys.argv[1:]))
