"""The host's own settings for lxcframe (TOML), e.g. which plugins an operator disabled.

Every key is checked: a misspelled key or section (``[plugin]``, ``disabel``) is an error naming the
file, the line and the key, never a setting silently left at its default.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import attrs

from lxcframe.config.keys import closest
from lxcframe.errors import ConfigError
from lxcframe.plugins import BUILTIN_DRIVERS

DEFAULT_HOST_CONFIG = "/etc/lxcframe/lxcframe.toml"
HOST_CONFIG_ENV = "LXCFRAME_HOST_CONFIG"
DEFAULT_LXCPATH = "/var/lib/lxcframe"


def default_lxcpath() -> str:
    """Root's ``/var/lib/lxcframe``; another user's, as LXC's ``~/.local/share/lxc``, below
    ``$XDG_DATA_HOME`` (``~/.local/share`` when unset)."""
    if os.geteuid() == 0:
        return DEFAULT_LXCPATH
    data_home = os.environ.get("XDG_DATA_HOME")
    if not data_home or not os.path.isabs(data_home):
        data_home = os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data_home, "lxcframe")

#: What a start does with config keys no enabled plugin applies: refuse them (LXC's way) or warn.
UNHANDLED_ERROR, UNHANDLED_WARN = "error", "warn"
UNHANDLED_POLICIES = (UNHANDLED_ERROR, UNHANDLED_WARN)

#: Every key the file may hold; a table maps to its own keys.
_SCHEMA: dict[str, Any] = {
    "lxcpath": None,
    "default_config": None,
    "plugins": {"disable": None, "unhandled_keys": None},
    "cgroup": {"drivers": None},
}
CGROUP_DRIVERS = BUILTIN_DRIVERS["cgroup"]


@attrs.frozen
class HostConfig:
    path: str | None = None
    disable: tuple[str, ...] = ()
    lxcpath: str = attrs.field(factory=default_lxcpath)
    #: LXC-format lines every new container's config starts with (LXC's ``default.conf``).
    default_config: str | None = None
    #: ``[plugins] unhandled_keys``: ``"error"`` (default) or ``"warn"``.
    unhandled_keys: str = UNHANDLED_ERROR
    #: The line of ``[plugins] disable``, so a bad name in it can be located.
    disable_line: int | None = attrs.field(default=None, eq=False)
    #: ``[cgroup] drivers``: the cgroup drivers that may run (``None``: every one the layout has).
    cgroup_drivers: tuple[str, ...] | None = None


def host_config_path(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get(HOST_CONFIG_ENV) or DEFAULT_HOST_CONFIG


def unhandled_opt_out(host: HostConfig) -> str:
    """How an operator lets configs with unhandled keys start anyway, for the refusal's message."""
    return f' (to start it anyway: unhandled_keys = "warn" in [plugins] of {host.path or host_config_path()})'


def load_host_config(path: str | None = None, environ: Mapping[str, str] = os.environ) -> HostConfig:
    """Read the host config; a missing file means defaults, a broken one is an error naming it."""
    path = path or host_config_path(environ)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return HostConfig()
    except OSError as err:
        raise ConfigError(err.strerror or str(err), path=path) from None
    text = raw.decode("utf-8", errors="replace")
    # Only here: most hosts have no host config, and tomllib (with datetime) costs every command ~10 ms.
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"invalid TOML: {err}", path=path) from None

    def error(message: str, key: str, value: str | None = None) -> ConfigError:
        return ConfigError(message, path=path, line=_line_of(text, key), key=key, value=value)

    _check_keys(data, _SCHEMA, "", error)
    plugins = data.get("plugins", {})
    if not isinstance(plugins, dict):
        raise error("expected a table ([plugins])", "plugins")
    disable = plugins.get("disable", [])
    if not isinstance(disable, list) or not all(isinstance(n, str) for n in disable):
        raise error("expected a list of plugin names", "plugins.disable")
    unhandled = plugins.get("unhandled_keys", UNHANDLED_ERROR)
    if unhandled not in UNHANDLED_POLICIES:
        raise error(f"expected one of {', '.join(UNHANDLED_POLICIES)}", "plugins.unhandled_keys")
    lxcpath = data["lxcpath"] if "lxcpath" in data else default_lxcpath()
    if not isinstance(lxcpath, str) or not lxcpath.startswith("/"):
        raise error("expected an absolute path", "lxcpath")
    default_config = data.get("default_config")
    if default_config is not None and (not isinstance(default_config, str) or not default_config.startswith("/")):
        raise error("expected an absolute path", "default_config")
    cgroup_drivers = _cgroup_drivers(data, error)
    return HostConfig(path=path, disable=tuple(disable), lxcpath=lxcpath, default_config=default_config,
                      unhandled_keys=unhandled, disable_line=_line_of(text, "plugins.disable"),
                      cgroup_drivers=cgroup_drivers)


def _cgroup_drivers(data: Mapping[str, Any], error: Any) -> tuple[str, ...] | None:
    """``[cgroup] drivers``: a list of driver names, at least one (no cgroups at all is ``-p no:cgroup``)."""
    table = data.get("cgroup", {})
    if not isinstance(table, dict):
        raise error("expected a table ([cgroup])", "cgroup")
    if "drivers" not in table:
        return None
    drivers = table["drivers"]
    known = ", ".join(CGROUP_DRIVERS)
    if not isinstance(drivers, list) or not all(isinstance(name, str) for name in drivers):
        raise error(f"expected a list of cgroup driver names ({known})", "cgroup.drivers")
    for name in drivers:
        if name not in CGROUP_DRIVERS:
            hint = closest(name, CGROUP_DRIVERS)
            raise error(f"no cgroup driver of that name (drivers: {known})"
                        + (f"; did you mean {hint!r}?" if hint else ""), "cgroup.drivers", name)
    if not drivers:
        raise error('expected at least one driver (to run without cgroups: [plugins] disable = ["cgroup"])',
                    "cgroup.drivers")
    return tuple(dict.fromkeys(drivers))


def _check_keys(data: Mapping[str, Any], schema: Mapping[str, Any], prefix: str, error: Any) -> None:
    for key, value in data.items():
        dotted = prefix + key
        if key not in schema:
            hint = closest(dotted, [prefix + known for known in schema])
            raise error("unknown key" + (f" (did you mean {hint!r}?)" if hint else ""), dotted)
        if schema[key] is not None and isinstance(value, dict):
            _check_keys(value, schema[key], dotted + ".", error)


def _line_of(text: str, dotted: str) -> int | None:
    """The line that sets ``dotted`` (``plugins.disable``) or opens its table, for messages.

    tomllib keeps no positions; this finds plain keys and ``[table]`` headers, which is what a
    hand-written host config holds. ``None`` when the key is written some other way.
    """
    *tables, key = dotted.split(".")
    table = ".".join(tables)
    current = ""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.fullmatch(r"\[\s*([^\[\]]+?)\s*\]\s*(#.*)?", stripped)
        if header:
            current = re.sub(r"\s*\.\s*", ".", header.group(1))
            if current == dotted:
                return number
            continue
        if current == table and re.match(rf"{re.escape(key)}\s*[=.]", stripped):
            return number
        if not current and re.match(rf"{re.escape(dotted)}\s*=", stripped):
            return number
    return None
