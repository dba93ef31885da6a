"""A bundle's ``hooks`` (runtime-spec config.md, "POSIX-platform Hooks"), run by lxcframe-oci at the
points runtime.md's lifecycle names, as runc runs them.

Every hook is executed as ``execve(path, args, env)`` with the container's state (runtime-spec
``state``: ``ociVersion``, ``id``, ``status``, ``pid``, ``bundle``, ``annotations``) on its stdin; a
``timeout`` kills it (its process group) and fails the step. Without ``env`` a hook gets the
environment of the process that runs it: the runtime's own for the hooks run on the host, the
container process's for those init runs, as runc's init (which clears its environment and takes
``process.env``): nothing of the host's environment reaches into the container.

Where each point runs:

* ``prestart`` (deprecated) then ``createRuntime``: in the runtime's namespaces, by ``create`` (the
  monitor of the start), once init made the container's namespaces and mounts, before its
  ``pivot_root``. Init asks for them from the ``pre-pivot`` stage and waits for the answer.
* ``createContainer``: by init in the container's mount namespace, right after, before
  ``pivot_root``; paths resolve in the runtime's view (the host's tree is still there), the working
  directory is the rootfs, as runc's.
* ``startContainer``: by init once ``start`` opened the exec fifo, before the user's process is
  executed; paths resolve in the container. Init tells ``start`` how they went through the fifo.
* ``poststart``: by ``start``, once init went on to execute the process; a failure is a warning.
* ``poststop``: by ``delete``, once the container's directory is gone; a failure is a warning.

A failure of a hook before the user's process fails ``create`` (or ``start``) and the start unwinds.
The list is saved in the container's directory (:data:`HOOKS_FILE`) for ``start`` and ``delete``.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from lxcframe.errors import StageError
from lxcframe.hooks import hookimpl
from lxcframe.oci.store import OCI_VERSION, OciError, OciState

if TYPE_CHECKING:
    from lxcframe.context import ChildContext, HostContext

HOOKS_FILE = "hooks.json"
#: The spec's hook names, in the order they run.
HOOK_NAMES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
#: The event init logs when the runtime's namespaces are to run prestart and createRuntime.
RUNTIME_HOOKS = "oci hooks: createRuntime"
#: What init writes on the exec fifo: go on (what ``start`` waits for), hooks running (wait on),
#: failed (the reason follows).
GO, HOOKS_RUNNING, FAILED = b"0", b".", b"1"


@attrs.frozen
class Hook:
    """One hook of the bundle: ``args[0]`` is its ``argv[0]`` (the path when there are no args)."""

    path: str
    args: tuple[str, ...] = ()
    #: Exactly the hook's environment; None: the environment of the process that runs it.
    env: tuple[str, ...] | None = None
    #: Seconds it may run; None: no limit.
    timeout: int | None = None


@attrs.frozen
class BundleHooks:
    """The bundle's hooks by the spec's name (:data:`HOOK_NAMES`)."""

    by_name: tuple[tuple[str, tuple[Hook, ...]], ...] = ()

    def of(self, name: str) -> tuple[Hook, ...]:
        return next((hooks for each, hooks in self.by_name if each == name), ())

    def __bool__(self) -> bool:
        return any(hooks for _, hooks in self.by_name)

    def encode(self) -> dict[str, Any]:
        return {name: [attrs.asdict(hook) for hook in hooks] for name, hooks in self.by_name}

    @classmethod
    def decode(cls, data: dict[str, Any]) -> BundleHooks:
        return cls(tuple((name, tuple(_hook(item) for item in data[name])) for name in HOOK_NAMES if name in data))


def _hook(item: dict[str, Any]) -> Hook:
    env = item.get("env")
    return Hook(item["path"], tuple(item.get("args") or ()), None if env is None else tuple(env), item.get("timeout"))


def save(directory: str, hooks: BundleHooks) -> None:
    with open(os.path.join(directory, HOOKS_FILE), "w", encoding="utf-8") as handle:
        json.dump(hooks.encode(), handle)


def load(directory: str) -> BundleHooks:
    """The hooks saved by ``create``; none for a container without (or a create that did not get there)."""
    try:
        with open(os.path.join(directory, HOOKS_FILE), encoding="utf-8") as handle:
            return BundleHooks.decode(json.load(handle))
    except FileNotFoundError:
        return BundleHooks()


def state_document(container_id: str, status: str, pid: int, bundle: str,
                   annotations: dict[str, str]) -> dict[str, Any]:
    """The runtime-spec state a hook reads on stdin; as runc's, without a pid once there is none and
    without empty annotations."""
    document: dict[str, Any] = {"ociVersion": OCI_VERSION, "id": container_id, "status": status}
    if pid:
        document["pid"] = pid
    document["bundle"] = bundle
    if annotations:
        document["annotations"] = dict(annotations)
    return document


class HookFailed(Exception):
    """A hook exited non-zero, could not be executed or ran past its timeout."""


def run_hook(name: str, index: int, hook: Hook, state: dict[str, Any], *, cwd: str | None = None,
             default_env: dict[str, str] | None = None) -> None:
    """Execute ``hook`` with ``state`` on its stdin; :class:`HookFailed` says why it failed."""
    what = f"{name} hook #{index} ({hook.path})"
    env = dict(item.partition("=")[::2] for item in hook.env) if hook.env is not None else default_env
    try:
        # A process group of its own: a timeout ends what the hook started too.
        process = subprocess.Popen(list(hook.args) or [hook.path], executable=hook.path, env=env, cwd=cwd,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   process_group=0)
    except OSError as err:
        raise HookFailed(f"{what}: {err.strerror}") from None
    try:
        # A hook that closes its stdin unread is an EPIPE here, which communicate takes: the runtime
        # ignores SIGPIPE (as Python does), and init, its pid namespace's pid 1, gets no default one.
        stdout, stderr = process.communicate(json.dumps(state).encode(), timeout=hook.timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise HookFailed(f"{what}: ran past its timeout of {hook.timeout} s") from None
    except BaseException:
        _kill_group(process)
        raise
    if process.returncode != 0:
        status = (f"killed by {_signal_name(-process.returncode)}" if process.returncode < 0
                  else f"exit status {process.returncode}")
        output = (stderr or stdout).decode(errors="replace").strip()
        last = f": {output.splitlines()[-1]}" if output else ""
        raise HookFailed(f"{what}: {status}{last}")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:  # a real-time signal
        return f"signal {number}"


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    # Its pipes may be held by what it started in another group: do not wait on them.
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    process.wait()


def run_all(hooks: BundleHooks, names: tuple[str, ...], state: dict[str, Any], **options: Any) -> None:
    """The hooks of ``names`` in order; the first failure raises."""
    for name in names:
        for index, hook in enumerate(hooks.of(name)):
            run_hook(name, index, hook, state, **options)


def warn_all(hooks: BundleHooks, name: str, state: dict[str, Any]) -> None:
    """poststart and poststop: a failure is a warning and the next hook still runs (runtime-spec)."""
    for index, hook in enumerate(hooks.of(name)):
        try:
            run_hook(name, index, hook, state)
        except HookFailed as err:
            print(f"lxcframe-oci: warning: {err}", file=sys.stderr)


# --- the lifecycle's points ------------------------------------------------------------------------


class OciHooks:
    """An in-process plugin of ``create``: createRuntime (asked of ``create``, the monitor) and
    createContainer at init's ``pre-pivot`` stage; :meth:`start_container` is called by the exec fifo's
    plugin once ``start`` opened it.

    The answer to init's request goes through a pipe made before the fork (``create`` reads init's
    records on the start channel; init waits on the pipe).
    """

    def __init__(self, container_id: str) -> None:
        self.container_id = container_id
        self.hooks = BundleHooks()
        self.bundle = ""
        self.annotations: dict[str, str] = {}
        self.answer_r, self.answer_w = os.pipe2(os.O_CLOEXEC)

    def configure(self, hooks: BundleHooks, bundle: str, annotations: dict[str, str]) -> None:
        """The bundle's hooks, once it is read (after the plugins it is read with, this one among them)."""
        self.hooks = hooks
        self.bundle = bundle
        self.annotations = dict(annotations)

    def state(self, status: str, pid: int) -> dict[str, Any]:
        return state_document(self.container_id, status, pid, self.bundle, self.annotations)

    def close(self) -> None:
        for fd in (self.answer_r, self.answer_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    # --- in create, the monitor --------------------------------------------------------------------

    def take_request(self, ctx: HostContext, record: dict[str, Any]) -> bool:
        """Whether ``record`` is init's request for the runtime's hooks: then they ran (a failure raises
        :class:`StageError`, which fails the start) and init was told to go on."""
        if record.get("t") != "log" or record.get("event") != RUNTIME_HOOKS:
            return False
        pid = ctx.init_pid or ctx.child_pid or 0
        try:
            run_all(self.hooks, ("prestart", "createRuntime"), self.state("creating", pid))
        except HookFailed as err:
            raise StageError("pre-pivot", "oci-hooks", f"{err}") from None
        os.write(self.answer_w, GO)
        return True

    # --- in init -----------------------------------------------------------------------------------

    @hookimpl
    def lxcframe_child_pre_pivot(self, ctx: ChildContext) -> None:
        os.close(self.answer_w)  # create's alone: its end closed (create gone) is an EOF here
        if self.hooks.of("prestart") or self.hooks.of("createRuntime"):
            ctx.log.info(RUNTIME_HOOKS)
            # create kills init when they fail: no answer but GO comes.
            if os.read(self.answer_r, 1) != GO:
                raise RuntimeError("the runtime did not answer for its createRuntime hooks")
        try:
            run_all(self.hooks, ("createContainer",), self.state("creating", os.getpid()),
                    cwd=ctx.rootfs_mount, default_env=_process_env(ctx))
        except HookFailed as err:
            raise RuntimeError(str(err)) from None

    def start_container(self, ctx: ChildContext, fifo: int) -> None:
        """startContainer, with ``fifo`` open for writing (``start`` reads it): ``GO`` once they ran,
        ``FAILED`` and the reason when one failed (which is raised: init ends here)."""
        if not self.hooks.of("startContainer"):
            os.write(fifo, GO)
            return
        os.write(fifo, HOOKS_RUNNING)
        try:
            run_all(self.hooks, ("startContainer",), self.state("created", os.getpid()),
                    default_env=_process_env(ctx))
        except HookFailed as err:
            os.write(fifo, FAILED + str(err).encode()[:2000])  # one write: start reads it whole
            raise RuntimeError(str(err)) from None
        os.write(fifo, GO)


def _process_env(ctx: ChildContext) -> dict[str, str]:
    return dict(item.partition("=")[::2] for item in ctx.plan.env)


# --- in start --------------------------------------------------------------------------------------


def await_init(fd: int, container_id: str, alive: Callable[[], bool], timeout: float) -> None:
    """Read init's answer on the exec fifo (``fd``, opened non-blocking): ``GO``; or ``HOOKS_RUNNING``
    (then no deadline: the startContainer hooks have their own timeouts) and ``GO`` or ``FAILED`` with
    the reason."""
    deadline: float | None = time.monotonic() + timeout
    answer = b""
    while True:
        remaining = 0.1 if deadline is None else deadline - time.monotonic()
        if remaining <= 0:
            raise OciError(f"container {container_id}: init did not take the exec fifo within {timeout:g} s")
        data = b""
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.1))
        if ready:
            with contextlib.suppress(BlockingIOError):
                data = os.read(fd, 4096)
        answer += data
        told = answer.removeprefix(HOOKS_RUNNING)
        if told[:1] == GO:
            return
        if told[:1] == FAILED:
            raise OciError(f"container start failed: {told[1:].decode(errors='replace')}")
        if answer[:1] == HOOKS_RUNNING:
            deadline = None
        if not data and not alive():
            raise OciError("cannot start a container that has stopped")


def after_start(directory: str, state: OciState) -> None:
    """poststart, by ``start`` once init went on to execute the process."""
    hooks = load(directory)
    if hooks.of("poststart"):
        warn_all(hooks, "poststart", state_document(state.id, "running", state.pid, state.bundle, state.annotations))


def after_delete(hooks: BundleHooks, state: OciState) -> None:
    """poststop, by ``delete`` once the container's directory is gone."""
    if hooks.of("poststop"):
        warn_all(hooks, "poststop", state_document(state.id, "stopped", 0, state.bundle, state.annotations))

