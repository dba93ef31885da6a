"""Host-side hooks: they run outside the container, in the CLI, the library caller or the monitor.

Order of the start pipeline is owned by :mod:`lxcframe.stages`; each hook here says which stage
fires it. Every hook that creates host state (a cgroup, a device, a mount, a loaded profile) must
push its undo onto ``ctx.undo`` in the same call, so that a failure in any later stage unwinds it.
Hooks may raise :class:`lxcframe.errors.StageError` (or any exception): the start then fails,
naming the stage and the plugin, and everything done before is unwound.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from lxcframe.hooks import hookspec

if TYPE_CHECKING:
    from lxcframe.config.model import ContainerConfig
    from lxcframe.context import AttachContext, CreateContext, HostContext, PlanHost, StopContext
    from lxcframe.plugin_manager import Plugins
    from lxcframe.state import ContainerState


# --- create / destroy --------------------------------------------------------------------------


@hookspec
def lxcframe_post_create(ctx: CreateContext) -> None:
    """Called after a template has filled the rootfs and the config was written.

    Runs in the process that called ``create``. Raising fails the create, which removes the
    container directory it made.
    """


@hookspec
def lxcframe_destroy(name: str, lxcpath: str, config: ContainerConfig) -> None:
    """Called by ``destroy`` before the container's files are removed (also with ``lxc.rootfs.managed = 0``).

    Runs in the process that called ``destroy``; the container is stopped. Errors fail the destroy.
    """


# --- start: host side, in the monitor ----------------------------------------------------------


@hookspec
def lxcframe_validate(config: ContainerConfig, manager: Plugins) -> list[str]:
    """Check the parsed config as a whole before anything is created (stage ``validate``).

    Runs in the process that called ``start`` or ``execute``. Return problems as strings (an empty
    list when fine); all plugins' problems are collected and reported together, and nothing starts.
    ``manager`` holds the caller's plugins (what is disabled, the host config); take it only if needed.
    """


@hookspec
def lxcframe_clone_flags(config: ContainerConfig) -> int:
    """Namespaces (``CLONE_NEW*`` flags) this plugin needs for the container (stage ``validate``).

    Runs in the process that called ``start`` or ``execute``; the results are OR-ed into the plan.
    Example: the idmap plugin adds ``CLONE_NEWUSER`` when ``lxc.idmap`` is set.
    """


@hookspec
def lxcframe_clone_flags_remove(config: ContainerConfig) -> int:
    """Namespaces (``CLONE_NEW*`` flags) the container must not get, whoever asked (stage ``validate``).

    Runs in the process that called ``start`` or ``execute``, after :func:`lxcframe_clone_flags`; the
    results are OR-ed and cleared from the plan's flags. Example: the netns plugin removes
    ``CLONE_NEWNET`` for ``lxc.net.0.type = none``, so the container shares the host's network namespace.
    """


@hookspec
def lxcframe_plan(config: ContainerConfig, host: PlanHost) -> object | None:
    """Decide this plugin's part of the start plan from the validated config (stage ``validate``).

    Runs once, in the process that called ``start``, ``execute`` or ``attach``, before any fork;
    ``host`` holds the container's name, lxcpath and the host config. Return a frozen attrs instance
    of the plugin's own class (or ``None``): it travels in the plan unchanged to the monitor and the
    child, which read it with ``ctx.plan.part(MyPart)``, so they decide nothing again (e.g. seccomp
    returns its compiled program, caps the capabilities to drop). One part per class. Raise
    :class:`lxcframe.errors.ConfigError` naming file, line and key for a config that cannot be planned.
    """


@hookspec
def lxcframe_pre_start(ctx: HostContext) -> None:
    """Prepare host state before the init child exists (stage ``pre-start``).

    Runs in the monitor. Examples: create cgroups, generate and load a security profile, run
    ``lxc.hook.pre-start``. Push an undo for everything created.
    """


@hookspec
def lxcframe_child_created(ctx: HostContext, pid: int) -> None:
    """The init child exists and has unshared its user namespace, if any (stage ``userns``).

    Runs in the monitor while the child waits. Examples: write uid/gid maps.
    """


@hookspec
def lxcframe_attach_cgroup(ctx: HostContext, pid: int) -> None:
    """Move the init child into the container's cgroups before it unshares its cgroup namespace.

    Runs in the monitor while the child waits (stage ``cgroup``).
    """


@hookspec
def lxcframe_setup_network(ctx: HostContext, pid: int) -> None:
    """Create network devices on the host and move them into the child's netns (stage ``network``).

    Runs in the monitor after the child unshared its namespaces and while it waits. Push undos for
    devices and netns ids.
    """


@hookspec
def lxcframe_start_host(ctx: HostContext, pid: int) -> None:
    """The container is set up (rootfs pivoted, mounts and devices made) and waits before its security
    stage and init (stage ``start-host``).

    Runs in the monitor, in the host's namespaces. Example: ``lxc.hook.start-host``. Raising fails the
    start, which unwinds: the payload never runs.
    """


@hookspec
def lxcframe_post_start(ctx: HostContext, pid: int) -> None:
    """The payload has been executed; the container is RUNNING (stage ``post-start``).

    Runs in the monitor. Raising stops the container.
    """


@hookspec
def lxcframe_monitor_fds(ctx: HostContext) -> list[tuple[int, Callable[[], None]]]:
    """Descriptors the monitor watches while the container runs, each with its callback.

    Runs in the monitor after post-start and again before every wait, so the list may change as
    callbacks open or close descriptors. A callback runs when its descriptor is readable (or hung
    up); it must not block. Example: the console plugin's pty masters and client sockets.
    """


@hookspec
def lxcframe_stopped(ctx: HostContext, status: int) -> None:
    """The container's init has exited with wait status ``status`` (stage ``stop``).

    Runs in the monitor before the undo stack unwinds, so namespaces may still be inspected
    through ``ctx``. Example: ``lxc.hook.stop``.
    """


@hookspec
def lxcframe_post_stop(ctx: HostContext) -> None:
    """Everything the start created has been released (stage ``post-stop``).

    Runs in the monitor as the last step of a container's life. Example: ``lxc.hook.post-stop``.
    Errors are logged; they do not bring the container back.
    """


# --- running containers ------------------------------------------------------------------------


@hookspec(firstresult=True)
def lxcframe_kill_all(state: ContainerState, signal: int) -> bool | None:
    """Send ``signal`` to every process of the container, so that none escapes (``stop -k``).

    Runs in the process that called ``stop``. Return ``True`` when done (e.g. through
    ``cgroup.kill``); with no implementation, init alone is signalled. Stops at first non-None.
    """


@hookspec(firstresult=True)
def lxcframe_freeze(state: ContainerState, frozen: bool) -> bool | None:
    """Freeze (``frozen=True``) or thaw the container's processes. Stops at first non-None result.

    Runs in the process that called ``freeze``/``unfreeze``. Return ``True`` when done.
    """


@hookspec(firstresult=True)
def lxcframe_is_frozen(state: ContainerState) -> bool | None:
    """Say whether the container is frozen; ``None`` when this plugin cannot tell."""


@hookspec(firstresult=True)
def lxcframe_cgroup_item(state: ContainerState, key: str, value: str | None) -> str | None:
    """Read (``value`` None) or write one file of the running container's cgroup, named by ``key``
    (``pids.max``, ``memory.max``; LXC's ``lxc-cgroup NAME KEY [VALUE]``). Stops at first non-None result.

    Runs in the process that called ``get_cgroup_item``/``set_cgroup_item``. Returns the file's text
    without its trailing newline when reading, ``""`` once written, ``None`` when this plugin holds no
    cgroup of the container. Raise :class:`lxcframe.errors.ContainerError` for a key that names no
    file of the container's cgroup, or a value the kernel refuses, naming the key.
    """


@hookspec
def lxcframe_info(state: ContainerState) -> dict[str, object]:
    """Contribute fields to ``lxcframe info`` for a running container (e.g. memory, interfaces).

    Runs in the process that called ``info``; results are merged, later keys never override.
    """


@hookspec(firstresult=True)
def lxcframe_get_ips(state: ContainerState, interface: str | None, family: str | None,
                     scope: int | None) -> tuple[str, ...] | None:
    """Addresses of the running container, for ``Container.get_ips`` (python3-lxc's semantics).

    ``interface`` a device name (without it, every device but lo), ``family`` ``"inet"``, ``"inet6"``
    or ``None`` for both, ``scope`` the kernel's address scope (global when ``None``). Runs in the
    caller's process. ``None`` when this plugin does not manage networks; with no plugin answering,
    ``get_ips`` is an error rather than an empty result.
    """


@hookspec(firstresult=True)
def lxcframe_get_interfaces(state: ContainerState) -> tuple[str, ...] | None:
    """Interface names of the running container, lo included, for ``Container.get_interfaces``.

    Runs in the caller's process; ``None`` when this plugin does not manage networks.
    """


@hookspec(firstresult=True)
def lxcframe_move_interface(state: ContainerState, name: str, new_name: str | None, into: bool) -> bool | None:
    """Move a network interface into the running container (``into``: host interface ``name``) or out of
    it (its interface ``name``), renamed ``new_name`` when given; ``Container.attach_interface`` and
    ``detach_interface``. Stops at first non-None result.

    Runs in the caller's process; ``None`` when this plugin does not manage networks. Raise (an
    ``OSError`` naming the interface, or :class:`lxcframe.errors.ContainerError`) when the kernel refuses.
    """


@hookspec
def lxcframe_attach(ctx: AttachContext) -> None:
    """Prepare an ``attach`` on the host before the attaching child forks.

    Runs in the process that called ``attach``. Example: choose the cgroup to join
    (``ctx.cgroup_procs`` files the child's pid is written to).
    """


@hookspec(firstresult=True)
def lxcframe_mount(
    state: ContainerState, source: str, target: str, fstype: str | None, flags: int, data: str | None
) -> bool | None:
    """Inject a mount into a running container. Stops at first non-None result.

    Runs in the process that called ``mount``. Return ``True`` when mounted; raise on failure.
    """


@hookspec(firstresult=True)
def lxcframe_umount(state: ContainerState, target: str, flags: int, remove: bool) -> bool | None:
    """Remove a mount from a running container, and with ``remove`` the file or directory it was mounted
    on (a device node ``add_device_node`` gave). Stops at first non-None result."""


@hookspec
def lxcframe_cleanup(state: ContainerState, ctx: HostContext | None) -> None:
    """Release what ``state.records`` hold, for a container whose start's undo stack is gone.

    Two callers: the process that next touches a container whose monitor died (``start``, ``stop``,
    ``ls``), with ``ctx`` None; and the worker a server forks to end a container it adopted, once init
    exited (:mod:`lxcframe.after_stop`), with ``ctx`` a fresh :class:`HostContext` of the plan the
    container started with, after the ``stop`` stage and before ``post-stop``. Must be idempotent:
    what is already gone is not an error.
    """


@hookspec
def lxcframe_stop_requested(ctx: StopContext) -> None:
    """``stop`` was asked for a running container, before any signal is sent.

    Runs in the process that called ``stop``.
    """
