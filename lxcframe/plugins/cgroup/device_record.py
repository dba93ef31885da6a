"""The device rules a cgroup2 device program enforces on a running container, kept beside its state.

A start that attaches a device program records its policy and the program's id here; a change of the
rules while the container runs (:mod:`.live_devices`) folds the new rule into the recorded policy,
attaches the program of the result and records it, and knows the program to detach by its id. The
record is not one of the state file's: a process other than the monitor changes it, and the monitor
writes the state file whole from its own records. It is a file of the container's runtime directory
(``0600``, replaced atomically, in the encoding of the state's records), removed by the cgroup
cleanup and by the undo of a failed start.
"""

from __future__ import annotations

import contextlib
import os

import attrs

from lxcframe import state as st
from lxcframe import transfer
from lxcframe.errors import ContainerError
from lxcframe.plugins.cgroup.device_rules import DevicePolicy

RECORD_FILE = "cgroup2-devices.json"


@attrs.frozen
class DeviceRecord:
    """The policy the attached device program enforces, and that program's id."""

    policy: DevicePolicy
    program: int


def record_path(runtime_dir: str) -> str:
    return os.path.join(runtime_dir, RECORD_FILE)


def save(runtime_dir: str, record: DeviceRecord) -> None:
    st.write_private_file(runtime_dir, RECORD_FILE, transfer.dumps(record))


def load(runtime_dir: str, name: str) -> DeviceRecord | None:
    """The record of container ``name``; ``None`` when it has none (no device program was attached)."""
    path = record_path(runtime_dir)
    raw = st.read_private_file(path, name, "device rule record")
    if raw is None:
        return None
    try:
        return transfer.decode(transfer.parse(raw), DeviceRecord)
    except transfer.TransferError as err:
        raise ContainerError(f"{name}: malformed device rule record {path}: {err}") from None


def forget(runtime_dir: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(record_path(runtime_dir))
