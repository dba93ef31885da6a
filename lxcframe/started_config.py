"""The config a running container started with, kept next to its state for ``get_running_config_item``.

LXC answers ``get_running_config_item`` from the monitor's own copy of the config, so the answer is
what the container runs with even after the file changed. Here the monitor writes that copy once,
before it forks init, beside ``parts.json`` (:mod:`lxcframe.started_parts`): every key's raw values
as the plan's config holds them (the file plus the caller's unsaved edits), root's, ``0600``,
replaced atomically and removed with the other runtime files (:func:`lxcframe.state.remove_runtime`).
"""

from __future__ import annotations

import json
import os

from lxcframe import state as st
from lxcframe.context import StartPlan
from lxcframe.errors import ContainerError

FORMAT = "lxcframe-started-config"
VERSION = 1


def config_path(lxcpath: str, name: str) -> str:
    return os.path.join(st.runtime_dir(lxcpath, name), st.STARTED_CONFIG_FILE)


def encode(values: dict[str, tuple[str, ...]]) -> bytes:
    document = {"format": FORMAT, "version": VERSION, "config": {key: list(raws) for key, raws in values.items()}}
    return json.dumps(document, separators=(",", ":")).encode()


def write(plan: StartPlan) -> None:
    """Record the config ``plan`` starts with in the container's runtime directory (by its monitor)."""
    st.write_private_file(st.runtime_dir(plan.lxcpath, plan.name), st.STARTED_CONFIG_FILE,
                          encode(plan.config.raw_values()))


def read(lxcpath: str, name: str) -> dict[str, tuple[str, ...]]:
    """Every key's raw values container ``name`` started with; a missing or malformed record is a
    :class:`ContainerError` naming the file."""
    path = config_path(lxcpath, name)
    raw = st.read_private_file(path, name, "started config file")
    if raw is None:
        raise ContainerError(f"{name}: no record of the config it started with ({path} is missing; a container "
                             "started by an earlier lxcframe must be restarted first)")
    try:
        return decode(raw)
    except ValueError as err:
        raise ContainerError(f"{name}: malformed started config file {path}: {err}") from None


def decode(raw: bytes) -> dict[str, tuple[str, ...]]:
    document = json.loads(raw)  # a JSONDecodeError is a ValueError
    if not isinstance(document, dict) or document.get("format") != FORMAT or document.get("version") != VERSION:
        raise ValueError(f"not an {FORMAT} document of version {VERSION}")
    values = document.get("config")
    if set(document) != {"format", "version", "config"} or not isinstance(values, dict) or not all(
            isinstance(raws, list) and all(isinstance(item, str) for item in raws) for raws in values.values()):
        raise ValueError("expected format, version and a config of keys to lists of values")
    return {key: tuple(raws) for key, raws in values.items()}
