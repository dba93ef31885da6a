"""Checking a ``generated`` profile before any start: compile it with ``apparmor_parser -QK``.

Compiling needs the parser but not AppArmor in the kernel, so a broken ``lxc.apparmor.raw`` rule is
a config error on every host with the parser installed, not a surprise on the first host that
enforces it. The profile compiled is the one this host would load (same features), named after the
container when the config sits at ``LXCPATH/NAME/config``.
"""

from __future__ import annotations

import os
import re

from lxcframe.config.model import ConfigValue, ContainerConfig
from lxcframe.plugins.apparmor.host import HostPaths, detect_kernel, detect_parser
from lxcframe.plugins.apparmor.naming import ProfileNames, profile_names
from lxcframe.plugins.apparmor.parser import ParserError, check_profile
from lxcframe.plugins.apparmor.profile import raw_line_range, render
from lxcframe.plugins.apparmor.settings import PROFILE, RAW, settings_of
from lxcframe.plugins.apparmor.start import features_for

_ERROR_LINE = re.compile(r"\bat line (\d+)\b")


def names_for(config: ContainerConfig) -> ProfileNames:
    path = config.path
    if path and os.path.isabs(path) and os.path.basename(path) == "config":
        directory = os.path.dirname(path)
        return profile_names(os.path.basename(directory), os.path.dirname(directory))
    # A config outside an lxcpath: any name does, the rules are what is checked.
    return profile_names("container", os.path.dirname(path) if path and os.path.isabs(path) else "/")


def _where(item: ConfigValue | None, key: str) -> str:
    if item is None:
        return f"{key}: "
    return f"{item.path}:{item.line}: {key} = {item.raw!r}: "


def problems(config: ContainerConfig, paths: HostPaths) -> list[str]:
    settings = settings_of(config)
    if not settings.generated:
        return []
    parser = detect_parser(paths)
    kernel = detect_kernel(paths)
    if parser.path is None or not parser.available:
        if kernel.enabled.value:
            return [f"{_where(config.located(PROFILE), PROFILE)}apparmor_parser not available ({parser.why})"]
        return []  # nothing to compile with, and nothing would be loaded on this host either
    names = names_for(config)
    features = features_for(kernel, parser, settings, config)
    try:
        result = check_profile(parser.path, render(names, features))
    except ParserError as err:
        return [f"{_where(config.located(PROFILE), PROFILE)}cannot check the generated profile: {err}"]
    if result.ok:
        return []
    message = f"apparmor_parser rejects the generated profile: {result.message or 'no message'}"
    raw_items = config.multi.get(RAW, ())
    found = _ERROR_LINE.search(result.message)
    raw_lines = raw_line_range(names, features)
    if found and int(found.group(1)) in raw_lines:
        item = raw_items[int(found.group(1)) - raw_lines.start]
        return [f"{_where(item, RAW)}{message}"]
    if raw_items and not found:
        # No line to go by: the base profile compiles on every supported parser, so the raw lines are
        # the likely cause.
        return [f"{_where(raw_items[-1], RAW)}{message}"]
    return [f"{_where(config.located(PROFILE), PROFILE)}{message}"]
