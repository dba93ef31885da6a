"""Plugin ``oci``: an OCI bundle is a config source, read into the ``lxc.*`` lines an LXC config writes.

The translation is :mod:`lxcframe.oci.bundle`'s; this plugin answers ``lxcframe_config_source`` with it,
so that ``lxcframe-oci create`` gets a bundle's config as any other source's, and a host that disables
the plugin (``[plugins] disable``, ``LXCFRAME_DISABLE_PLUGINS``) reads no bundle. Every command
registers this plugin, and most never read a bundle: the translation (a dozen modules) is imported by
the hook, not here.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from lxcframe.hooks import hookimpl

if TYPE_CHECKING:
    from lxcframe.config.keys import KeyRegistry
    from lxcframe.config.source import ConfigSource

#: The file of a bundle that holds its config (the runtime-spec's name; :data:`lxcframe.oci.bundle.CONFIG_NAME`,
#: which this module does not import at registration).
CONFIG_NAME = "config.json"


@hookimpl
def lxcframe_api_extensions() -> list[str]:
    return ["oci"]


@hookimpl
def lxcframe_config_source(path: str, name: str, state_dir: str | None, registry: KeyRegistry) -> ConfigSource | None:
    """A bundle directory, or its ``config.json``; anything else is another plugin's."""
    if os.path.isdir(path):
        # A bundle is a directory: one without a config.json is a broken bundle, reported as such.
        bundle_dir = path
    elif os.path.basename(path) == CONFIG_NAME:
        bundle_dir = os.path.dirname(path) or "."
    else:
        return None
    from lxcframe.oci.bundle import read_bundle

    return read_bundle(bundle_dir, name, state_dir=state_dir).source(registry)
