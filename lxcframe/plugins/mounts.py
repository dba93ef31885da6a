"""Mounts inside the container: ``lxc.mount.auto`` (proc), ``lxc.mount.entry`` and ``lxc.mount.fstab``.

This plugin owns the ``lxc.mount.auto`` key and mounts ``proc``; ``sys`` tokens are mounted by the
``sysfs`` plugin and ``cgroup`` tokens by the cgroup drivers, each reading :func:`effective_auto`.

Every target is resolved inside the rootfs (openat2 ``RESOLVE_IN_ROOT``), so a symlink in the rootfs
can never place a mount on the host.
"""

from __future__ import annotations

import os

import attrs

from lxcframe import syscalls
from lxcframe.config.keys import KeySpec
from lxcframe.config.model import ContainerConfig
from lxcframe.context import ChildContext
from lxcframe.errors import ConfigError
from lxcframe.hooks import hookimpl
from lxcframe.input_limits import decode_lines, read_bounded
from lxcframe.mount_options import parse_options
from lxcframe.rootfs_paths import create_file_in_root, fd_path, makedirs_in_root, open_in_root
from lxcframe.validators import MountEntry, mount_entry

_GROUP_VALUES = {
    "proc": {"proc": "mixed-default", "proc:mixed": "mixed", "proc:rw": "rw"},
    "sys": {"sys": "mixed", "sys:mixed": "mixed", "sys:ro": "ro", "sys:rw": "rw"},
}


@attrs.frozen
class AutoToken:
    group: str  # proc, sys, cgroup, shmounts
    value: str


def parse_auto(value: str) -> tuple[AutoToken, ...]:
    tokens = []
    for word in value.split():
        group = word.split(":", 1)[0]
        if group in _GROUP_VALUES:
            if word not in _GROUP_VALUES[group]:
                raise ValueError(f"unknown token {word!r}")
            tokens.append(AutoToken(group, _GROUP_VALUES[group][word]))
        elif group in ("cgroup", "cgroup-full"):
            parts = word.split(":")[1:]
            if any(p not in ("mixed", "ro", "rw", "force") for p in parts):
                raise ValueError(f"unknown token {word!r}")
            tokens.append(AutoToken("cgroup", word))
        elif group == "shmounts":
            parts = word.split(":")
            if len(parts) not in (2, 3) or not parts[1].startswith("/"):
                raise ValueError("expected shmounts:HOSTPATH[:CONTAINERPATH]")
            tokens.append(AutoToken("shmounts", word))
        else:
            raise ValueError(f"unknown token {word!r} (expected proc, sys, cgroup or shmounts forms)")
    return tuple(tokens)


def effective_auto(ctx_tokens: tuple[tuple[AutoToken, ...], ...]) -> dict[str, str]:
    """A later token replaces an earlier one of its group (userns.conf's sys:rw over common.conf's)."""
    chosen: dict[str, str] = {}
    for tokens in ctx_tokens:
        for token in tokens:
            chosen[token.group] = token.value
    return chosen


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    return [
        KeySpec("lxc.mount.auto", parse_auto, multi=True, doc="proc[:mixed|rw] sys[:ro|mixed|rw] cgroup…"),
        KeySpec("lxc.mount.entry", mount_entry, multi=True, doc="an fstab line, target inside the rootfs"),
        KeySpec("lxc.mount.fstab", doc="an fstab file of mount entries"),
    ]


@attrs.frozen
class PlannedMount:
    """One mount of ``lxc.mount.entry`` or of the ``lxc.mount.fstab`` file; ``where`` (``"FILE:LINE: KEY: "``
    of its config line) starts the message of its failure."""

    entry: MountEntry
    where: str


@attrs.frozen
class MountsPart:
    """The container's mounts, decided by the caller (``lxcframe_plan``): the fstab file is config input,
    read (and refused, naming its line) before anything starts."""

    #: The effective ``lxc.mount.auto`` token of each group (:func:`effective_auto`), in first-seen order.
    auto: tuple[AutoToken, ...] = ()
    #: The fstab file's entries first, then every ``lxc.mount.entry``, in config order.
    entries: tuple[PlannedMount, ...] = ()
    #: Those of them that target /dev or below while ``lxc.autodev`` makes a fresh /dev: mounted once the
    #: devices stage made it (LXC mounts them on its autodev tmpfs), else the tmpfs would cover them.
    after_dev: tuple[PlannedMount, ...] = ()

    def token(self, group: str) -> str | None:
        """The value of ``group``'s token (``proc``, ``sys``, ``cgroup``, ``shmounts``), or ``None``."""
        return next((t.value for t in self.auto if t.group == group), None)


@hookimpl
def lxcframe_plan(config: ContainerConfig) -> MountsPart:
    auto = tuple(AutoToken(group, value) for group, value in effective_auto(config.get_all("lxc.mount.auto")).items())
    entries: list[PlannedMount] = []
    fstab = config.located("lxc.mount.fstab")
    if fstab is not None and fstab.value:
        try:
            read = _read_fstab(_resolve_fstab(fstab.value, config.path))
        except (OSError, ValueError) as err:
            # lxcframe_validate read it a moment ago; this is the file changed since.
            raise ConfigError(f"{fstab.path}:{fstab.line}: lxc.mount.fstab = {fstab.raw!r}: {err}") from None
        where = f"{fstab.path}:{fstab.line}: lxc.mount.fstab: "
        entries.extend(PlannedMount(entry, where) for entry in read)
    entries.extend(PlannedMount(item.value, f"{item.path}:{item.line}: lxc.mount.entry: ")
                   for item in config.multi.get("lxc.mount.entry", ()))
    if not config.get("lxc.autodev", True):
        return MountsPart(auto, tuple(entries))
    return MountsPart(auto, tuple(planned for planned in entries if not below_dev(planned.entry.target)),
                      tuple(planned for planned in entries if below_dev(planned.entry.target)))


def below_dev(target: str) -> bool:
    """Whether a mount entry's target (taken inside the rootfs) is /dev or below it."""
    parts = [part for part in target.split("/") if part not in ("", ".")]
    return bool(parts) and parts[0] == "dev"


@hookimpl
def lxcframe_validate(config: ContainerConfig) -> list[str]:
    problems = []
    for item in config.multi.get("lxc.mount.entry", ()):
        try:
            parse_options(item.value.options)
        except ValueError as err:
            problems.append(f"{item.path}:{item.line}: lxc.mount.entry = {item.raw!r}: {err}")
    fstab = config.located("lxc.mount.fstab")
    if fstab is not None:
        try:
            _read_fstab(_resolve_fstab(fstab.value, config.path))
        except (OSError, ValueError) as err:
            problems.append(f"{fstab.path}:{fstab.line}: lxc.mount.fstab = {fstab.raw!r}: {err}")
    return problems


def _resolve_fstab(path: str, config_path: str | None) -> str:
    if os.path.isabs(path) or config_path is None:
        return path
    return os.path.join(os.path.dirname(config_path), path)


def _read_fstab(path: str) -> list[MountEntry]:
    entries = []
    # Bounded, and a regular file only: a FIFO or /dev/zero here must not hang or fill the start.
    for lineno, line in enumerate(decode_lines(read_bounded(path)), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            entries.append(mount_entry(text))
        except ValueError as err:
            raise ValueError(f"{path}:{lineno}: {err}") from None
    return entries


def mount_at(ctx: ChildContext, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None = None) -> None:
    fd = open_in_root(ctx.root_fd, target)
    try:
        syscalls.mount(source, fd_path(fd), fstype, flags, data)
    finally:
        os.close(fd)


def remount(ctx: ChildContext, path: str, flags: int) -> None:
    # Look the path up again: a descriptor opened before a mount still points under that mount.
    fd = open_in_root(ctx.root_fd, path)
    try:
        syscalls.mount(None, fd_path(fd), None, syscalls.MS_REMOUNT | flags)
    finally:
        os.close(fd)


def bind_onto_itself(ctx: ChildContext, path: str) -> None:
    fd = open_in_root(ctx.root_fd, path)
    try:
        syscalls.mount(fd_path(fd), fd_path(fd), None, syscalls.MS_BIND)
    finally:
        os.close(fd)


LOCKED_DOWN = syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC


def _bind_readonly(ctx: ChildContext, path: str) -> None:
    # A bind mount takes its own read-only flag only through a remount of the bind.
    bind_onto_itself(ctx, path)
    remount(ctx, path, syscalls.MS_BIND | syscalls.MS_RDONLY | LOCKED_DOWN)


def _mount_proc(ctx: ChildContext, mode: str) -> None:
    os.close(makedirs_in_root(ctx.root_fd, "/proc"))
    mount_at(ctx, "proc", "/proc", "proc", syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC)
    if mode != "rw":
        # proc:mixed – /proc/sys and sysrq-trigger read-only, /proc/sys/net stays writable for the netns.
        _bind_readonly(ctx, "/proc/sys")
        bind_onto_itself(ctx, "/proc/sys/net")
        remount(ctx, "/proc/sys/net", syscalls.MS_BIND | LOCKED_DOWN)
        try:
            _bind_readonly(ctx, "/proc/sysrq-trigger")
        except FileNotFoundError:
            pass  # a kernel without CONFIG_MAGIC_SYSRQ has none


def mount_entry_in_rootfs(ctx: ChildContext, entry: MountEntry, where: str = "") -> None:
    """Mount ``entry``; a failure names ``where`` (``"FILE:LINE: KEY: "`` of the config line) first."""
    options = parse_options(entry.options)
    try:
        if options.create == "dir":
            os.close(makedirs_in_root(ctx.root_fd, entry.target))
        elif options.create == "file":
            os.close(create_file_in_root(ctx.root_fd, entry.target))
        fd = open_in_root(ctx.root_fd, entry.target)
        try:
            flags = options.flags
            first = (flags & ~syscalls.MS_RDONLY) if flags & syscalls.MS_BIND else flags
            syscalls.mount(entry.source, fd_path(fd), entry.fstype, first, options.data)
        finally:
            os.close(fd)
        if flags & syscalls.MS_BIND and flags & (syscalls.MS_RDONLY | LOCKED_DOWN):
            remount(ctx, entry.target, flags)
        if options.propagation:
            fd = open_in_root(ctx.root_fd, entry.target)
            try:
                syscalls.mount(None, fd_path(fd), None, options.propagation)
            finally:
                os.close(fd)
    except OSError as err:
        if options.optional:
            ctx.log.info("optional mount skipped", target=entry.target, error=str(err))
            return
        raise OSError(err.errno, f"{where}mount {entry.source} on {entry.target}: {err.strerror}") from None


@hookimpl
def lxcframe_child_mount_filesystems(ctx: ChildContext) -> None:
    part = ctx.plan.part(MountsPart)
    proc = part.token("proc")
    if proc is not None:
        _mount_proc(ctx, proc)
    for planned in part.entries:
        mount_entry_in_rootfs(ctx, planned.entry, planned.where)


@hookimpl
def lxcframe_child_pre_pivot(ctx: ChildContext) -> None:
    # First in the stage (lxcframe.stages.PLUGIN_ORDER): the devices stage has made /dev, and
    # lxc.hook.mount and lxc.hook.autodev see these mounts, as they see the others.
    for planned in ctx.plan.part(MountsPart).after_dev:
        mount_entry_in_rootfs(ctx, planned.entry, planned.where)
