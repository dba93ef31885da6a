"""lxcframe-motd: write the container's ``/etc/motd`` from its config.

An example of a plugin shipped as its own distribution. It registers through the
``lxcframe.plugins`` entry-point group under the name ``motd`` and brings:

* the config keys ``motd.text`` (one value) and ``motd.line`` (repeatable, one line each);
* a check of the whole config that refuses a message longer than :data:`MAX_BYTES`;
* the child hook that writes the message into the rootfs just before ``pivot_root``;
* the API extension ``motd``, so callers can ask ``has_api_extension("motd")``.

Config example::

    motd.text = Welcome to web1.
    motd.line = Managed by lxcframe; local changes to /etc/motd are overwritten at start.
    motd.line = Support: ops@example.org

gives an ``/etc/motd`` of three lines. An empty value clears a key (``motd.line =`` drops every
line given before it), as with every repeatable LXC key.
"""

from __future__ import annotations

import errno
import os
import stat

from lxcframe.config.keys import KeySpec
from lxcframe.config.model import ContainerConfig
from lxcframe.context import ChildContext
from lxcframe.hooks import hookimpl
from lxcframe.rootfs_paths import create_file_in_root, fd_path

__version__ = "0.1.0"

#: The longest message accepted, in bytes of UTF-8, trailing newline included.
MAX_BYTES = 4096

MOTD_PATH = "/etc/motd"


def motd_content(config: ContainerConfig) -> bytes | None:
    """The bytes ``/etc/motd`` gets: ``motd.text`` then every ``motd.line``, one per line.

    ``None`` when no ``motd.*`` key is set: the container's own ``/etc/motd`` is left alone.
    """
    lines: list[str] = []
    text = config.get("motd.text")
    if text is not None:
        lines.append(text)
    lines.extend(config.get_all("motd.line"))
    if not lines:
        return None
    return ("\n".join(lines) + "\n").encode("utf-8")


def _location(config: ContainerConfig) -> str:
    item = config.located("motd.text") or config.located("motd.line")
    return f"{item.path}:{item.line}: " if item is not None else ""


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    return [
        KeySpec("motd.text", doc="message of the day written to /etc/motd at start"),
        KeySpec("motd.line", multi=True, doc="a further line of /etc/motd (repeatable)"),
    ]


@hookimpl
def lxcframe_api_extensions() -> list[str]:
    return ["motd"]


@hookimpl
def lxcframe_validate(config: ContainerConfig) -> list[str]:
    content = motd_content(config)
    if content is None or len(content) <= MAX_BYTES:
        return []
    return [f"{_location(config)}motd: the message is {len(content)} bytes, more than the {MAX_BYTES} allowed"]


@hookimpl
def lxcframe_child_pre_pivot(ctx: ChildContext) -> None:
    content = motd_content(ctx.plan.config)
    if content is None:
        return
    write_motd(ctx.root_fd, content)
    ctx.log.debug("motd written", path=MOTD_PATH, bytes=len(content))


def write_motd(root_fd: int, content: bytes) -> None:
    """Replace the contents of ``/etc/motd`` inside the rootfs ``root_fd`` with ``content``.

    The path is resolved inside the rootfs (a symlink planted by the image cannot lead out of it),
    and the write goes through the resolved descriptor, so what was checked is what is written.
    """
    path_fd = create_file_in_root(root_fd, MOTD_PATH)
    try:
        info = os.fstat(path_fd)
        if not stat.S_ISREG(info.st_mode):
            # A FIFO would block the start, a device node would take the text somewhere else.
            raise OSError(errno.EINVAL, "not a regular file", MOTD_PATH)
        if info.st_nlink > 1:
            # Truncating would also change every other name of this file.
            raise OSError(errno.EMLINK, "has other hard links, refusing to overwrite it", MOTD_PATH)
        out = os.open(fd_path(path_fd), os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
    finally:
        os.close(path_fd)
    try:
        view = memoryview(content)
        while view:
            written = os.write(out, view)
            view = view[written:]
    finally:
        os.close(out)
