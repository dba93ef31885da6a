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
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

import attrs

from lxcframe import entering, sealed_init, started_parts, syscalls, transfer
from lxcframe.attach_options import AttachOptions
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
    ("cgroup", syscalls.CLONE_NEWCGROUP), ("time", syscalls.CLONE_NEWTIME),
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


def _environment(options: AttachOptions, uid: int, configured: tuple[str, ...]) -> dict[str, str]:
    """The attached process's environment as lxc-attach makes it: the caller's (or, cleared, only the
    variables kept and LXC's default PATH), ``container=lxc``, the container's ``lxc.environment``,
    then the variables asked for."""
    if options.clear_env:
        env = {name: os.environ[name] for name in options.keep_env if name in os.environ}
        env.setdefault("PATH", DEFAULT_PATH)
        env.setdefault("HOME", "/root" if uid == 0 else "/")
        if "TERM" in os.environ:
            env.setdefault("TERM", os.environ["TERM"])
    else:
        env = dict(os.environ)
    env["container"] = "lxc"
    for item in configured:
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
        elif key in os.environ:  # a bare NAME passes the caller's value through, as at the start
            env[key] = os.environ[key]
    for item in options.env:
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
    #: stdin, stdout, stderr of the attached process: descriptors of the attaching process (-1: its own).
    stdio: tuple[int, int, int] = (-1, -1, -1)
    cwd: str = "/"
    #: ``CLONE_NEW*`` flags of the namespaces to join (-1: every one of the container's).
    namespaces: int = -1
    #: personality(2) of the attached process (-1: the container's ``lxc.arch``).
    personality: int = -1
    #: The signal the command gets when the attaching process's parent dies ("": none, the command
    #: outlives it: an OCI ``exec --detach``).
    parent_death: str = "SIGTERM"


def attach_wait(container: Any, run: Sequence[str] | Callable[[], Any], options: AttachOptions) -> int:
    """``Container.attach_wait``: the exit status of ``run`` (128 + N when killed by signal N).

    A multi-threaded caller's plain command goes by name to a worker of the server; everything else is
    attached from here (:func:`spawn`) and waited for.
    """
    if not callable(run) and options.plain and not single_threaded():
        from lxcframe.handoffs import quick_handoffs

        with quick_handoffs():
            code = attach_by_name(container, tuple(run), options)
        if code is not None:
            return code
    foreground = _foreground_group()
    try:
        pid = spawn(container, run, options)
        _, status = os.waitpid(pid, 0)
    finally:
        _restore_foreground(foreground)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def spawn(container: Any, run: Sequence[str] | Callable[[], Any], options: AttachOptions) -> int:
    """``Container.attach``: start ``run`` in the running container; its pid, a child of the caller's.

    A command is executed by a copy of the sealed static init in the attaching process itself, which
    this process forked (or, from a multi-threaded caller, spawned: a fresh interpreter of ours), so
    that its pid is the one returned. A Python callable needs a fork of this interpreter: the attaching
    process forks it again into the container's pid namespace as this process's child.
    """
    state = container._running_state()
    if callable(run):
        if not single_threaded():
            raise ContainerError(f"{container.name}: attaching a Python callable forks this interpreter, which "
                                 "has other threads; pass a command, or call from a single-threaded process")
        request = prepare(container, state, ("<callable>",), options)
        return _fork_callable(container.plugins, request, run)
    request = prepare(container, state, tuple(run), options)
    if not single_threaded():
        return _spawn_helper(request)
    return _fork_command(container.plugins, request)


def prepare(container: Any, state: Any, argv: tuple[str, ...], options: AttachOptions) -> AttachRequest:
    """What an attach runs: the start's parts, what the plugins' attach hooks hand their child side,
    the command's environment (the caller's unless cleared, as lxc-attach)."""
    if not argv:
        raise ContainerError("attach needs a command")
    for fd in (*options.stdio, *options.pass_fds):
        if fd >= 0:
            try:
                os.fstat(fd)
            except OSError:
                raise ContainerError(f"attach: descriptor {fd} is not open in this process") from None
    plugins = container.plugins
    parts = started_parts.read(container.lxcpath, container.name, plugin_packages(plugins))
    ctx = AttachContext(state, argv, parts)
    call_hook(plugins, "lxcframe_attach", ctx=ctx)
    uid = 0 if options.uid is None else options.uid
    request = AttachRequest(
        name=container.name, lxcpath=container.lxcpath, plugins=PluginSelection.of(plugins), state=state,
        init_pid=state.init_pid, argv=argv, uid=uid, gid=0 if options.gid is None else options.gid,
        env=_environment(options, uid, _configured_environment(parts)),
        cgroup_procs=tuple(ctx.cgroup_procs), parts=parts, messages=ctx.handover.messages(),
        pass_fds=options.pass_fds, stdio=options.stdio, cwd=options.cwd, namespaces=options.namespaces,
        personality=options.personality,
    )
    return request


def _configured_environment(parts: tuple[Any, ...]) -> tuple[str, ...]:
    """``lxc.environment`` as the container's init got it (the core plugin's part of the start)."""
    from lxcframe.context import find_part
    from lxcframe.plugins.core import CorePart

    core = find_part(parts, CorePart)
    return core.environment if core is not None else ()


def attach_by_name(container: Any, argv: tuple[str, ...], options: AttachOptions) -> int | None:
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
    pass_fds = options.pass_fds
    if plugins.has_extras or not server.enabled(container.server) or len(pass_fds) > server.MAX_PASSED_FDS:
        return None
    named = {"lxcpath": container.lxcpath, "name": container.name, "argv": list(argv),
             "clear_env": options.clear_env, "uid": options.uid, "gid": options.gid, "env": list(options.env),
             "pass_fds": list(pass_fds), "environ": dict(os.environ),
             "plugins": transfer.wrap(PluginSelection.of(plugins))}
    return server.submit_attach_by_name(named, server.fingerprint(plugins), pass_fds)


def _spawn_helper(request: AttachRequest) -> int:
    """From a multi-threaded caller: ``python -m lxcframe.attach --request-fd N --errors-fd M``, spawned
    (no fork of this interpreter), which enters the container and becomes the sealed init itself; its pid.

    The request is in a sealed memfd; the helper's own environment is only what the runtime reads (the
    command's is in the request). The descriptors the command gets keep their numbers.
    """
    request_fd = sealed_memfd("lxcframe-attach", transfer.dumps(request))
    errors_r, errors_w = os.pipe2(os.O_CLOEXEC)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, fd, fd) for fd in {request_fd, errors_w, *request.pass_fds,
                                                             *(fd for fd in request.stdio if fd >= 0)}]
        pid = os.posix_spawn(sys.executable, [sys.executable, "-m", "lxcframe.attach", "--request-fd",
                                              str(request_fd), "--errors-fd", str(errors_w)],
                             interpreter_environment(runtime_environment()), file_actions=actions)
    finally:
        os.close(request_fd)
        os.close(errors_w)
    return _started(request.name, pid, errors_r)


def _started(name: str, pid: int, errors_r: int) -> int:
    """``pid`` once it executed (EOF on the close-on-exec error pipe); what it said, raised, if it gave up."""
    with os.fdopen(errors_r, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    if message:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        raise ContainerError(f"{name}: attach failed: {message}")
    return pid


def _failure(err: BaseException, argv0: str) -> str:
    return f"cannot execute {argv0}: {err.strerror}" if isinstance(err, OSError) and err.strerror else describe(err)


def _fork_command(plugins: Any, request: AttachRequest) -> int:
    """Fork the attaching process, which becomes the sealed init running the command; its pid."""
    init_fd = sealed_init_fd()  # made on the host, before anything enters the container
    errors_r, errors_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(errors_r)
        try:
            _enter_and_exec(plugins, request, errors_w, init_fd)
        except BaseException as err:
            with contextlib.suppress(OSError):
                os.write(errors_w, _failure(err, request.argv[0]).encode())
        finally:
            os._exit(127)
    os.close(errors_w)
    return _started(request.name, pid, errors_r)


def _fork_callable(plugins: Any, request: AttachRequest, run: Callable[[], Any]) -> int:
    """Fork an attaching process, which joins the container and forks ``run``'s process into its pid
    namespace as our child (CLONE_PARENT); that process's pid.

    The callable runs Python inside the container, as python3-lxc's does: with every descriptor of the
    caller (fork semantics: its open files are the point), but not dumpable, so that the container's
    processes cannot ptrace it or read its memory, environment or descriptors through /proc.
    """
    import traceback  # noqa: F401  (inside, the container's files replace the host's: no import there)

    from lxcframe.syscalls import forking

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()  # else the fork's copy of what is buffered would be written twice
    errors_r, errors_w = os.pipe2(os.O_CLOEXEC)
    born_r, born_w = os.pipe2(os.O_CLOEXEC)
    intermediate = os.fork()
    if intermediate == 0:
        os.close(errors_r)
        os.close(born_r)
        try:
            forking.ready()
            host_proc = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            _join(request)
            child, _pidfd = forking.fork_as_sibling()
            if child == 0:
                os.close(born_w)
                _run_callable(plugins, request, run, errors_w, host_proc)
            os.write(born_w, str(child).encode())
            os._exit(0)
        except BaseException as err:
            with contextlib.suppress(OSError):
                os.write(errors_w, _failure(err, "the callable").encode())
            os._exit(127)
    os.close(errors_w)
    os.close(born_w)
    with os.fdopen(born_r, "rb") as pipe:
        born = pipe.read()
    os.waitpid(intermediate, 0)
    if not born:
        with os.fdopen(errors_r, "rb") as errors:
            raise ContainerError(f"{request.name}: attach failed: {errors.read().decode(errors='replace')}")
    return _started(request.name, int(born), errors_r)


def _run_callable(plugins: Any, request: AttachRequest, run: Callable[[], Any], errors_w: int,
                  host_proc: int) -> NoReturn:
    """In ``run``'s process, inside the container's pid namespace: its security context, then ``run``."""
    code = 255
    try:
        syscalls.prctl(syscalls.PR_SET_DUMPABLE, 0)
        # This process's own /proc entry through the host's /proc: the container's /proc is the
        # container's to forge.
        proc_self = os.open("self", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=host_proc)
        os.close(host_proc)
        _take_context(plugins, request, proc_self, executes=False)
        syscalls.prctl(syscalls.PR_SET_DUMPABLE, 0)  # a change of ids resets it
        # A fresh process's dispositions, not the caller's (Python's ignored SIGPIPE and SIGXFSZ would
        # reach whatever the callable executes); SIGINT still raises KeyboardInterrupt.
        entering.default_signals()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _place_stdio(request.stdio)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.write(errors_w, _failure(err, "the callable").encode())
        os._exit(127)
    os.close(errors_w)  # the caller's attach returns: run is on its own from here
    try:
        result = run()
        code = 0 if result is None else int(result) & 0xFF
    except SystemExit as ended:
        code = ended.code if isinstance(ended.code, int) else (0 if ended.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _join(request: AttachRequest) -> None:
    """Move into the container's cgroups and join its namespaces (those asked for)."""
    from lxcframe.child import preload

    preload()  # after setns the container's files replace the host's: import nothing lazily
    for procs in request.cgroup_procs:
        with open(procs, "w") as handle:
            handle.write("0")  # "0" moves the writing process itself
    pidfd = syscalls.pidfd_open(request.init_pid)
    flags = namespaces_to_join(request.init_pid)
    if request.namespaces != -1:
        flags &= request.namespaces
    if flags:
        syscalls.setns(pidfd, flags)
    os.close(pidfd)


def _take_context(plugins: Any, request: AttachRequest, proc_self: int, *, executes: bool) -> None:
    """The container's security context (the plugins' attach hooks), working directory and ids;
    ``executes``: a command is executed next (not a callable run)."""
    from lxcframe.child import become

    if request.personality != -1:
        syscalls.set_personality(request.personality)
    call_hook(plugins, "lxcframe_attach_child", ctx=AttachChildContext(
        request.state, request.parts, request.messages, proc_self,
        personality=None if request.personality == -1 else request.personality, executes=executes))
    os.close(proc_self)
    entering.enter_cwd(request.cwd)
    if request.gid != os.getgid() or request.uid != os.getuid():
        become(request.uid, request.gid)


def _place_stdio(stdio: tuple[int, int, int]) -> None:
    for target, fd in enumerate(stdio):
        if fd >= 0 and fd != target:
            os.dup2(fd, target)


def _enter_and_exec(plugins: Any, request: AttachRequest, errors_w: int, init_fd: int) -> NoReturn:
    """Join the container, take on its security context, and execute the sealed static init.

    This process joins the pid namespace too, but setns(2) puts only its children there: it never
    appears in the container itself. The one child it gets is tini's, a copy of the sealed init
    that executes the command; so no Python process (mapping host libraries) is ever visible to
    the container, privileged or not.
    """
    proc_self = os.open("/proc/self", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    _join(request)
    _take_context(plugins, request, proc_self, executes=True)
    argv, env = list(request.argv), dict(request.env)
    if entering.resolve_command(argv[0], env) is None:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory")
    _place_stdio(request.stdio)
    # As lxc-attach: the caller's descriptors stay behind, but for stdio and those passed on purpose.
    entering.close_descriptors({errors_w, init_fd, *request.pass_fds})
    entering.default_signals()
    for fd in request.pass_fds:
        os.set_inheritable(fd, True)
    # The attaching process (a command line, a library caller, a worker of the server) may die first,
    # killed with its terminal or its client: the command then gets SIGTERM, as lxc-attach's would
    # with its session, rather than running on unseen until the container stops.
    os.execve(init_fd, sealed_init.init_argv(argv, parent_death=request.parent_death or None), env)


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
    """The attach of a server's worker: its exit status, a failure said on stderr (status 1)."""
    foreground = _foreground_group()
    try:
        pid = _fork_command(plugins, request)
        _, status = os.waitpid(pid, 0)
    except ContainerError as err:
        sys.stderr.write(f"{err}\n")
        return 1
    finally:
        _restore_foreground(foreground)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _helper_main(argv: list[str]) -> int:
    """``python -m lxcframe.attach --request-fd N --errors-fd M``: a multi-threaded caller's attach; this
    process enters the container and becomes the sealed init (it is the pid the caller returns)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lxcframe.attach")
    parser.add_argument("--request-fd", type=int, required=True)
    parser.add_argument("--errors-fd", type=int, required=True)
    options = parser.parse_args(argv)
    os.set_inheritable(options.errors_fd, False)
    request: AttachRequest | None = None
    try:
        request, plugins = decode_request(transfer.parse(read_descriptor(options.request_fd, MAX_REQUEST)))
        init_fd = sealed_init_fd()
        _enter_and_exec(plugins, request, options.errors_fd, init_fd)
    except (transfer.TransferError, ValueError) as err:
        message = f"malformed request: {err}"
    except BaseException as err:
        message = _failure(err, request.argv[0] if request is not None else "the command")
    with contextlib.suppress(OSError):
        os.write(options.errors_fd, message.encode())
    return 127


if __name__ == "__main__":
    # Run as lxcframe.attach, not __main__: the request names its class by the module's real name.
    from lxcframe import attach as _attach

    raise SystemExit(_attach._helper_main(sys.argv[1:]))
