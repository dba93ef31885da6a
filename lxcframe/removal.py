"""Removing a stopped container from its lxcpath: what ``destroy`` does once it holds the container, and
what the end of an ephemeral container does (``lxc.ephemeral``), where the stopping caller may hold
the command lock and none is taken."""

from __future__ import annotations

import os
import shutil
from typing import Any

from lxcframe.config.model import ContainerConfig
from lxcframe.stage_runner import call_hook


def remove_container(name: str, lxcpath: str, plugins: Any, config: ContainerConfig | None, log: Any) -> None:
    """The ``destroy`` hooks (``config`` is ``None`` when it did not read), then the container's
    directory, rootfs included, unless ``lxc.rootfs.managed = 0`` keeps both."""
    call_hook(plugins, "lxcframe_destroy", name=name, lxcpath=lxcpath, config=config)
    if config is not None and config.get("lxc.rootfs.managed", True) is False:
        log.info("lxc.rootfs.managed = 0: leaving rootfs and config in place")
        return
    if os.geteuid() == 0:
        shutil.rmtree(os.path.join(lxcpath, name))
    else:
        # The rootfs belongs to the container's ids, which only a root of their user namespace may remove.
        from lxcframe.userns_exec import remove_as_user

        remove_as_user(os.path.join(lxcpath, name), config)
