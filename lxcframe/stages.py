"""The start, as one table in execution order: the one place that owns it.

:data:`START_TABLE` lists everything a start does, on both sides of the fork: the stages of plugins
(:class:`Stage`: one hook each), the core's own steps between them (:class:`CoreStep`: unshare,
pivot_root, closing descriptors, exec …) and the barriers where the child stops until the monitor
has run the host stages bound there (:class:`Barrier`). :mod:`lxcframe.driver` walks it, the monitor
its host side and the init child its child side; their names are the labels errors carry
(``StageError.stage``). :data:`PLUGIN_ORDER` says, next to it, which builtin plugin runs first or
last within a stage where that matters, and why; the plugin manager applies it to the builtins.

A golden test (``tests/test_stage_table.py``) pins both and checks that a real start fires the hooks
in this order.
"""

from __future__ import annotations

import attrs

HOST, CHILD = "host", "child"


@attrs.frozen
class Stage:
    """A stage of plugins: the implementations of one hook, called on one side of the fork."""

    name: str
    hook: str
    side: str  # HOST (the caller or the monitor) or CHILD (the container's init before exec)
    #: The barrier a host stage runs at, with the child waiting there ("": the child is not waiting).
    barrier: str = ""
    #: Called by the caller while it plans the start, before any monitor exists.
    by_caller: bool = False
    #: A firstresult hook: the stage stops at the first answer.
    firstresult: bool = False
    #: For a firstresult stage that must be answered: the error when no plugin did.
    unanswered: str = ""
    #: After the start: a failure is logged with this line instead of failing the start …
    logged_as: str = ""
    #: … and also stops the container.
    stops_on_failure: bool = False


@attrs.frozen
class CoreStep:
    """One of the core's own steps, between stages: the side's core has a method of this name."""

    name: str
    side: str
    does: str

    @property
    def method(self) -> str:
        return self.name.replace("-", "_")


@attrs.frozen
class Barrier:
    """The child stops and says so; the monitor runs the host stages bound here, then lets it go on.

    ``child_waits`` is False for the exec handshake: the child does not wait there, its exec closes
    the channel (close-on-exec), and that end-of-file after its ``exec`` record is what the monitor
    waits for.
    """

    name: str
    child_waits: bool = True
    side = "both"


Entry = Stage | CoreStep | Barrier

START_TABLE: tuple[Entry, ...] = (
    Stage("validate", "lxcframe_validate", HOST, by_caller=True),
    # Each plugin's frozen part of the plan, decided once here; the monitor and the child only read it.
    Stage("plan", "lxcframe_plan", HOST, by_caller=True),
    CoreStep("starting", HOST, "record STARTING in the state file"),
    Stage("pre-start", "lxcframe_pre_start", HOST),
    CoreStep("fork", HOST, "record what pre-start made; unshare the pid namespace (without a user namespace) "
                           "and fork the init child"),
    CoreStep("clone", CHILD, "arm the parent-death signal (SIGKILL) and check the new pid namespace"),
    CoreStep("unshare-user", CHILD, "unshare the user namespace (with one), so the monitor can write its maps"),
    Barrier("created"),
    Stage("userns", "lxcframe_child_created", HOST, barrier="created"),
    Stage("cgroup", "lxcframe_attach_cgroup", HOST, barrier="created"),
    CoreStep("unshare", CHILD, "unshare the other namespaces; with a user namespace the pid namespace too, "
                               "and fork pid 1 in it"),
    Barrier("namespaces"),
    Stage("network", "lxcframe_setup_network", HOST, barrier="namespaces"),
    Stage("child-network", "lxcframe_child_network", CHILD),
    CoreStep("private-mounts", CHILD, "make / a recursive slave: nothing mounted from here reaches the host"),
    Stage("pre-mount", "lxcframe_child_pre_mount", CHILD),
    Stage("rootfs", "lxcframe_child_mount_rootfs", CHILD, firstresult=True,
          unanswered="no plugin mounted the rootfs"),
    CoreStep("open-rootfs", CHILD, "open the mounted rootfs (ctx.root_fd)"),
    CoreStep("become-root", CHILD, "with a user namespace, take the container's root ids (kept the host's "
                                   "until now, which own the path to the rootfs) and arm the parent-death "
                                   "signal again"),
    Stage("mounts", "lxcframe_child_mount_filesystems", CHILD),
    Stage("devices", "lxcframe_child_devices", CHILD),
    Stage("pre-pivot", "lxcframe_child_pre_pivot", CHILD),
    CoreStep("pivot", CHILD, "pivot_root into the rootfs and detach the old root"),
    # Set up, not yet confined: the host runs its start-host stage now, before init (LXC's order).
    Barrier("start-host"),
    Stage("start-host", "lxcframe_start_host", HOST, barrier="start-host"),
    Stage("security", "lxcframe_child_security", CHILD),
    Stage("exec", "lxcframe_child_pre_exec", CHILD),
    CoreStep("close-descriptors", CHILD, "close every descriptor but stdio, the channel, the init to execute "
                                         "and ctx.keep_fds"),
    CoreStep("enter-cwd", CHILD, "enter lxc.init.cwd, proven to lie inside the root"),
    CoreStep("final-ids", CHILD, "take init's ids and arm lxc.monitor.signal.pdeath (a change of ids "
                                 "clears it)"),
    CoreStep("exec", CHILD, "say exec, then execute the payload (or the sealed init that runs it)"),
    Barrier("exec", child_waits=False),
    CoreStep("running", HOST, "record RUNNING, forward signals to init, tell the caller"),
    Stage("post-start", "lxcframe_post_start", HOST, logged_as="post-start failed, stopping",
          stops_on_failure=True),
    CoreStep("wait", HOST, "serve the plugins' descriptors until init exits; record STOPPING"),
    Stage("stop", "lxcframe_stopped", HOST, logged_as="stop hook failed"),
    CoreStep("unwind", HOST, "undo, in reverse, what the start made on the host"),
    Stage("post-stop", "lxcframe_post_stop", HOST, logged_as="post-stop failed"),
)

#: The core step from which on the container counts as started: a failure is no failed start.
STARTED = "running"
_STARTED_AT = next(i for i, entry in enumerate(START_TABLE) if isinstance(entry, CoreStep) and entry.name == STARTED)

#: The stages alone, in order (each names its hook and its side).
START_STAGES: tuple[Stage, ...] = tuple(entry for entry in START_TABLE if isinstance(entry, Stage))
STAGE_BY_HOOK = {stage.hook: stage for stage in START_STAGES}
#: Stages of a container that has started: a failure there is no failed start.
AFTER_START = frozenset(entry.name for entry in START_TABLE[_STARTED_AT:] if isinstance(entry, Stage))

#: What the monitor walks: its side, the barriers, up to the exec handshake (the start) and after it.
HOST_START: tuple[Entry, ...] = tuple(
    entry for entry in START_TABLE[:_STARTED_AT]
    if entry.side in (HOST, "both") and not (isinstance(entry, Stage) and entry.by_caller))
HOST_AFTER_START: tuple[Entry, ...] = tuple(entry for entry in START_TABLE[_STARTED_AT:] if entry.side == HOST)
_WAIT_AT = next(i for i, entry in enumerate(HOST_AFTER_START) if isinstance(entry, CoreStep) and entry.name == "wait")
#: Of those, what runs while init does (a server's worker walks these, then hands the container over) …
HOST_WHILE_RUNNING: tuple[Entry, ...] = HOST_AFTER_START[:_WAIT_AT]
#: … and what ends it, from the wait for init on.
HOST_AFTER_EXIT: tuple[Entry, ...] = HOST_AFTER_START[_WAIT_AT:]
#: What the init child walks: its side and the barriers it waits at.
CHILD_WALK: tuple[Entry, ...] = tuple(
    entry for entry in START_TABLE
    if entry.side == CHILD or (isinstance(entry, Barrier) and entry.child_waits))


@attrs.frozen
class Placement:
    """A builtin plugin's place within one stage: ``first`` or ``last``, and why."""

    plugin: str
    where: str  # "first" or "last"
    why: str


#: hook -> the builtins placed first or last in it, in the order pluggy calls them. Applied at
#: registration as pluggy's ``tryfirst``/``trylast`` (the builtins carry no such marks of their own);
#: within "first" and within "last" the later registered (``lxcframe/plugins/__init__.py``) runs first.
#: Third-party plugins keep marking their implementations themselves.
PLUGIN_ORDER: dict[str, tuple[Placement, ...]] = {
    "lxcframe_setup_network": (
        Placement("netns", "first", "its release of the namespace is pushed first, so undone last: whatever "
                                    "else holds the namespace (descriptors for the stop hooks, "
                                    "lxc.net.*.script.down) has let go by then"),
    ),
    "lxcframe_child_pre_mount": (
        Placement("hooks", "first", "raises the ambient capabilities the child's lxc.hook.* scripts run with "
                                    "(unprivileged), and runs lxc.hook.pre-mount before the rest of the stage"),
    ),
    "lxcframe_child_mount_filesystems": (
        Placement("sysfs", "first", "/sys is mounted before lxc.mount.entry lines, which may mount below it "
                                    "(common.conf's fuse connections)"),
    ),
    "lxcframe_child_devices": (
        Placement("console", "last", "the console and ttys come from the container's devpts, which the devices "
                                     "plugin mounts"),
    ),
    "lxcframe_child_pre_pivot": (
        Placement("keyring", "first", "the session keyring is joined once the child has the container's ids, "
                                      "before lxc.hook.mount and lxc.hook.autodev, which then have it"),
        Placement("apparmor", "first", "the nesting helpers go below /dev (made by the devices stage) before "
                                       "lxc.hook.mount, as LXC has its mount entries done by then"),
        Placement("mounts", "first", "lxc.mount.entry lines below /dev, once the devices stage made /dev "
                                     "(autodev), before lxc.hook.mount and lxc.hook.autodev, as LXC orders them"),
        Placement("core", "last", "lxc.arch's personality, after the hook scripts and before the security "
                                  "stage (a seccomp policy may deny personality(2)); init inherits it"),
        Placement("mount-injection", "last", "the shmounts tree, after lxc.hook.autodev: its default target "
                                             "lives under /dev"),
        Placement("prlimit", "last", "lxc.prlimit.*, once the hook scripts ran, before the security stage: "
                                     "the LSM label comes first there, and raising a hard limit needs the "
                                     "capabilities it drops"),
    ),
    "lxcframe_child_security": (
        Placement("apparmor", "first", "the LSM label first: the profile must allow what the other security "
                                       "steps still do"),
        Placement("seccomp", "last", "the filter last: it may deny what the other steps do"),
    ),
    "lxcframe_child_pre_exec": (
        Placement("core", "first", "init stops being dumpable before anything of the container's runs beside it "
                                   "(lxc.hook.start, an OCI startContainer hook): its descriptors, environment "
                                   "and mappings are the host's"),
        Placement("hooks", "last", "lxc.hook.start is the last thing before init (on the console the console "
                                   "plugin made stdio), then the ambient capabilities raised for the hooks "
                                   "are cleared"),
    ),
    "lxcframe_post_stop": (
        Placement("ephemeral", "last", "an ephemeral container is removed once lxc.hook.post-stop ran, as "
                                       "LXC destroys it after its hooks"),
    ),
    "lxcframe_attach_child": (
        Placement("apparmor", "first", "the LSM label first, as in the security stage"),
        Placement("core", "first", "lxc.arch's personality, before seccomp may deny personality(2)"),
        Placement("seccomp", "last", "the filter last, as in the security stage"),
    ),
}


def placement(hook: str, plugin: str) -> str | None:
    """``"first"``, ``"last"`` or None: where :data:`PLUGIN_ORDER` puts builtin ``plugin`` in ``hook``."""
    return next((place.where for place in PLUGIN_ORDER.get(hook, ()) if place.plugin == plugin), None)
