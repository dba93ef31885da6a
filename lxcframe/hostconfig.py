"""The host's own settings for lxcframe (TOML), e.g. which plugins an operator disabled."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping

import attrs

from lxcframe.errors import ConfigError

DEFAULT_HOST_CONFIG = "/etc/lxcframe/lxcframe.toml"
HOST_CONFIG_ENV = "LXCFRAME_HOST_CONFIG"
DEFAULT_LXCPATH = "/var/lib/lxcframe"


@attrs.frozen
class HostConfig:
    path: str | None = None
    disable: tuple[str, ...] = ()
    lxcpath: str = DEFAULT_LXCPATH
    #: LXC-format lines every new container's config starts with (LXC's ``default.conf``).
    default_config: str | None = None


def host_config_path(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get(HOST_CONFIG_ENV) or DEFAULT_HOST_CONFIG


def load_host_config(path: str | None = None, environ: Mapping[str, str] = os.environ) -> HostConfig:
    """Read the host config; a missing file means defaults, a broken one is an error naming it."""
    path = path or host_config_path(environ)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return HostConfig()
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"invalid TOML: {err}", path=path) from None
    except OSError as err:
        raise ConfigError(err.strerror or str(err), path=path) from None
    plugins = data.get("plugins", {})
    disable = plugins.get("disable", []) if isinstance(plugins, dict) else None
    if not isinstance(disable, list) or not all(isinstance(n, str) for n in disable):
        raise ConfigError("expected a list of plugin names", path=path, key="plugins.disable")
    lxcpath = data.get("lxcpath", DEFAULT_LXCPATH)
    if not isinstance(lxcpath, str) or not lxcpath.startswith("/"):
        raise ConfigError("expected an absolute path", path=path, key="lxcpath")
    default_config = data.get("default_config")
    if default_config is not None and (not isinstance(default_config, str) or not default_config.startswith("/")):
        raise ConfigError("expected an absolute path", path=path, key="default_config")
    return HostConfig(path=path, disable=tuple(disable), lxcpath=lxcpath, default_config=default_config)
