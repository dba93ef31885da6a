"""AppArmor: ``lxc.apparmor.*``, generated per-container profiles, the init label, nesting helpers.

The package's modules, each with one purpose:

* :mod:`.settings` – the keys and what a config sets them to;
* :mod:`.host` – what the host offers (kernel, parser), from injectable roots;
* :mod:`.naming`, :mod:`.globs`, :mod:`.profile` – the generated profile's names and text;
* :mod:`.store`, :mod:`.parser` – the profile file, and ``apparmor_parser``;
* :mod:`.start`, :mod:`.validate` – the host side of a start, and the check of a config;
* :mod:`.label`, :mod:`.nesting` – the init child's side;
* :mod:`.plugin` – the hooks, wired to one set of host paths.

This module is the builtin plugin: the hooks of an :class:`AppArmorPlugin` looking at the real host.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from lxcframe.hooks import hookimpl

if TYPE_CHECKING:
    from lxcframe.plugins.apparmor.plugin import AppArmorPlugin

# Every command loads every plugin; most never touch AppArmor (and on hosts without it, a start
# only needs the nesting helpers). So the package's modules are imported on the first hook that
# needs them, through one instance looking at the real host.
_HOST: list[AppArmorPlugin] = []


def _host() -> AppArmorPlugin:
    if not _HOST:
        from lxcframe.plugins.apparmor.plugin import AppArmorPlugin

        _HOST.append(AppArmorPlugin())
    return _HOST[0]


def __getattr__(name: str) -> Any:
    if name == "AppArmorPlugin":
        from lxcframe.plugins.apparmor.plugin import AppArmorPlugin

        return AppArmorPlugin
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _kernel_has_apparmor() -> bool:
    try:
        with open("/sys/module/apparmor/parameters/enabled", "rb") as handle:
            return handle.read(1) == b"Y"
    except OSError:
        return False


def _needed(config: Any) -> bool:
    """Whether a start has anything to do here: AppArmor in the kernel, or lxc.apparmor keys (the
    nesting mounts apply without AppArmor, and ignored keys are said to be ignored)."""
    return _kernel_has_apparmor() or bool(config.keys_under("lxc.apparmor."))


@hookimpl
def lxcframe_config_keys() -> list[Any]:
    from lxcframe.plugins.apparmor.settings import key_specs

    return key_specs()


@hookimpl
def lxcframe_check() -> list[Any]:
    return _host().lxcframe_check()


@hookimpl
def lxcframe_validate(config: Any) -> list[str]:
    if not config.keys_under("lxc.apparmor."):
        return []  # nothing asked of AppArmor: nothing to check, nothing to import
    return _host().lxcframe_validate(config)


@hookimpl
def lxcframe_plan(config: Any) -> Any:
    # The settings are the part (the child's nesting helpers need them even without AppArmor).
    return _host().lxcframe_plan(config) if _needed(config) else None


@hookimpl
def lxcframe_pre_start(ctx: Any) -> None:
    if _planned(ctx.plan):
        _host().lxcframe_pre_start(ctx)


@hookimpl
def lxcframe_child_pre_pivot(ctx: Any) -> None:
    if _planned(ctx.plan):
        _host().lxcframe_child_pre_pivot(ctx)


@hookimpl
def lxcframe_child_security(ctx: Any) -> None:
    if _planned(ctx.plan):
        _host().lxcframe_child_security(ctx)


def _planned(holder: Any) -> bool:
    """Whether the container's start has anything to do here: its plan has the settings part only then
    (``holder`` is the plan, or an attach's context holding the parts the container started with)."""
    from lxcframe.plugins.apparmor.settings import AppArmorSettings

    return holder.part_or_none(AppArmorSettings) is not None


@hookimpl
def lxcframe_attach(ctx: Any) -> None:
    if _planned(ctx):
        _host().lxcframe_attach(ctx)


@hookimpl
def lxcframe_attach_child(ctx: Any) -> None:
    if _planned(ctx):
        _host().lxcframe_attach_child(ctx)


@hookimpl
def lxcframe_cleanup(state: Any) -> None:
    if state.records:  # only a start that recorded something can have loaded a profile
        _host().lxcframe_cleanup(state)


@hookimpl
def lxcframe_destroy(name: str, lxcpath: str) -> None:
    if os.path.isdir(os.path.join(lxcpath, name, "apparmor")):  # where generated profiles are kept
        _host().lxcframe_destroy(name, lxcpath)


__all__ = ["AppArmorPlugin"]
