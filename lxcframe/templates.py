"""What a container template is: a named builder of a rootfs plus the config lines it needs."""

from __future__ import annotations

from collections.abc import Callable

import attrs


@attrs.frozen
class TemplateRequest:
    name: str
    lxcpath: str
    #: Where the rootfs should be (``LXCPATH/NAME/rootfs`` unless the template uses another one).
    rootfs: str
    #: ``--rootfs`` given on the command line (a directory or an archive), if any.
    source: str | None
    #: Arguments after ``--``.
    args: tuple[str, ...] = ()


@attrs.frozen
class TemplateResult:
    rootfs: str
    #: Config lines (``key = value``) written into the new container's config.
    config: tuple[tuple[str, str], ...]
    #: Whether the rootfs lives inside the container directory (destroy removes it).
    owned: bool = True


@attrs.frozen
class Template:
    name: str
    description: str
    build: Callable[[TemplateRequest], TemplateResult]
