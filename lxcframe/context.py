"""What crosses stages: the frozen start plan with its per-plugin parts, and the per-side contexts
hooks receive (each with a typed :class:`~lxcframe.stash.Stash`, what crosses a barrier in a
:class:`~lxcframe.handover.Handover`, what is saved in ``state.json`` in typed records)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from lxcframe.config.model import ContainerConfig
from lxcframe.handover import Handover, Received, by_class
from lxcframe.records import Records
from lxcframe.stash import DescriptorKey, Stash
from lxcframe.undo import UndoStack

if TYPE_CHECKING:
    from lxcframe.hostconfig import HostConfig

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

T = TypeVar("T")


@attrs.frozen
class PlanHost:
    """What ``lxcframe_plan`` may know of the host and the start besides the config."""

    name: str
    lxcpath: str
    #: The host config the caller's plugins were loaded with (``/etc/lxcframe/lxcframe.toml``).
    config: HostConfig


@attrs.frozen
class Identity:
    """Who the init child becomes inside its user namespace once the rootfs is mounted (a part the
    plugin owning ``lxc.idmap`` publishes; without one the child keeps the host root's ids)."""

    uid: int
    gid: int


#: A detached tree (e.g. the idmapped rootfs) the monitor hands the child to attach as its rootfs.
ROOTFS_TREE = DescriptorKey("rootfs_tree")


def _parts(value: Any) -> tuple[Any, ...]:
    parts = tuple(value)
    by_class(parts, "plan parts")
    return parts


def find_part(parts: tuple[Any, ...], cls: type[T]) -> T | None:
    for part in parts:
        if type(part) is cls:
            found: T = part
            return found
    return None


def need_part(parts: tuple[Any, ...], cls: type[T]) -> T:
    found = find_part(parts, cls)
    if found is None:
        raise KeyError(f"the plan has no {cls.__module__}.{cls.__qualname__} part (its plugin did not make one)")
    return found



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
    #: What each plugin decided of the config on the caller's side (``lxcframe_plan``), one frozen
    #: attrs instance per class: read with :meth:`part` / :meth:`part_or_none`.
    parts: tuple[Any, ...] = attrs.field(default=(), converter=_parts)

    def part(self, cls: type[T]) -> T:
        """The part of class ``cls``; a ``KeyError`` naming the class if no plugin made one."""
        return need_part(self.parts, cls)

    def part_or_none(self, cls: type[T]) -> T | None:
        return find_part(self.parts, cls)

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
        #: Per-plugin typed records saved in the state file (for stop, attach, info, cleanup).
        self.state_records = Records()
        #: Messages and descriptors handed to the child at the next barrier; closed here once sent.
        self.handover = Handover()
        #: What plugins hold for the container's life (e.g. namespace descriptors kept open for the
        #: stop hooks, the console server), by :class:`~lxcframe.stash.StashKey`. Never saved, never sent.
        self.stash = Stash()
        #: The monitor's direct child (differs from ``init_pid`` when init was forked inside it).
        self.child_pid: int | None = None
        self.init_pid: int | None = None
        self.monitor_pid = os.getpid()
        #: True when the monitor is the caller's own process (``start -F``/``execute`` from a
        #: single-threaded caller): plugins must then not move it into another cgroup.
        self.monitor_is_caller = False
        #: True once the server adopted the running container (:mod:`lxcframe.adoption`).
        self.adopted = False
        #: Descriptors a plugin needs after init exited (e.g. the namespaces for the stop hooks), by a
        #: name of the plugin's. They follow the container: from a server's start worker to the server,
        #: and on to the worker that ends the container, where they are here again under the same names.
        self.kept: dict[str, int] = {}
        #: What the server serves for the container's life once its start worker left, by kind: today
        #: ``"console"``, a :class:`lxcframe.console_service.ConsoleServer`.
        self.served: dict[str, Any] = {}
        #: True in the end of a container its server starts again once the end is done (a reboot):
        #: what goes only with a container's last end (``lxc.ephemeral``) stays.
        self.restarting = False

    @property
    def name(self) -> str:
        return self.plan.name


class ChildContext:
    """Child-side state of one start, in the container's init before it executes the payload."""

    def __init__(self, plan: StartPlan, log: Any, received: Received) -> None:
        self.plan = plan
        self.log = log
        #: What the monitor handed over at the barriers so far (typed messages, descriptors).
        self.received = received
        self.rootfs_mount = plan.rootfs_mount
        #: O_PATH descriptor of the mounted rootfs, set after the ``rootfs`` stage.
        self.root_fd: int = -1
        #: Descriptors to keep across the payload's exec (e.g. an init opened before pivot_root).
        self.keep_fds: list[int] = []
        #: Set by a security plugin when init must switch user after the other security steps.
        self.final_uid = plan.uid
        self.final_gid = plan.gid
        #: Init's supplementary groups, set with its ids (``None``: none at all).
        self.final_groups: tuple[int, ...] | None = None
        #: MS_* flags the rootfs mount gets just before the pivot (0: as it was mounted).
        self.rootfs_flags = 0
        #: What plugins keep between the child's stages, by :class:`~lxcframe.stash.StashKey`.
        self.stash = Stash()

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
    """Host-side preparation of one attach: which cgroup files the child joins, what it is handed."""

    def __init__(self, state: Any, argv: tuple[str, ...], parts: tuple[Any, ...] = ()) -> None:
        self.state = state
        self.argv = argv
        #: The parts of the plan the container started with (``lxcframe_plan``), as its monitor kept
        #: them: not what the config says now.
        self.parts = parts
        self.cgroup_procs: list[str] = []
        #: Frozen attrs messages for the attaching child, one per class (e.g. the LSM label to take).
        self.handover = Handover()

    def part_or_none(self, cls: type[T]) -> T | None:
        return find_part(self.parts, cls)


class AttachChildContext:
    def __init__(self, state: Any, parts: tuple[Any, ...], messages: tuple[Any, ...], proc_self: int = -1,
                 personality: int | None = None, executes: bool = False) -> None:
        self.state = state
        #: The attached process executes a command next (False: it runs a Python callable as it is), so
        #: what execve recomputes (the effective and permitted capabilities) may wait for it.
        self.executes = executes
        #: The personality the attach asked for, which replaces the container's ``lxc.arch``.
        self.personality = personality
        self.parts = parts
        self._messages = by_class(messages, "attach hand-over")
        #: O_PATH descriptor of this process's /proc/self on the host, opened before setns: the
        #: attaching process is outside the container's pid namespace, so the container's
        #: /proc/self does not lead to it.
        self.proc_self = proc_self

    def part_or_none(self, cls: type[T]) -> T | None:
        return find_part(self.parts, cls)

    def message(self, cls: type[T]) -> T | None:
        """The message of class ``cls`` the host-side attach hooks handed over, or ``None``."""
        value: T | None = self._messages.get(cls)
        return value
