"""Seccomp: ``lxc.seccomp.profile`` (LXC's policy files, v1 and v2) with architecture stacking.

* :mod:`.policy` parses the profile; ``lxcframe_validate`` reports its errors with file and line.
* :mod:`.builder` builds the libseccomp filter on the host side (the monitor for ``start``, the
  caller for ``attach``), stacked over the ABIs the host runs (x86 and x32 on amd64), and compiles it.
* :mod:`.load` installs the compiled program in the child: last in the security stage, after the LSM
  label, the capabilities and no_new_privs, and in an attached process before it executes.

The child gets bytes, not a libseccomp context: after ``pivot_root`` (or the ``setns`` of ``attach``,
possibly from a freshly executed helper that never imported libseccomp) nothing can be loaded from the
host any more, and a compiled program needs nothing but one prctl.

A relative ``lxc.seccomp.profile`` is taken from the directory of the config file that sets it (LXC
opens it from its working directory, which means nothing to a daemon monitor).
``lxc.seccomp.allow_nesting = 1`` loads the policy even in a process that is already filtered (the
filters stack). ``lxc.seccomp.notify.*`` is not implemented: the key registry says so.

This module is imported by every command: libseccomp is only loaded when a profile is used.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from lxcframe.config.keys import KeySpec, boolean01
from lxcframe.hooks import hookimpl
from lxcframe.plugins.seccomp.load import load_program, read_fd, why_not_filter

if TYPE_CHECKING:
    from lxcframe.config.model import ContainerConfig
    from lxcframe.context import AttachChildContext, AttachContext, ChildContext, HostContext
    from lxcframe.plugins.seccomp.builder import Built
    from lxcframe.probe import Probe

PLUGIN = "seccomp"
PROFILE_KEY = "lxc.seccomp.profile"
NESTING_KEY = "lxc.seccomp.allow_nesting"


def _profile_value(value: str) -> str:
    return value.strip()


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    return [
        KeySpec(PROFILE_KEY, _profile_value, doc="seccomp policy file (LXC's format, version 1 or 2)"),
        KeySpec(NESTING_KEY, boolean01, doc="1: load the policy even when already under seccomp"),
    ]


@hookimpl
def lxcframe_api_extensions() -> list[str]:
    return ["seccomp_allow_nesting", "seccomp_allow_deny_syntax"]


def profile_path(config: ContainerConfig) -> str | None:
    """The profile of ``config``; a relative path is taken from the directory of the file that set it."""
    item = config.located(PROFILE_KEY)
    if item is None or not item.value:
        return None
    path: str = item.value
    if not os.path.isabs(path) and item.path:
        path = os.path.join(os.path.dirname(os.path.abspath(item.path)), path)
    return path


@hookimpl
def lxcframe_validate(config: ContainerConfig) -> list[str]:
    from lxcframe.plugins.seccomp.policy import PolicyError, read_policy

    path = profile_path(config)
    if path is None:
        return []
    try:
        read_policy(path)
    except PolicyError as err:
        return [f"{config.where(PROFILE_KEY)}{PROFILE_KEY}: {err}"]
    missing = _library_problem()
    return [f"{config.where(PROFILE_KEY)}{PROFILE_KEY}: {missing}"] if missing else []


def _library_problem() -> str | None:
    try:
        import lxcframe.plugins.seccomp.builder  # noqa: F401  (loads libseccomp)
    except (ImportError, RuntimeError, OSError) as err:
        return f"libseccomp cannot be used ({err}); install libseccomp2 and pyseccomp"
    return None


def _build(path: str, log: Any, container: str | None) -> Built:
    from lxcframe.log import HUB, LEVELS
    from lxcframe.plugins.seccomp import builder
    from lxcframe.plugins.seccomp.policy import read_policy

    policy = read_policy(path)
    built = builder.build(policy)
    for warning in built.warnings:
        log.warning("seccomp rule skipped", detail=warning)
    log.debug("seccomp policy compiled", profile=path, version=policy.version, rules=len(policy.rules),
              arches=",".join(built.arches))
    if HUB.threshold(container) <= LEVELS["trace"]:
        # LXC writes the filter out at TRACE only. Logged through debug: structlog's loggers have no trace.
        log.debug("seccomp filter", pfc=builder.export_pfc(built))
    return built


def _skip_reason(config: ContainerConfig) -> str | None:
    return why_not_filter(bool(config.get(NESTING_KEY, False)))


# --- start -------------------------------------------------------------------------------------


@hookimpl
def lxcframe_pre_start(ctx: HostContext) -> None:
    from lxcframe.plugins.seccomp import builder

    path = profile_path(ctx.plan.config)
    if path is None:
        return
    # The child inherits this process's seccomp state, so the monitor can decide for it.
    why = _skip_reason(ctx.plan.config)
    if why is not None:
        ctx.log.info("seccomp policy not loaded", profile=path, reason=why)
        return
    from lxcframe.plugins.seccomp.policy import PolicyError

    try:
        built = _build(path, ctx.log, ctx.name)
    except (PolicyError, builder.BuildError) as err:
        # Named as attach names it: the config line, then the profile's own file and line.
        raise RuntimeError(f"{ctx.plan.config.where(PROFILE_KEY)}{PROFILE_KEY}: {err}") from None
    ctx.log.info("seccomp policy for the container", profile=path, arches=",".join(built.arches))
    # A memfd rather than JSON data: a large policy would not fit in one channel record.
    fd = builder.export_bpf(built)
    ctx.fds_to_child[PLUGIN] = fd
    # The monitor may be a long-lived library caller: a start failing before the hand-over must not leak it.
    ctx.undo.push("seccomp program descriptor", lambda: _close_unsent(ctx, fd))


def _close_unsent(ctx: HostContext, fd: int) -> None:
    if ctx.fds_to_child.get(PLUGIN) == fd:
        del ctx.fds_to_child[PLUGIN]
        os.close(fd)


@hookimpl
def lxcframe_child_pre_pivot(ctx: ChildContext) -> None:
    fd = ctx.received_fds.pop(PLUGIN, None)
    if fd is None:
        return
    try:
        ctx.scratch[PLUGIN] = read_fd(fd)
    finally:
        os.close(fd)  # received without close-on-exec: keep it out of the container


@hookimpl
def lxcframe_child_security(ctx: ChildContext) -> None:
    program = ctx.scratch.get(PLUGIN)
    if program is None:
        return
    _install(program)
    ctx.log.debug("seccomp policy loaded", profile=profile_path(ctx.plan.config))


def _install(program: bytes) -> None:
    try:
        load_program(program)
    except PermissionError as err:
        # Without no_new_privs the kernel wants CAP_SYS_ADMIN, which lxc.cap.drop/keep may have removed.
        raise PermissionError(err.errno, "loading the seccomp policy needs CAP_SYS_ADMIN or "
                                         "lxc.no_new_privs = 1") from None


# --- attach ------------------------------------------------------------------------------------


@hookimpl
def lxcframe_attach(ctx: AttachContext) -> None:
    from lxcframe.errors import ContainerError
    from lxcframe.log import get_logger
    from lxcframe.plugins.seccomp import builder
    from lxcframe.plugins.seccomp.policy import PolicyError

    path = profile_path(ctx.config)
    if path is None:
        return
    log = get_logger(PLUGIN)
    why = _skip_reason(ctx.config)
    if why is not None:
        log.info("seccomp policy not loaded", profile=path, reason=why)
        return
    try:
        built = _build(path, log, None)
    except (PolicyError, builder.BuildError) as err:
        raise ContainerError(f"{ctx.config.where(PROFILE_KEY)}{PROFILE_KEY}: {err}") from None
    # Hex: the attach request crosses to a helper process as JSON when the caller is multi-threaded.
    ctx.child_data[PLUGIN] = builder.compile_bpf(built).hex()


@hookimpl
def lxcframe_attach_child(ctx: AttachChildContext) -> None:
    program = ctx.data.get(PLUGIN)
    if program:
        _install(bytes.fromhex(program))


# --- check -------------------------------------------------------------------------------------


@hookimpl
def lxcframe_check() -> list[Probe]:
    from lxcframe.plugins.seccomp import probe

    return [probe.probe_kernel(), probe.probe_stacking(_library_problem)]
