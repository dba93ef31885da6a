"""Autostart: the keys ``lxcframe autostart`` (LXC's ``lxc-autostart``) reads.

``lxc.start.auto`` marks a container for autostart, ``lxc.group`` puts it in groups (none: the NULL
group, the one selected by default), ``lxc.start.order`` sorts a run (lower first; a stop or kill
goes the other way) and ``lxc.start.delay`` is the seconds waited after starting one. A start itself
applies none of them: they are read by :mod:`lxcframe.autostart`, which the plugin only declares
and validates, so that a bad value is refused at its line like any key's.
"""

from __future__ import annotations

from lxcframe.config.keys import KeySpec, boolean01, integer, uint, words
from lxcframe.hooks import hookimpl


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    return [
        KeySpec("lxc.start.auto", boolean01, doc="1: started by `lxcframe autostart` (default 0)"),
        KeySpec("lxc.start.delay", uint, doc="seconds `lxcframe autostart` waits after starting it (default 0)"),
        KeySpec("lxc.start.order", integer,
                doc="its place in an autostart run: lower starts first, and stops last (default 0)"),
        KeySpec("lxc.group", words, multi=True,
                doc="autostart groups it belongs to (words; repeatable; none: the NULL group)"),
    ]
