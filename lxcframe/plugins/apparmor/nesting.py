"""The helper mounts of ``lxc.apparmor.allow_nesting``: a fresh proc and sysfs under ``/dev/.lxc``.

A runtime nested in the container needs an unobstructed proc and sysfs to mount from (the
container's own /proc may have read-only parts bound over it). They are mounted whether or not the
kernel has AppArmor: the key asks for nesting, the profile rules are only one half of it.
"""

from __future__ import annotations

from lxcframe.context import ChildContext
from lxcframe.plugins.mounts import mount_entry_in_rootfs
from lxcframe.validators import mount_entry

#: As ``lxc.mount.entry`` lines; optional, so a kernel refusing one does not fail the start.
NESTING_ENTRIES = (
    "proc dev/.lxc/proc proc create=dir,optional",
    "sys dev/.lxc/sys sysfs create=dir,optional",
)


def mount_nesting_helpers(ctx: ChildContext) -> None:
    for line in NESTING_ENTRIES:
        mount_entry_in_rootfs(ctx, mount_entry(line))
