"""``lxc.hook.*``: user scripts at each point of a container's life, with LXC's arguments and environment.

Each hook runs as ``/bin/sh -c "exec SCRIPT [ARGS]"``. Version 0 passes ``NAME lxc TYPE [extra]``
as arguments; version 1 passes none and sets ``LXC_HOOK_TYPE`` and ``LXC_HOOK_SECTION`` instead.
The output is logged at debug level. As LXC: a non-zero exit of a hook that runs before init
(pre-start, pre-mount, mount, autodev, start-host, start) fails the start, which then unwinds and the
payload never runs; stop and post-stop failures are logged (the container is gone already); a failing
destroy hook stops the destroy.

Ambient capabilities: in a user namespace the child is not root until late (and an application
container may never be), so a hook it executes would lose every capability. While hooks may run,
the permitted capabilities are raised into the ambient set; they are cleared before init.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Any

import attrs

from lxcframe import syscalls
from lxcframe.config.keys import KeySpec, choice
from lxcframe.config.model import ContainerConfig
from lxcframe.context import DEFAULT_PATH, ChildContext, HostContext
from lxcframe.hooks import hookimpl
from lxcframe.log import get_logger
from lxcframe.stash import StashKey

HOOK_TYPES = ("pre-start", "pre-mount", "mount", "autodev", "start", "stop", "post-stop", "clone", "destroy",
              "start-host")
#: Namespaces handed to stop hooks, in LXC's order and names.
STOP_NAMESPACES = (("user", "USER"), ("mnt", "MNT"), ("pid", "PID"), ("uts", "UTS"), ("ipc", "IPC"),
                   ("net", "NET"), ("cgroup", "CGROUP"))


def _script(value: str) -> str:
    if not value.split():
        raise ValueError("expected a script path")
    return value


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    keys = [KeySpec(f"lxc.hook.{kind}", _script, multi=True, doc=f"scripts run at {kind}")
            for kind in HOOK_TYPES if kind != "clone"]
    # Debian's stock configs set it (lxc-copy's clonehostname); Container.clone runs no hooks.
    keys.append(KeySpec("lxc.hook.clone", _script, multi=True,
                        doc="accepted for LXC compatibility and never run: clone runs no hooks"))
    keys.append(KeySpec("lxc.hook.version", choice("0", "1"), doc="0: arguments (default), 1: environment"))
    return keys


LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "ERROR", "CRIT", "ALERT", "FATAL")


@attrs.frozen
class HookPart:
    """The hook commands of every type and what their environment tells of the config, decided by
    the caller (``lxcframe_plan``): the monitor and the child run them without reading the config."""

    #: ``(type, scripts)`` for every type the config has scripts for, in :data:`HOOK_TYPES` order.
    scripts: tuple[tuple[str, tuple[str, ...]], ...]
    #: ``lxc.hook.version``: "0" (arguments) or "1" (environment).
    version: str
    config_path: str
    rootfs_path: str
    log_level: str

    def of(self, kind: str) -> tuple[str, ...]:
        return next((scripts for each, scripts in self.scripts if each == kind), ())


def hook_part(config: ContainerConfig) -> HookPart:
    level = config.get("lxc.log.level")
    return HookPart(
        scripts=tuple((kind, config.get_all(f"lxc.hook.{kind}")) for kind in HOOK_TYPES
                      if kind != "clone" and config.get_all(f"lxc.hook.{kind}")),
        version=config.get("lxc.hook.version", "0"),
        config_path=config.path or "",
        rootfs_path=config.get("lxc.rootfs.path", ""),
        log_level=LOG_LEVELS[level if level is not None else 5],
    )


def base_environment(name: str, config: ContainerConfig, rootfs_mount: str) -> dict[str, str]:
    return _environment_of(name, hook_part(config), rootfs_mount)


def _environment_of(name: str, part: HookPart, rootfs_mount: str) -> dict[str, str]:
    return {
        "LXC_NAME": name,
        "LXC_CONFIG_FILE": part.config_path,
        "LXC_ROOTFS_MOUNT": rootfs_mount,
        "LXC_ROOTFS_PATH": part.rootfs_path,
        "LXC_CONSOLE": "",
        "LXC_CONSOLE_LOGPATH": "",
        "LXC_CGNS_AWARE": "1",
        "LXC_LOG_LEVEL": part.log_level,
        "LXC_HOOK_VERSION": part.version,
    }


def hook_environment(name: str, config: ContainerConfig, rootfs_mount: str) -> dict[str, str]:
    """The environment every hook and network script starts from: PATH plus LXC's variables."""
    return {"PATH": os.environ.get("PATH", DEFAULT_PATH), **base_environment(name, config, rootfs_mount)}


def run_script(command: str, env: dict[str, str], log: Any, what: str, event: str, **fields: Any) -> None:
    """Run ``/bin/sh -c command``, log its output at debug level, raise when it exits non-zero.

    subprocess forks and executes in C, so this is safe in a multi-threaded caller (``destroy``
    hooks run in the library caller's process); its modules are imported with this one, so it also
    works in the child after pivot_root.
    """
    # A process group of its own: a start aborted while the hook runs (stop of a STARTING
    # container) ends the hook's children too, not only its shell.
    with subprocess.Popen(["/bin/sh", "-c", command], env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, process_group=0) as hook:
        try:
            raw, _ = hook.communicate()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(hook.pid, signal.SIGKILL)
            raise
    output = raw.decode(errors="replace")
    for line in output.splitlines():
        log.debug(event, **fields, line=line)
    if hook.returncode != 0:
        last = output.strip().splitlines()[-1] if output.strip() else "no output"
        raise RuntimeError(f"{what} exited with status {hook.returncode}: {last}")


def run_hooks(kind: str, name: str, part: HookPart, log: Any, *, rootfs_mount: str,
              env: dict[str, str] | None = None, extra_args: tuple[str, ...] = ()) -> None:
    scripts = part.of(kind)
    if not scripts:
        return
    hook_env = {"PATH": os.environ.get("PATH", DEFAULT_PATH), **_environment_of(name, part, rootfs_mount),
                **(env or {})}
    hook_env["LXC_HOOK_TYPE"] = kind
    hook_env["LXC_HOOK_SECTION"] = "lxc"
    for script in scripts:
        command = f"exec {script}"
        if part.version == "0":
            command += " " + " ".join([name, "lxc", kind, *extra_args])
        run_script(command, hook_env, log, f"lxc.hook.{kind} {script!r}", "hook output", hook=kind)


@hookimpl
def lxcframe_plan(config: ContainerConfig) -> HookPart | None:
    part = hook_part(config)
    return part if part.scripts else None


def _part(plan: Any) -> HookPart:
    """The plan's hooks; none planned (a config without hooks) runs none."""
    return plan.part_or_none(HookPart) or _NO_HOOKS


_NO_HOOKS = HookPart(scripts=(), version="0", config_path="", rootfs_path="", log_level=LOG_LEVELS[5])


# --- host side ---------------------------------------------------------------------------------


#: Names in ``ctx.kept`` of the container's namespaces kept for the stop hooks (followed by the namespace).
_STOP_NAMESPACE = "hooks:stop-namespace:"
#: The capabilities raised into the ambient set for hooks run inside a user namespace.
_AMBIENT = StashKey[list[int]]("ambient capabilities for hooks")


@hookimpl
def lxcframe_pre_start(ctx: HostContext) -> None:
    run_hooks("pre-start", ctx.name, _part(ctx.plan), ctx.log, rootfs_mount=ctx.plan.rootfs_mount)


@hookimpl
def lxcframe_setup_network(ctx: HostContext, pid: int) -> None:
    # Stop hooks inspect the namespaces after init exited: keep them alive through descriptors.
    if not _part(ctx.plan).of("stop"):
        return
    for ns, _ in STOP_NAMESPACES:
        with contextlib.suppress(OSError):
            ctx.kept[_STOP_NAMESPACE + ns] = os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC)

    def close() -> None:
        for ns, _ in STOP_NAMESPACES:
            fd = ctx.kept.pop(_STOP_NAMESPACE + ns, None)
            if fd is not None:
                os.close(fd)

    ctx.undo.push("namespace descriptors for stop hooks", close)


@hookimpl
def lxcframe_start_host(ctx: HostContext, pid: int) -> None:
    # As LXC: after the container is set up, before init; a failure aborts the start.
    run_hooks("start-host", ctx.name, _part(ctx.plan), ctx.log, rootfs_mount=ctx.plan.rootfs_mount,
              env={"LXC_PID": str(pid)})


@hookimpl
def lxcframe_stopped(ctx: HostContext) -> None:
    # Wherever the end of the container runs (its monitor, or the worker a server forked for it), the
    # descriptors are in this process.
    fds = {ns: ctx.kept[_STOP_NAMESPACE + ns] for ns, _ in STOP_NAMESPACES if _STOP_NAMESPACE + ns in ctx.kept}
    paths = {ns: f"/proc/{os.getpid()}/fd/{fd}" for ns, fd in fds.items()}
    env = {"LXC_TARGET": "stop"}
    env.update({f"LXC_{upper}_NS": paths[ns] for ns, upper in STOP_NAMESPACES if ns in paths})
    args = tuple(f"{ns}:{paths[ns]}" for ns, _ in STOP_NAMESPACES if ns in paths)
    try:
        run_hooks("stop", ctx.name, _part(ctx.plan), ctx.log, rootfs_mount=ctx.plan.rootfs_mount, env=env,
                  extra_args=args)
    finally:
        # Done with them: the container's network namespace (and its id) must not outlive this.
        for fd in fds.values():
            os.close(fd)
        for ns, _ in STOP_NAMESPACES:
            ctx.kept.pop(_STOP_NAMESPACE + ns, None)


@hookimpl
def lxcframe_post_stop(ctx: HostContext) -> None:
    run_hooks("post-stop", ctx.name, _part(ctx.plan), ctx.log, rootfs_mount=ctx.plan.rootfs_mount,
              env={"LXC_TARGET": "stop"})


@hookimpl
def lxcframe_destroy(name: str, config: ContainerConfig | None) -> None:
    if config is not None:
        # No start plan here: destroy reads the config it is given, once.
        part = hook_part(config)
        run_hooks("destroy", name, part, get_logger("hooks"), rootfs_mount=part.rootfs_path)


# --- child side --------------------------------------------------------------------------------


def raise_ambient() -> list[int]:
    """Copy the permitted capabilities into the inheritable and ambient sets; returns those raised."""
    current = syscalls.capget()
    syscalls.capset(current.effective, current.permitted, current.permitted)
    raised = []
    for cap in range(syscalls.cap_last_cap() + 1):
        if current.permitted & (1 << cap):
            syscalls.ambient_raise(cap)
            raised.append(cap)
    return raised


def clear_ambient() -> None:
    syscalls.ambient_clear_all()
    current = syscalls.capget()
    syscalls.capset(current.effective, current.permitted, 0)


@hookimpl
def lxcframe_child_pre_mount(ctx: ChildContext) -> None:
    if ctx.plan.clone_flags & syscalls.CLONE_NEWUSER and any(
        _part(ctx.plan).of(kind) for kind in ("pre-mount", "mount", "autodev", "start")
    ):
        raised = ctx.stash[_AMBIENT] = raise_ambient()
        ctx.log.debug("ambient capabilities raised for hooks", count=len(raised))
    run_hooks("pre-mount", ctx.plan.name, _part(ctx.plan), ctx.log, rootfs_mount=ctx.rootfs_mount)


@hookimpl
def lxcframe_child_pre_pivot(ctx: ChildContext) -> None:
    run_hooks("mount", ctx.plan.name, _part(ctx.plan), ctx.log, rootfs_mount=ctx.rootfs_mount)
    run_hooks("autodev", ctx.plan.name, _part(ctx.plan), ctx.log, rootfs_mount=ctx.rootfs_mount)


@hookimpl
def lxcframe_child_pre_exec(ctx: ChildContext) -> None:
    run_hooks("start", ctx.plan.name, _part(ctx.plan), ctx.log, rootfs_mount=ctx.rootfs_mount)
    if ctx.stash.pop(_AMBIENT, None) is not None:
        clear_ambient()  # init must not inherit what was raised for the hooks
