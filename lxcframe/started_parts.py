"""The parts of the plan a running container started with, kept next to its state for ``attach``.

As runc and crun keep a container's spec in their state directory: an attach applies what the
container was started with (the compiled seccomp policy, the capabilities dropped, the personality…),
not what its config says now, and it neither reads the config nor compiles a policy or reads an
fstab file again.

The monitor writes ``parts.json`` (:data:`lxcframe.state.PARTS_FILE`) once, before it forks init:
root's, ``0600``, replaced atomically, removed with the other runtime files. Each part is one
:mod:`lxcframe.transfer` document with its class's name beside it, so a reader can leave out the
parts of plugins it does not run (a caller's ``-p no:NAME``): their classes are not loaded there
(a part's class is loaded with its plugin, see ``lxcframe_plan`` in docs/plugins.md), and no hook
that could read them runs. Every other part is decoded and checked as a start request's are.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import attrs

from lxcframe import state as st
from lxcframe import transfer
from lxcframe.context import StartPlan
from lxcframe.errors import ContainerError

FORMAT = "lxcframe-started-parts"
VERSION = 1


@attrs.frozen
class KeptPart:
    """One part as the file holds it (transfer decodes attrs instances against a class it is told)."""

    value: Any


def parts_path(lxcpath: str, name: str) -> str:
    return os.path.join(st.runtime_dir(lxcpath, name), st.PARTS_FILE)


def encode(parts: tuple[Any, ...]) -> bytes:
    entries = [{"class": transfer.class_name(type(part)), "part": transfer.wrap(KeptPart(part))} for part in parts]
    return json.dumps({"format": FORMAT, "version": VERSION, "parts": entries}, separators=(",", ":")).encode()


def write(plan: StartPlan) -> None:
    """Record ``plan``'s parts in the container's runtime directory (by its monitor)."""
    st.write_private_file(st.runtime_dir(plan.lxcpath, plan.name), st.PARTS_FILE, encode(plan.parts))


def read(lxcpath: str, name: str, packages: set[str]) -> tuple[Any, ...]:
    """The parts container ``name`` started with, but those of plugins not loaded here.

    ``packages`` are the top-level packages of the caller's plugins (besides lxcframe). A missing,
    foreign-written or malformed file is a :class:`ContainerError` naming it.
    """
    path = parts_path(lxcpath, name)
    raw = st.read_private_file(path, name, "plan parts file")
    if raw is None:
        raise ContainerError(f"{name}: no record of the plan it started with ({path} is missing; a container "
                             "started by an earlier lxcframe must be restarted before it can be attached to)")
    try:
        return decode(raw, packages)
    except transfer.TransferError as err:
        raise ContainerError(f"{name}: malformed plan parts file {path}: {err}") from None


def decode(raw: bytes, packages: set[str]) -> tuple[Any, ...]:
    document = transfer.parse_json(raw)
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise transfer.TransferError(f"not an {FORMAT} document")
    if document.get("version") != VERSION:
        raise transfer.TransferError(f"{FORMAT} version {document.get('version')!r}: "
                                     f"this installation reads version {VERSION}")
    entries = document.get("parts")
    if set(document) != {"format", "version", "parts"} or not isinstance(entries, list):
        raise transfer.TransferError("expected format, version and a list of parts")
    trusted = {"lxcframe", *packages}
    parts = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) != {"class", "part"} or not isinstance(entry["class"], str):
            raise transfer.TransferError(f"parts[{index}]: not a class name and its part")
        module = entry["class"].partition(":")[0]
        if module.split(".")[0] not in trusted or module not in sys.modules:
            continue  # a plugin this caller does not run: nothing here reads its part
        value = transfer.decode(transfer.unwrap(entry["part"]), KeptPart, packages).value
        held = transfer.class_name(type(value))
        if held != entry["class"]:
            raise transfer.TransferError(f"parts[{index}]: holds a {held}, not a {entry['class']}")
        parts.append(value)
    return tuple(parts)
