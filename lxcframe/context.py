"""What crosses stages: the frozen start plan, and the per-side contexts hooks receive."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import attrs

from lxcframe.config.model import ContainerConfig
from lxcframe.frozen import frozen_mapping
from lxcframe.undo import UndoStack

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"



@attrs.frozen
class StartPlan:
    """Everything the start needs, decided before any fork; the child inherits it unchanged."""

    name: str
    lxcpath: str
    config: ContainerConfig
    #: The payload: init for ``start``, the application for ``execute``.
    argv: tuple[str, ...]
    #: ``daemon`` (monitor in the background), ``foreground`` (``start -F``) or ``execute``.
    mode: str
    rootfs: str
    #: Namespaces the init child unshares itself (the monitor unshares CLONE_NEWPID for it).
    clone_flags: int
    new_pidns: bool
    #: With a user namespace the child creates the pid namespace itself (see child._fork_pid1).
    pidns_in_child: bool
    env: tuple[str, ...]
    cwd: str
    uid: int
    gid: int
    hostname: str
    #: Where the rootfs is mounted in the child's mount namespace before pivot_root.
    rootfs_mount: str

    @property
    def config_path(self) -> str:
        return os.path.join(self.lxcpath, self.name, "config")

    @property
    def container_dir(self) -> str:
        return os.path.join(self.lxcpath, self.name)


class HostContext:
    """Host-side state of one start, in the monitor. Not frozen: it owns the undo stack."""

    def __init__(self, plan: StartPlan, plugins: Any, log: Any) -> None:
        self.plan = plan
        self.plugins = plugins
        self.log = log
        self.undo = UndoStack()
        #: Per-plugin JSON-able records saved in the state file (for stop, attach, info, cleanup).
        self.records: dict[str, Any] = {}
        #: Data handed to the child at the next barrier (plugin name -> JSON-able value).
        self.to_child: dict[str, Any] = {}
        #: Descriptors handed to the child at the next barrier (name -> fd); closed here once sent.
        self.fds_to_child: dict[str, int] = {}
        #: Host resources plugins hold for the container's life (plugin name -> anything), e.g.
        #: namespace descriptors kept open for the stop hooks. Never saved, never sent.
        self.resources: dict[str, Any] = {}
        #: The monitor's direct child (differs from ``init_pid`` when init was forked inside it).
        self.child_pid: int | None = None
        self.init_pid: int | None = None
        self.monitor_pid = os.getpid()
        #: True when the monitor is the caller's own process (``start -F``/``execute`` from a
        #: single-threaded caller): plugins must then not move it into another cgroup.
        self.monitor_is_caller = False

    @property
    def name(self) -> str:
        return self.plan.name


class ChildContext:
    """Child-side state of one start, in the container's init before it executes the payload."""

    def __init__(self, plan: StartPlan, log: Any, from_host: Mapping[str, Any]) -> None:
        self.plan = plan
        self.log = log
        self.from_host = frozen_mapping(from_host)
        self.rootfs_mount = plan.rootfs_mount
        #: O_PATH descriptor of the mounted rootfs, set after the ``rootfs`` stage.
        self.root_fd: int = -1
        #: Descriptors to keep across the payload's exec (e.g. an init opened before pivot_root).
        self.keep_fds: list[int] = []
        #: Set by a security plugin when init must switch user after the other security steps.
        self.final_uid = plan.uid
        self.final_gid = plan.gid
        #: Descriptors the monitor passed (name -> fd), e.g. an idmapped rootfs tree.
        self.received_fds: dict[str, int] = {}
        #: Per-plugin scratch space within the child (plugin name -> anything).
        self.scratch: dict[str, Any] = {}

    def open_in_rootfs(self, path: str, flags: int = os.O_PATH | os.O_CLOEXEC) -> int:
        from lxcframe.rootfs_paths import open_in_root

        return open_in_root(self.root_fd, path, flags)


@attrs.frozen
class CreateContext:
    name: str
    lxcpath: str
    template: str
    rootfs: str
    config_path: str


@attrs.frozen
class StopContext:
    name: str
    lxcpath: str
    kill: bool
    timeout: float


class AttachContext:
    """Host-side preparation of one attach: which cgroup files the child joins, which env it gets."""

    def __init__(self, state: Any, config: ContainerConfig, argv: tuple[str, ...]) -> None:
        self.state = state
        self.config = config
        self.argv = argv
        self.cgroup_procs: list[str] = []
        self.child_data: dict[str, Any] = {}


class AttachChildContext:
    def __init__(self, state: Any, config: ContainerConfig, data: Mapping[str, Any], proc_self: int = -1) -> None:
        self.state = state
        self.config = config
        self.data = frozen_mapping(data)
        #: O_PATH descriptor of this process's /proc/self on the host, opened before setns: the
        #: attaching process is outside the container's pid namespace, so the container's
        #: /proc/self does not lead to it.
        self.proc_self = proc_self
