"""Registration hooks: what a plugin brings before any container is touched.

They run in whichever process builds a plugin manager (CLI, library caller, monitor) and must not
touch the host: no mounts, no sockets, no subprocesses. Keep them cheap; they run on every command
that needs the plugins. ``lxcframe_config_source`` reads a config that is not an LXC file (an OCI
bundle) before a container is made; it writes only into that container's own directory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxcframe.hooks import hookspec

if TYPE_CHECKING:
    from lxcframe.config.keys import KeyRegistry, KeySpec
    from lxcframe.config.source import ConfigSource
    from lxcframe.context import StartPlan
    from lxcframe.probe import Probe
    from lxcframe.templates import Template


# --- registration ------------------------------------------------------------------------------


@hookspec
def lxcframe_config_keys() -> list[KeySpec]:
    """Declare the config keys this plugin owns, each with its validator and a one-line ``doc``.

    Called on each plugin when it is registered, in every process. Return a list of
    :class:`KeySpec`. A validator gets the raw value (never an empty one: that clears the key) and
    returns what ``config.get`` gives hooks, or raises :class:`ValueError` with the reason, which the
    config reader reports with the file, line and key. A third-party plugin names its keys
    ``<plugin>.<name>`` (``lxc.*`` is LXC's). A key declared by an earlier plugin, or this hook
    raising, fails this plugin alone.
    """


@hookspec
def lxcframe_api_extensions() -> list[str]:
    """Declare the API-extension names this plugin provides (LXC's list where the feature matches).

    Answers ``has_api_extension(name)`` and ``lxcframe extensions``. Called on every enabled plugin;
    the results are merged.
    """


@hookspec
def lxcframe_templates() -> list[Template]:
    """Offer container templates for ``lxcframe create -t NAME``.

    Return a list of :class:`lxcframe.templates.Template`; a name offered twice is an error.
    """


@hookspec
def lxcframe_check() -> list[Probe]:
    """Report what this host supports for the plugin's feature, each fact with its reason.

    Used by ``lxcframe check``. May read /proc and /sys and probe syscalls harmlessly; must not
    change host state. Called on each enabled plugin on its own: every row is shown with the
    plugin that returned it, and an exception becomes an unsupported row of that plugin.
    """


@hookspec(firstresult=True)
def lxcframe_unavailable_reason() -> str | None:
    """Say why this plugin cannot work on this host, or ``None`` when it can.

    Called on each plugin alone (not as a chain) right after it is loaded; a plugin that answers
    with a reason is unregistered and shown as *unavailable* with that reason, and the config keys
    it declared are reported as handled by an unavailable plugin.
    """


@hookspec(firstresult=True)
def lxcframe_config_source(path: str, name: str, state_dir: str | None, registry: KeyRegistry) -> ConfigSource | None:
    """Read a container's config from ``path`` when it is in a format this plugin reads (not an LXC config).

    Called by :func:`lxcframe.config.source.read_source`, in the process that creates the container,
    before its config is built: ``lxcframe-oci create`` with its ``--bundle`` directory. Return a
    :class:`~lxcframe.config.source.ConfigSource` (the ``lxc.*`` lines, each with the file and line it
    came from, and the extras a start needs beyond them), or ``None`` when ``path`` is nothing this
    plugin reads; the first answer wins (a third-party plugin is asked before the builtins). ``name``
    is the container's; files the lines name (a seccomp policy) go to ``state_dir``, the container's
    own directory (``None``: there is none yet). ``registry`` holds the enabled plugins' keys, to check
    each value where the source can say more than a line (its JSON field). A source recognised but
    wrong raises :class:`~lxcframe.errors.ConfigError`.
    """


@hookspec
def lxcframe_preload(plan: StartPlan | None) -> None:
    """Import what this plugin's monitor and child side will need, in a warm process that forks monitors.

    Called by the supervisor once after it loaded the plugins, with ``plan`` ``None`` (import what
    every start needs), and again before it forks each start's monitor, with that start's plan
    (import what this plan needs: the network plugin imports pyroute2's whole package only for a plan
    that configures devices, so a supervisor that never starts one does not hold it). Every monitor
    (and the container's child it forks) then shares the modules instead of importing them at each
    start. Import modules and read what is cheap to keep (the cgroup plugin detects the host's layout):
    leave no descriptor open and start no thread, since every monitor is forked from this process.
    """



@hookspec
def lxcframe_act_for(pid: int) -> None:
    """Take on, from process ``pid``, what this plugin reads of its own process.

    Called in a worker the server forked to run a thin client's command (the command line's default),
    before the command runs, with the client's pid (``SO_PEERCRED``). The worker already has the
    client's descriptors, working directory, umask and environment; a plugin that reads more of the
    process it runs in makes that the client's here (the cgroup plugin joins the client's cgroups, so
    that ``lxc.cgroup.relative`` places containers below the client's cgroup, not the server's).
    Raising fails the command, naming the plugin.
    """
