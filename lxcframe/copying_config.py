"""What a copy of a container changes in its config, as LXC's clone does.

The copy's config is the source's own file, line by line (comments, order and includes kept), with:
``lxc.rootfs.path`` naming the copy's rootfs, ``lxc.uts.name`` the new name (unless the name is
kept), every ``lxc.net.N.hwaddr`` a new address (unless kept), and every path below the source's
container directory, in any other key (``lxc.mount.fstab``, ``lxc.mount.entry``, ``lxc.hook.*``,
``lxc.log.file``, ``lxc.include``…), moved below the copy's. The files those paths name were copied
with the directory.
"""

from __future__ import annotations

import os
import re

import attrs

from lxcframe.config.parser import parse_line
from lxcframe.config.writer import format_line

_HWADDR_KEY = re.compile(r"lxc\.net\.\d+\.hwaddr\Z")


@attrs.frozen
class ConfigRewrite:
    old_dir: str
    new_dir: str
    #: The copy's ``lxc.rootfs.path``; ``None`` moves it as any other path (a rename).
    rootfs: str | None
    #: The copy's ``lxc.uts.name``; ``None`` keeps the source's.
    uts_name: str | None
    new_macs: bool

    def moved(self, value: str) -> str:
        """``value`` with each path at or below ``old_dir`` moved below ``new_dir``.

        Only whole path components match: ``/lxc/c1`` is moved in ``/lxc/c1/fstab`` and
        ``overlay:/lxc/c1/rootfs:…``, not in ``/lxc/c10``.
        """
        pattern = re.escape(self.old_dir) + r"(?=/|\Z|[\s:,=])"
        return re.sub(pattern, lambda _match: self.new_dir, value)


def new_hwaddr(value: str) -> str:
    """The copy's MAC address for the source's ``value``.

    An address with LXC's ``x`` digits stays as it is: every start draws those digits anew, so the
    copy gets its own address already. A fixed one is replaced as LXC's clone does, by
    ``00:16:3e:xx:xx:xx`` (the Xen OUI LXC uses) with the ``x`` drawn now.
    """
    if "x" in value.lower():
        return value
    return "00:16:3e:" + ":".join(f"{byte:02x}" for byte in os.urandom(3))


def rewrite_config(text: str, path: str, rewrite: ConfigRewrite) -> str:
    """The copy's config text, from the source's ``text`` (read from ``path``, named in errors)."""
    out: list[str] = []
    named = False
    for lineno, line in enumerate(text.splitlines(), 1):
        entry = parse_line(line, path, lineno)
        if entry is None:
            out.append(line)
            continue
        value = entry.value
        if entry.key == "lxc.rootfs.path" and rewrite.rootfs is not None:
            value = rewrite.rootfs
        elif entry.key == "lxc.uts.name" and rewrite.uts_name is not None:
            value = rewrite.uts_name
            named = True
        elif _HWADDR_KEY.match(entry.key) and rewrite.new_macs:
            value = new_hwaddr(value)
        else:
            value = rewrite.moved(value)
        out.append(line if value == entry.value else format_line(entry.key, value, path=path))
    if rewrite.uts_name is not None and not named:
        # LXC sets the name on the copy whether or not the source set one (its default is the name).
        out.append(format_line("lxc.uts.name", rewrite.uts_name, path=path))
    return "".join(line + "\n" for line in out)
