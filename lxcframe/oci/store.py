"""Per-container state of the OCI runtime mode: ``<root>/<id>/state.json`` and the exec fifo beside it.

The directory is also the container's lxcframe directory (the lxcpath is ``<root>``, the name the id),
and lxcframe's own runtime state lives below ``<root>/.run`` (``LXCFRAME_RUNDIR``), so everything a
container leaves on the host is under ``--root`` until ``delete`` removes it.

The status is not stored: as runc does, it is read from the host each time: no init left (or another
process under its pid) is ``stopped``, a frozen cgroup ``paused``, an exec fifo still there ``created``,
else ``running``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from typing import Any

import attrs

from lxcframe.names import why_invalid

OCI_VERSION = "1.0.2"
STATE_FILE = "state.json"
FIFO = "exec.fifo"
CREATED, RUNNING, PAUSED, STOPPED = "created", "running", "paused", "stopped"


class OciError(Exception):
    """A command's failure: its message is what runc would say; the command exits 1."""


def not_found(container_id: str) -> OciError:
    # Shims and podman look for this text.
    return OciError(f"container {container_id} does not exist")


@attrs.frozen
class OciState:
    id: str
    pid: int
    #: Init's start time (clock ticks since boot): a recycled pid is not the container's init.
    pid_start: int
    bundle: str
    rootfs: str
    created: str
    annotations: dict[str, str] = attrs.field(factory=dict)
    owner: str = ""

    def document(self, status: str) -> dict[str, Any]:
        """The runtime-spec state, as ``state`` prints it."""
        return {"ociVersion": OCI_VERSION, "id": self.id, "pid": 0 if status == STOPPED else self.pid,
                "status": status, "bundle": self.bundle, "rootfs": self.rootfs, "created": self.created,
                "annotations": dict(self.annotations), "owner": self.owner}


class Store:
    """The containers below one ``--root``."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def directory(self, container_id: str) -> str:
        why = why_invalid(container_id)
        if why is not None:
            raise OciError(f"invalid container id {container_id!r}: {why}")
        return os.path.join(self.root, container_id)

    def fifo(self, container_id: str) -> str:
        return os.path.join(self.directory(container_id), FIFO)

    def exists(self, container_id: str) -> bool:
        return os.path.isdir(self.directory(container_id))

    def make(self, container_id: str) -> str:
        """The new container's directory, with its exec fifo; refuses an id in use."""
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        path = self.directory(container_id)
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            raise OciError(f"container {container_id} already exists") from None
        os.mkfifo(os.path.join(path, FIFO), 0o600)
        return path

    def write(self, state: OciState) -> None:
        path = os.path.join(self.directory(state.id), STATE_FILE)
        temporary = path + ".new"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(attrs.asdict(state), handle)
        os.replace(temporary, path)

    def read(self, container_id: str) -> OciState:
        """The recorded state; a container whose create did not finish does not exist yet."""
        path = os.path.join(self.directory(container_id), STATE_FILE)
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            raise not_found(container_id) from None
        except ValueError as err:
            raise OciError(f"container {container_id}: unreadable {path}: {err}") from None
        return OciState(**data)

    def remove(self, container_id: str) -> None:
        shutil.rmtree(self.directory(container_id), ignore_errors=True)

    def ids(self) -> list[str]:
        with contextlib.suppress(FileNotFoundError):
            return sorted(name for name in os.listdir(self.root)
                          if os.path.isfile(os.path.join(self.root, name, STATE_FILE)))
        return []
