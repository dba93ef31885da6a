"""The ``overlay:`` rootfs of LXC: ``lxc.rootfs.path = overlay:LOWER:UPPER``.

``lxc-copy -s`` (and :meth:`Container.clone` with ``snapshot=True``) makes one: the source's rootfs
is the read-only lower layer, the clone's own ``delta0`` directory the upper one, where every write
of the clone lands. As LXC, the work directory overlayfs needs is ``olwork`` beside the upper
directory (it must be on the same file system). ``overlayfs:`` is LXC's older spelling.
"""

from __future__ import annotations

import os

import attrs

PREFIXES = ("overlay:", "overlayfs:")

#: Characters overlayfs's option string would read as its own syntax (a separator, an escape) or
#: that the ``LOWER:UPPER`` split cannot carry.
_UNSAFE = frozenset(",:\\")


@attrs.frozen
class OverlayRootfs:
    lower: str
    upper: str

    @property
    def workdir(self) -> str:
        return os.path.join(os.path.dirname(self.upper), "olwork")

    @property
    def value(self) -> str:
        """The ``lxc.rootfs.path`` value naming this overlay."""
        return f"overlay:{self.lower}:{self.upper}"

    def mount_options(self) -> str:
        return f"lowerdir={self.lower},upperdir={self.upper},workdir={self.workdir}"


def is_overlay(value: str) -> bool:
    return value.startswith(PREFIXES)


def parse(value: str) -> OverlayRootfs:
    """``overlay:/LOWER:/UPPER`` → :class:`OverlayRootfs`; :class:`ValueError` saying what is wrong."""
    body = value.split(":", 1)[1]
    lower, sep, upper = body.partition(":")
    if not sep or not lower.startswith("/") or not upper.startswith("/"):
        raise ValueError("expected overlay:/LOWER:/UPPER (two absolute paths)")
    bad = sorted({char for char in lower + upper if char in _UNSAFE})
    if bad:
        raise ValueError(f"overlay paths cannot contain {' '.join(repr(c) for c in bad)}")
    return OverlayRootfs(os.path.normpath(lower), os.path.normpath(upper))


def mount(overlay: OverlayRootfs, target: str, where: str) -> None:
    """Mount ``overlay`` on ``target`` (in the container's own mount namespace, by its child).

    ``where`` is ``FILE:LINE: `` of ``lxc.rootfs.path`` for the error of a missing layer.
    """
    from lxcframe import syscalls

    for role, path in (("lower", overlay.lower), ("upper", overlay.upper)):
        if not os.path.isdir(path):
            raise FileNotFoundError(2, f"{where}lxc.rootfs.path: the overlay's {role} directory is not a "
                                       "directory", path)
    # A clone made by another tool may come without its work directory; overlayfs needs it empty
    # and beside the upper directory, which is where it is made.
    os.makedirs(overlay.workdir, mode=0o755, exist_ok=True)
    syscalls.mount("overlay", target, "overlay", 0, overlay.mount_options())
