"""``lxc.proc.<file> = value``: written to ``/proc/<init>/<file>`` of the container's init.

Written by init itself, in the ``pre-pivot`` stage, to its own ``/proc/self/<file>`` through the
host's /proc (still mounted there before pivot_root), rather than from the monitor in
``post-start``: by then the payload runs and may already have forked children that inherited the
old values (``oom_score_adj`` is inherited). Here the value holds from the first instruction of
the payload, the write works whether or not the container mounts a /proc, and it happens before
the ``security`` stage drops capabilities a value may need (lowering ``oom_score_adj``).
"""

from __future__ import annotations

import os

import attrs

from lxcframe.config.keys import KeySpec
from lxcframe.config.model import ContainerConfig
from lxcframe.context import ChildContext
from lxcframe.errors import StageError
from lxcframe.hooks import hookimpl
from lxcframe.rootfs_paths import write_in_root

PREFIX = "lxc.proc."


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    return [KeySpec(PREFIX + "*", doc="value written to /proc/<init pid>/<file> (e.g. oom_score_adj)")]



@hookimpl
def lxcframe_validate(config: ContainerConfig) -> list[str]:
    problems = []
    for key in config.keys_under(PREFIX):
        name = key.removeprefix(PREFIX)
        # A file of the process's own /proc directory, never a path leading elsewhere.
        if "/" in name or name in (".", ".."):
            problems.append(f"{config.where(key)}{key}: not a file of /proc/<pid>")
    return problems


@attrs.frozen
class ProcFile:
    """One ``lxc.proc.*`` line: the file of /proc/<init>, its value, ``FILE:LINE: `` of the line."""

    key: str
    value: str
    where: str

    @property
    def name(self) -> str:
        return self.key.removeprefix(PREFIX)


@attrs.frozen
class ProcPart:
    """The /proc/<init> files init writes, in key order, decided by the caller (``lxcframe_plan``)."""

    files: tuple[ProcFile, ...]


@hookimpl
def lxcframe_plan(config: ContainerConfig) -> ProcPart | None:
    files = tuple(ProcFile(key, config.get(key), config.where(key)) for key in config.keys_under(PREFIX))
    return ProcPart(files) if files else None


@hookimpl
def lxcframe_child_pre_pivot(ctx: ChildContext) -> None:
    part = ctx.plan.part_or_none(ProcPart)
    if part is None:
        return
    # /proc/self resolves to this task's directory in the host's pid namespace; the fd keeps it.
    self_fd = os.open("/proc/self", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for file in part.files:
            key, name, value = file.key, file.name, file.value
            try:
                write_in_root(self_fd, name, value)
            except OSError as err:
                raise StageError(
                    "pre-pivot", "procfs",
                    f"{file.where}{key} = {value}: cannot write /proc/<init>/{name}: {err.strerror}",
                    err.errno,
                ) from None
            ctx.log.debug("proc file written", key=key, value=value)
    finally:
        os.close(self_fd)
