"""What crosses from the caller to the process that becomes the monitor: the plan as built, and
what the plan's plugins and the monitor's own runtime need, nothing more.

The caller builds the frozen :class:`StartPlan` once (config read and validated, keys refused,
command and environment decided) and sends it serialised by :mod:`lxcframe.transfer`, together
with the plugin selection it was built with (the caller's disable list and the host config's), its
log settings and the few variables the runtime reads (:data:`lxcframe.spawning.RUNTIME_ENV`). The
supervisor and the helper monitor run that plan; they never read or validate the config again, and
they never see the rest of the caller's environment.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import attrs

from lxcframe import transfer
from lxcframe.context import StartPlan
from lxcframe.hostconfig import HostConfig
from lxcframe.names import why_invalid

#: How large a serialised request may be (a config is at most 16 MiB of files, but its values far less).
MAX_REQUEST = 1 << 20


@attrs.frozen
class PluginSelection:
    """Which plugins the plan was built with, so the receiving side loads the same ones."""

    #: Every disabled name: the caller's own (``-p no:NAME``, ``Plugins(disable=…)``), the host
    #: config's and ``LXCFRAME_DISABLE_PLUGINS``.
    disabled: tuple[str, ...]
    #: Whether third-party plugins (entry points) are loaded at all.
    autoload: bool
    host: HostConfig
    #: Whether the caller traces hook calls (``--trace-plugins``): its monitor does too. A selection
    #: that differs from the supervisor's own is loaded afresh for that one start, so a tracing
    #: caller's start traces and the next caller's does not.
    trace: bool = False

    @classmethod
    def of(cls, plugins: Any) -> PluginSelection:
        # Entry-point plugins appear in the records (enabled, disabled or failed) only when the
        # caller autoloaded them; with none installed, either way loads the same plugins.
        autoload = any(not r.builtin and r.distribution for r in plugins.records())
        return cls(tuple(sorted(plugins.disabled)), autoload, plugins.host, bool(plugins.trace))

    def load(self, environ: dict[str, str]) -> Any:
        from lxcframe.plugin_manager import Plugins

        return Plugins(self.disabled, environ=environ, autoload=self.autoload, host=self.host, trace=self.trace)


#: How :func:`decode` gets the plugins a selection names (in the given environment).
LoadPlugins = Callable[[PluginSelection, dict[str, str]], Any]


def reusing(plugins: Any) -> LoadPlugins:
    """A :data:`LoadPlugins` that gives ``plugins``, loaded already, for the selection they are (the
    common case: a warm process's own), and loads any other selection afresh."""
    own = PluginSelection.of(plugins)

    def load(selection: PluginSelection, environ: dict[str, str]) -> Any:
        return plugins if selection == own else selection.load(environ)

    return load


@attrs.frozen
class LogSettings:
    level: int | None
    path: str | None
    fmt: str | None

    @classmethod
    def current(cls) -> LogSettings:
        from lxcframe.log import HUB

        settings = HUB.settings()
        return cls(settings["level"], settings["path"], settings["fmt"])

    def apply(self) -> None:
        from lxcframe.log import HUB

        HUB.configure(level=self.level, path=self.path, fmt=self.fmt)

    def forward(self, caller_stderr: int | None) -> None:
        """Until the start is reported, log to ``caller_stderr`` too (the caller's stderr, handed over
        with the request; ``None``: it sent none) as the caller would. In the monitor itself: a
        process forked afterwards closes it."""
        from lxcframe.log import HUB

        if caller_stderr is not None:
            HUB.forward_to_caller(caller_stderr, self.level, self.fmt)


@attrs.frozen
class StartRequest:
    plan: StartPlan
    plugins: PluginSelection
    log: LogSettings
    #: The caller's values of the variables the runtime reads (``RUNTIME_ENV``), and only those.
    env: tuple[tuple[str, str], ...]
    #: A daemon monitor detaches (its own session, stdio to /dev/null); a foreground one stays.
    detach: bool

    @classmethod
    def for_plan(cls, plan: StartPlan, plugins: Any, *, detach: bool) -> StartRequest:
        from lxcframe.spawning import runtime_environment

        return cls(plan, PluginSelection.of(plugins), LogSettings.current(),
                   tuple(sorted(runtime_environment().items())), detach)


def decode(document: Any, load_plugins: LoadPlugins = PluginSelection.load) -> tuple[StartRequest, Any]:
    """The request in ``document`` (a parsed :func:`transfer.wrap`) and the plugins it names, or a
    :class:`transfer.TransferError`.

    The plugin selection is read first: the plan may hold values of those plugins' classes, which
    are accepted only once the plugins are loaded. ``load_plugins(selection, environ)`` may return
    plugins already loaded (the supervisor's); by default they are loaded here.
    """
    encoded = transfer.unwrap(document)
    selection = transfer.decode(transfer.encoded_field(encoded, "plugins", "a start request"), PluginSelection)
    environ = _environ(transfer.decode(transfer.encoded_field(encoded, "env", "a start request"), tuple))
    plugins = load_plugins(selection, environ)
    request = transfer.decode(encoded, StartRequest, plugin_packages(plugins))
    _check_plan(request.plan)
    return request, plugins


def _environ(pairs: tuple[Any, ...]) -> dict[str, str]:
    if not all(isinstance(p, tuple) and len(p) == 2 and all(isinstance(s, str) for s in p) for p in pairs):
        raise transfer.TransferError("env: not a tuple of (name, value) pairs of strings")
    return dict(pairs)


def plugin_packages(plugins: Any) -> set[str]:
    """Top-level packages of the loaded plugins (a plugin is a module or an object)."""
    names = {getattr(p, "__name__", None) if isinstance(p, ModuleType) else type(p).__module__
             for p in plugins.pm.get_plugins()}
    return {name.split(".")[0] for name in names if name}


def _check_plan(plan: StartPlan) -> None:
    """What the receiving side relies on before it touches the host with the plan's names."""
    why = why_invalid(plan.name)
    if why is not None:
        raise transfer.TransferError(f"plan.name: invalid container name {plan.name!r}: {why}")
    if not os.path.isabs(plan.lxcpath) or os.path.normpath(plan.lxcpath) != plan.lxcpath:
        raise transfer.TransferError(f"plan.lxcpath: {plan.lxcpath!r} is not a normalised absolute path")
    if not os.path.isabs(plan.rootfs_mount):
        raise transfer.TransferError(f"plan.rootfs_mount: {plan.rootfs_mount!r} is not an absolute path")
    if plan.mode not in ("daemon", "foreground", "execute"):
        raise transfer.TransferError(f"plan.mode: unknown mode {plan.mode!r}")
    if not plan.argv:
        raise transfer.TransferError("plan.argv: no command")
