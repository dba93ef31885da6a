"""Seccomp: ``lxc.seccomp.profile`` (LXC's policy files, v1 and v2) with architecture stacking.

* :mod:`.policy` parses the profile; ``lxcframe_validate`` reports its errors with file and line.
* :mod:`.builder` builds the libseccomp filter once, in the caller (``lxcframe_plan``, for ``start``,
  ``execute`` and ``attach`` alike), stacked over the ABIs the host runs (x86 and x32 on amd64), and
  compiles it: the program travels in the plan (:class:`SeccompPart`).
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

import attrs

from lxcframe.config.keys import KeySpec, boolean01
from lxcframe.hooks import hookimpl
from lxcframe.plugins.seccomp.load import load_program, why_not_filter
from lxcframe.stash import StashKey

if TYPE_CHECKING:
    from lxcframe.config.model import ContainerConfig
    from lxcframe.context import AttachChildContext, AttachContext, ChildContext, PlanHost
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


def _skip_reason(part: SeccompPart) -> str | None:
    return why_not_filter(part.allow_nesting)


# --- plan --------------------------------------------------------------------------------------


@attrs.frozen
class SeccompPart:
    """The container's policy, compiled once by the caller: the child only installs ``program``."""

    profile: str
    program: bytes
    arches: tuple[str, ...]
    #: ``lxc.seccomp.allow_nesting``: load the policy even where the loading process is already filtered.
    allow_nesting: bool = False


#: The program the child installs in its security stage, once it decided that it must.
_PROGRAM = StashKey[bytes]("seccomp program")


def compile_part(config: ContainerConfig, log: Any, container: str | None) -> SeccompPart | None:
    """The compiled policy of ``config`` (``None`` without a profile); a bad one is a located ConfigError."""
    from lxcframe.errors import ConfigError
    from lxcframe.plugins.seccomp import builder
    from lxcframe.plugins.seccomp.policy import PolicyError

    path = profile_path(config)
    if path is None:
        return None
    try:
        built = _build(path, log, container)
    except (PolicyError, builder.BuildError) as err:
        # Named as validation names it: the config line, then the profile's own file and line.
        item = config.located(PROFILE_KEY)
        raise ConfigError(str(err), path=item.path if item else None, line=item.line if item else None,
                          key=PROFILE_KEY) from None
    return SeccompPart(path, builder.compile_bpf(built), tuple(built.arches),
                       allow_nesting=bool(config.get(NESTING_KEY, False)))


@hookimpl
def lxcframe_plan(config: ContainerConfig, host: PlanHost) -> SeccompPart | None:
    from lxcframe.log import get_logger

    return compile_part(config, get_logger(PLUGIN), host.name)


# --- start -------------------------------------------------------------------------------------


@hookimpl
def lxcframe_child_pre_pivot(ctx: ChildContext) -> None:
    part = ctx.plan.part_or_none(SeccompPart)
    if part is None:
        return
    # Decided here, where the host's /proc still answers: the child has the monitor's seccomp state.
    why = _skip_reason(part)
    if why is not None:
        ctx.log.info("seccomp policy not loaded", profile=part.profile, reason=why)
        return
    ctx.log.info("seccomp policy for the container", profile=part.profile, arches=",".join(part.arches))
    ctx.stash[_PROGRAM] = part.program


@hookimpl
def lxcframe_child_security(ctx: ChildContext) -> None:
    program = ctx.stash.get(_PROGRAM, None)
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
    from lxcframe.log import get_logger

    part = ctx.part_or_none(SeccompPart)
    if part is None:
        return
    why = _skip_reason(part)
    if why is not None:
        get_logger(PLUGIN).info("seccomp policy not loaded", profile=part.profile, reason=why)
        return
    ctx.handover.send(SeccompProgram(part.program))


@attrs.frozen
class SeccompProgram:
    """Handed to the attaching child: the program to install (the caller's seccomp state allows it)."""

    program: bytes


@hookimpl
def lxcframe_attach_child(ctx: AttachChildContext) -> None:
    message = ctx.message(SeccompProgram)
    if message is not None:
        _install(message.program)


# --- check -------------------------------------------------------------------------------------


@hookimpl
def lxcframe_check() -> list[Probe]:
    from lxcframe.plugins.seccomp import probe

    return [probe.probe_kernel(), probe.probe_stacking(_library_problem)]
