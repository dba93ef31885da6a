"""The essential core: identity, rootfs, init, environment, signals, logging, namespaces.

It cannot be disabled. Everything optional lives in its own plugin.
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

import attrs

from lxcframe import rootfs_overlay, syscalls
from lxcframe.config.keys import KeySpec, absolute_path, boolean01, choice, uint
from lxcframe.config.model import ContainerConfig
from lxcframe.context import ROOTFS_TREE, AttachChildContext, ChildContext
from lxcframe.hooks import hookimpl
from lxcframe.log import SYSLOG_FACILITIES, parse_level
from lxcframe.validators import environment_entry, rootfs_path, signal_number

if TYPE_CHECKING:
    from lxcframe.probe import Probe

BASE_CLONE_FLAGS = (
    syscalls.CLONE_NEWNS | syscalls.CLONE_NEWUTS | syscalls.CLONE_NEWIPC
    | syscalls.CLONE_NEWNET | syscalls.CLONE_NEWCGROUP
)


def _hostname(value: str) -> str:
    if len(value) > 64 or not value.replace("-", "").replace(".", "").replace("_", "").isalnum():
        raise ValueError("expected a host name of at most 64 letters, digits, '-', '_' or '.'")
    return value


def _command(value: str) -> tuple[str, ...]:
    words = tuple(value.split())
    if not words:
        raise ValueError("expected a command")
    return words


def _pdeath(value: str) -> int:
    return signal_number(value)


def _groups(value: str) -> tuple[int, ...]:
    """``lxc.init.groups``: supplementary gids of init, comma-separated (LXC's format)."""
    groups = []
    for word in value.split(","):
        word = word.strip()
        if not word.isdigit() or int(word) > 0xFFFFFFFE:
            raise ValueError(f"expected gids separated by ',', not {word!r}")
        groups.append(int(word))
    return tuple(groups)


#: Options of lxc.rootfs.options that are mount flags of the rootfs itself (what a bind remount changes).
_ROOTFS_FLAG_OPTIONS = ("ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "noatime", "atime",
                        "nodiratime", "diratime", "relatime", "norelatime", "strictatime", "defaults")


def _rootfs_options(value: str) -> int:
    """``lxc.rootfs.options``: the mount flags the rootfs gets (``ro,nosuid``…), as MS_* bits."""
    from lxcframe.mount_options import parse_options

    options = [o.strip() for o in value.split(",") if o.strip()]
    for option in options:
        if option.startswith("idmap="):
            raise ValueError(f"{option}: not supported: lxc.idmap gives the rootfs an idmapped mount")
        if option not in _ROOTFS_FLAG_OPTIONS:
            raise ValueError(f"{option}: not a flag of the rootfs mount (expected some of "
                             f"{', '.join(_ROOTFS_FLAG_OPTIONS)})")
    return parse_options(options).flags


ARCHES = ("x86_64", "amd64", "i686", "x86", "aarch64", "arm64", "linux64", "linux32")
#: The 64-bit machine (``uname -m``) each of LXC's ``lxc.arch`` names belongs to, and its personality.
_ARCH_OF = {
    "x86_64": ("x86_64", syscalls.PER_LINUX), "amd64": ("x86_64", syscalls.PER_LINUX),
    "i686": ("x86_64", syscalls.PER_LINUX32), "x86": ("x86_64", syscalls.PER_LINUX32),
    "aarch64": ("aarch64", syscalls.PER_LINUX), "arm64": ("aarch64", syscalls.PER_LINUX),
}


def arch_personality(arch: str, machine: str | None = None) -> int:
    """The personality(2) of ``lxc.arch = arch`` on a host of ``machine`` (``uname -m``).

    ``linux64``/``linux32`` are the host's own 64- and 32-bit personalities; a named architecture
    must be the host's or its 32-bit half (``i686`` on ``x86_64``), else :class:`ValueError`.
    """
    machine = os.uname().machine if machine is None else machine
    if arch == "linux64":
        return syscalls.PER_LINUX
    if arch == "linux32":
        return syscalls.PER_LINUX32
    owner, persona = _ARCH_OF[arch]
    if owner != machine:
        raise ValueError(f"this host ({machine}) cannot run {arch}: only its own architecture or its "
                         "32-bit personality (linux32)")
    return persona


@attrs.frozen
class CorePart:
    """What the child needs of the core's keys beyond :class:`lxcframe.context.StartPlan`'s own fields,
    decided by the caller (``lxcframe_plan``)."""

    #: personality(2) of ``lxc.arch`` (this host's answer: the caller runs where the container does);
    #: ``None`` leaves the inherited one.
    personality: int | None = None
    #: ``FILE:LINE: `` of ``lxc.rootfs.path``, for the error when the rootfs is not a directory.
    rootfs_where: str = ""
    #: ``lxc.environment`` as init got it (a bare NAME resolved from the caller's environment): what an
    #: attached process gets too, as lxc-attach sets it.
    environment: tuple[str, ...] = ()
    #: ``lxc.init.groups``: init's supplementary groups (``None``: none, as before).
    init_groups: tuple[int, ...] | None = None
    #: ``lxc.rootfs.options``: MS_* flags the rootfs mount gets just before the pivot (0: none).
    rootfs_flags: int = 0
    #: ``lxc.sched.core = 1``: init (and so every process of the container) gets a core scheduling cookie.
    sched_core: bool = False


def _apply_arch(part: CorePart | None) -> None:
    if part is not None and part.personality is not None:
        syscalls.set_personality(part.personality)


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    return [
        KeySpec("lxc.uts.name", _hostname, doc="host name inside the container"),
        KeySpec("lxc.rootfs.path", rootfs_path, doc="the root file system: /path, dir:/path or overlay:/lower:/upper"),
        KeySpec("lxc.rootfs.mount", absolute_path, doc="accepted for LXC compatibility and ignored: "
                "the rootfs is always mounted on /run/lxcframe.rootfs in the container's mount namespace"),
        KeySpec("lxc.rootfs.managed", boolean01, doc="0: destroy leaves rootfs and config alone"),
        KeySpec("lxc.init.cmd", _command, doc="init of a system container (default /sbin/init)"),
        KeySpec("lxc.init.cwd", absolute_path, doc="working directory of init"),
        KeySpec("lxc.init.uid", uint, doc="uid init runs as"),
        KeySpec("lxc.init.gid", uint, doc="gid init runs as"),
        KeySpec("lxc.init.groups", _groups, multi=True,
                doc="supplementary gids of init, comma-separated; repeatable, each line adds"),
        KeySpec("lxc.rootfs.options", _rootfs_options,
                doc="flags of the rootfs mount, comma-separated: ro, nosuid, nodev, noexec, noatime…"),
        KeySpec("lxc.sched.core", boolean01,
                doc="1: a core scheduling cookie of its own for the container (needs CONFIG_SCHED_CORE and SMT)"),
        KeySpec("lxc.execute.cmd", _command, doc="default command of an application container"),
        KeySpec("lxc.environment", environment_entry, multi=True, doc="NAME=value for init"),
        KeySpec("lxc.signal.halt", signal_number, doc="signal asking init to halt (default SIGPWR)"),
        KeySpec("lxc.signal.stop", signal_number, doc="signal that kills init (default SIGKILL)"),
        KeySpec("lxc.signal.reboot", signal_number, doc="signal asking init to reboot (default SIGINT)"),
        KeySpec("lxc.monitor.signal.pdeath", _pdeath,
                doc="signal to init when the monitor dies (default SIGKILL; 0 keeps it alive)"),
        KeySpec("lxc.log.file", absolute_path, doc="log file of this container"),
        KeySpec("lxc.log.level", parse_level, doc="log level of lxc.log.file and lxc.log.syslog"),
        KeySpec("lxc.log.syslog", choice(*SYSLOG_FACILITIES),
                doc="also log to syslog with this facility (daemon, local0 … local7)"),
        KeySpec("lxc.arch", choice(*ARCHES),
                doc="personality of init and attached processes (i686/x86/linux32: 32-bit); only the "
                "host's own architecture or its 32-bit half"),
    ]


@hookimpl
def lxcframe_api_extensions() -> list[str]:
    # lxc_log: the container's name on every log line, per thread (contextvars).
    return ["lxc_log", "lxc_config_item_is_supported", "pidfd"]


@hookimpl
def lxcframe_validate(config: ContainerConfig) -> list[str]:
    problems = []
    if config.get("lxc.sched.core", False):
        why = sched_core_unsupported()
        if why:
            problems.append(f"{config.where('lxc.sched.core')}lxc.sched.core = 1: {why}")
    arch = config.get("lxc.arch")
    if arch is None:
        return problems
    try:
        arch_personality(arch)
    except ValueError as err:
        problems.append(f"{config.where('lxc.arch')}lxc.arch = {arch}: {err}")
    return problems


def sched_core_unsupported() -> str | None:
    """Why this host cannot give a container a core scheduling cookie, or ``None`` when it can."""
    import errno

    try:
        syscalls.sched_core_cookie()
    except OSError as err:
        if err.errno == errno.EINVAL:
            return "this kernel has no core scheduling (prctl PR_SCHED_CORE refused: built without CONFIG_SCHED_CORE)"
        if err.errno == errno.ENODEV:
            return "this host has no SMT (one thread per core): core scheduling has nothing to keep apart"
        return f"prctl PR_SCHED_CORE: {err.strerror}"
    return None


@hookimpl
def lxcframe_plan(config: ContainerConfig) -> CorePart:
    # lxcframe_validate refused an architecture this host cannot run, before any plan.
    arch = config.get("lxc.arch")
    environment = []
    for item in config.get_all("lxc.environment"):
        name, sep, _value = item.partition("=")
        if sep:
            environment.append(item)
        elif name in os.environ:
            environment.append(f"{name}={os.environ[name]}")
    groups = [gid for value in config.get_all("lxc.init.groups") for gid in value]
    return CorePart(personality=None if arch is None else arch_personality(arch),
                    rootfs_where=config.where("lxc.rootfs.path"), environment=tuple(environment),
                    init_groups=tuple(groups) if config.get_all("lxc.init.groups") else None,
                    rootfs_flags=config.get("lxc.rootfs.options", 0), sched_core=config.get("lxc.sched.core", False))


@hookimpl
def lxcframe_clone_flags() -> int:
    return BASE_CLONE_FLAGS


@hookimpl
def lxcframe_check() -> list[Probe]:
    from lxcframe.plugins import core_probes

    return core_probes.probes()


@hookimpl
def lxcframe_child_pre_mount(ctx: ChildContext) -> None:
    # A UTS namespace the container does not own (the host's, another container's) keeps its name.
    if ctx.plan.clone_flags & syscalls.CLONE_NEWUTS:
        syscalls.sethostname(ctx.plan.hostname)
    part = ctx.plan.part_or_none(CorePart)
    if part is not None:
        # Applied by the core's own steps: the flags just before the pivot, the groups with init's ids.
        ctx.rootfs_flags = part.rootfs_flags
        ctx.final_groups = part.init_groups


@hookimpl
def lxcframe_child_pre_pivot(ctx: ChildContext) -> None:
    # Before the security stage (a seccomp policy may deny personality(2)); init inherits it
    # through exec, as do lxc.hook.start scripts.
    _apply_arch(ctx.plan.part_or_none(CorePart))


@hookimpl
def lxcframe_child_pre_exec(ctx: ChildContext) -> None:
    # Until it executes the payload init is a process of ours in the container's pid namespace, holding
    # host descriptors and mapping host files, with the runtime's command line and environment: what the
    # container may run beside it from here on (a start hook of its own) must not reach them through
    # /proc/1. Not dumpable, its descriptors and mappings need CAP_SYS_PTRACE; its environ and cmdline
    # are readable still, so they are blanked. The payload is dumpable again once executed.
    syscalls.prctl(syscalls.PR_SET_DUMPABLE, 0)
    syscalls.blank_initial_arguments_and_environment()
    part = ctx.plan.part_or_none(CorePart)
    if part is not None and part.sched_core:
        # Inherited through fork and exec: init's cookie is every later process's of the container.
        syscalls.sched_core_create()


@hookimpl
def lxcframe_attach_child(ctx: AttachChildContext) -> None:
    # As lxc-attach: the attached command gets the container's personality (or the one the attach
    # asked for, set already); first, before seccomp.
    if ctx.personality is None:
        _apply_arch(ctx.part_or_none(CorePart))


# trylast as pluggy means it, not a place in lxcframe.stages.PLUGIN_ORDER: the default backend of a
# firstresult hook, which any other backend's answer comes before.
@hookimpl(trylast=True)
def lxcframe_child_mount_rootfs(ctx: ChildContext) -> str:
    """The ``dir`` backend: bind the rootfs directory onto itself so it becomes a mount to pivot into;
    an ``overlay:`` rootfs is mounted from its layers instead."""
    rootfs = ctx.plan.rootfs
    if rootfs_overlay.is_overlay(rootfs):
        rootfs_overlay.mount(rootfs_overlay.parse(rootfs), ctx.rootfs_mount, ctx.plan.part(CorePart).rootfs_where)
        return ctx.rootfs_mount
    if not os.path.isdir(rootfs):
        where = ctx.plan.part(CorePart).rootfs_where
        raise FileNotFoundError(2, f"{where}lxc.rootfs.path: rootfs is not a directory", rootfs)
    tree = ctx.received.take_fd(ROOTFS_TREE)
    if tree is not None:
        # A detached tree prepared by the monitor (e.g. idmapped): attach it where the rootfs is.
        try:
            syscalls.move_mount(tree, "", syscalls.AT_FDCWD, ctx.rootfs_mount, syscalls.MOVE_MOUNT_F_EMPTY_PATH)
        finally:
            os.close(tree)
        return ctx.rootfs_mount
    syscalls.mount(rootfs, ctx.rootfs_mount, None, syscalls.MS_BIND | syscalls.MS_REC)
    return ctx.rootfs_mount


def default_halt_signal() -> int:
    return int(signal.SIGPWR)
