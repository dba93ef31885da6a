"""A container's config read from something other than an LXC config file, through a plugin.

An OCI bundle's ``config.json`` is one such source (plugin ``oci``). The plugin that recognises the
path (hook ``lxcframe_config_source``) gives the ``lxc.*`` lines it translates, each located where it
came from, plus what a start needs that no key says; the caller builds the same
:class:`~lxcframe.config.model.ContainerConfig` from those lines as from an LXC config, so every feature
plugin applies the source unchanged.
"""

from __future__ import annotations

import os
from typing import Any

import attrs

from lxcframe.config.parser import RawEntry
from lxcframe.errors import ConfigError, PluginError


@attrs.frozen
class ConfigSource:
    """What a config-source plugin read: the ``lxc.*`` lines, and the extras a start needs beyond them."""

    #: The file the lines came from (a bundle's config.json, absolute): what a config error names.
    path: str
    #: The translated ``key = value`` lines, each with ``path`` and the line it came from.
    entries: tuple[RawEntry, ...]
    #: The directory the source describes (a bundle's), absolute; what ``lxcframe-oci state`` reports.
    directory: str = ""
    #: The command exactly as the source gives it (an argument may hold blanks, which ``lxc.init.cmd``
    #: cannot say); empty: the config's ``lxc.init.cmd``.
    args: tuple[str, ...] = ()
    #: The process gets a pty (an OCI runtime sends its master to ``--console-socket``).
    terminal: bool = False
    #: That pty's size (rows, columns), if given.
    console_size: tuple[int, int] | None = None
    #: The umask the process starts with (no key sets it; the creating process sets it before the fork).
    umask: int | None = None
    #: Kept for the caller (an OCI state's ``annotations``); none changes how the container runs.
    annotations: tuple[tuple[str, str], ...] = ()
    #: The source's own lifecycle hooks, which the runtime reading it runs at its points (an OCI
    #: bundle's ``hooks``: :class:`lxcframe.oci.oci_hooks.BundleHooks`); ``None`` when it has none.
    hooks: Any = None

    def lines(self) -> list[tuple[str, str]]:
        """The lines as (key, value) pairs, in order."""
        return [(entry.key, entry.value) for entry in self.entries]


def read_source(plugins: Any, path: str, name: str, state_dir: str | None, *, what: str = "the config",
                reader: str | None = None) -> ConfigSource:
    """The config at ``path`` as the first enabled plugin that recognises it reads it.

    ``what`` names the path in errors ("the bundle"); ``reader`` is the plugin expected to read it
    (``oci`` for a bundle), named when no enabled plugin did, with why it did not (disabled, failed,
    unavailable, or it does not recognise the path).
    """
    if not os.path.lexists(path):
        raise ConfigError("no such file or directory", path=path)
    source = plugins.hook.lxcframe_config_source(path=path, name=name, state_dir=state_dir,
                                                 registry=plugins.key_registry())
    if source is None:
        raise PluginError(f"no enabled plugin reads {what} {path}: {_why_unread(plugins, reader)}")
    if not isinstance(source, ConfigSource):
        raise PluginError(f"lxcframe_config_source gave {type(source).__name__} for {path}, not a ConfigSource")
    return source


def _why_unread(plugins: Any, reader: str | None) -> str:
    from lxcframe.plugin_manager import DISABLED, ENABLED, FAILED

    if reader is None:
        return "no plugin recognises it"
    record = next((record for record in plugins.records() if record.name == reader), None)
    if record is None:
        return f"plugin {reader} is not installed"
    if record.state == ENABLED:
        return f"plugin {reader} does not recognise it"
    if record.state == DISABLED:
        return f"plugin {reader} is disabled"
    if record.state == FAILED:
        return f"plugin {reader} failed ({record.reason})"
    return f"plugin {reader} is {record.state} ({record.reason})"
