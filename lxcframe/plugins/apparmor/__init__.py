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

from lxcframe.plugins.apparmor.plugin import AppArmorPlugin

_HOST = AppArmorPlugin()

lxcframe_config_keys = _HOST.lxcframe_config_keys
lxcframe_check = _HOST.lxcframe_check
lxcframe_validate = _HOST.lxcframe_validate
lxcframe_pre_start = _HOST.lxcframe_pre_start
lxcframe_child_pre_pivot = _HOST.lxcframe_child_pre_pivot
lxcframe_child_security = _HOST.lxcframe_child_security
lxcframe_attach = _HOST.lxcframe_attach
lxcframe_attach_child = _HOST.lxcframe_attach_child
lxcframe_cleanup = _HOST.lxcframe_cleanup
lxcframe_destroy = _HOST.lxcframe_destroy

__all__ = ["AppArmorPlugin"]
