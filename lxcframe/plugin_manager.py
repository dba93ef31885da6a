"""Loading plugins: builtins and entry points, disabled by name, failures reported, no singleton.

Each :class:`Plugins` owns its own :class:`pluggy.PluginManager`, so two can live in one process with
different plugins disabled.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import threading
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

import attrs
import pluggy

from lxcframe.config.keys import KeyRegistry, KeySpec, closest
from lxcframe.config.lxc_keys import NOT_SUPPORTED_YET, UNSUPPORTED_LXC_KEYS
from lxcframe.errors import ConfigError, PluginError
from lxcframe.hooks import PROJECT_NAME, SPEC_MODULES
from lxcframe.hostconfig import HostConfig
from lxcframe.plugin_calls import CallTracer, guard
from lxcframe.plugins import BUILTIN_DRIVERS, BUILTIN_PLUGINS, ESSENTIAL_PLUGINS
from lxcframe.stages import placement
from lxcframe.version import __version__

ENTRY_POINT_GROUP = "lxcframe.plugins"
DISABLE_ENV = "LXCFRAME_DISABLE_PLUGINS"
NO_AUTOLOAD_ENV = "LXCFRAME_DISABLE_PLUGIN_AUTOLOAD"
#: Set to 1, every hook call is logged with its plugins and durations (``--trace-plugins``).
TRACE_ENV = "LXCFRAME_TRACE_PLUGINS"

#: API extensions the core itself provides, whatever plugins are enabled.
CORE_API_EXTENSIONS = ("lxc_config_item_is_supported",)

#: Origin of the names in the host config's disable list (reported with its file, line and key).
_HOST = "host config"

ENABLED, DISABLED, UNAVAILABLE, FAILED = "enabled", "disabled", "unavailable", "failed"


@attrs.frozen
class PluginRecord:
    """What ``lxcframe plugins`` shows for one plugin."""

    name: str
    distribution: str
    version: str
    state: str
    reason: str = ""
    extensions: tuple[str, ...] = ()
    hooks: tuple[str, ...] = ()
    builtin: bool = False


@attrs.frozen
class _Candidate:
    name: str
    module: str
    distribution: str
    version: str
    builtin: bool


def parse_disable_list(text: str) -> list[str]:
    return [name for name in re.split(r"[\s,]+", text) if name]


def trace_requested(environ: Mapping[str, str]) -> bool:
    return environ.get(TRACE_ENV, "") not in ("", "0")


class _RegistrationFailed(Exception):
    """Why one plugin cannot be enabled; it is recorded ``failed`` and the others go on."""


class _Manager(pluggy.PluginManager):
    """pluggy's manager, with the place of a builtin's implementation in its stage taken from
    :data:`lxcframe.stages.PLUGIN_ORDER` rather than from marks of its own."""

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        #: The name of the builtin being registered (None while registering any other plugin).
        self.builtin: str | None = None

    def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None or self.builtin is None:
            return opts
        where = placement(opts.get("specname") or name, self.builtin)
        if where is None:
            return opts
        # A copy: pluggy's marker options are the function's own attribute.
        return {**opts, "tryfirst": where == "first", "trylast": where == "last"}


class Plugins:
    """The plugins of one process (or one caller): a pluggy manager plus what was not loaded and why."""

    def __init__(
        self,
        disable: Iterable[str] = (),
        *,
        environ: Mapping[str, str] | None = None,
        autoload: bool | None = None,
        extra: Iterable[tuple[str, object]] = (),
        host: HostConfig | None = None,
        disable_origin: str = "disable",
        trace: bool | None = None,
    ) -> None:
        """``disable_origin`` names where the ``disable`` names came from in errors (``"-p no:{name}"``);
        ``trace`` logs every hook call (default: :data:`TRACE_ENV` in ``environ``)."""
        environ = os.environ if environ is None else environ
        if host is None:  # a caller that read the host config already passes it
            from lxcframe.hostconfig import load_host_config

            host = load_host_config(environ=environ)
        self.host = host
        #: What a start does with keys no enabled plugin applies (``[plugins] unhandled_keys``).
        self.unhandled_keys = host.unhandled_keys
        # Each name with where it was asked for, so an unknown one is reported where it was written.
        wanted_off = [
            *((name, disable_origin.format(name=name)) for name in disable),
            *((name, _HOST) for name in host.disable),
            *((name, DISABLE_ENV) for name in parse_disable_list(environ.get(DISABLE_ENV, ""))),
        ]
        refused = sorted({name for name, _ in wanted_off} & ESSENTIAL_PLUGINS)
        if refused:
            raise PluginError(f"plugin {refused[0]!r} is essential and cannot be disabled")
        self.disabled = frozenset(name for name, _ in wanted_off)
        if autoload is None:
            autoload = not environ.get(NO_AUTOLOAD_ENV)
        self.pm = _Manager(PROJECT_NAME)
        for spec_module in SPEC_MODULES:
            self.pm.add_hookspecs(importlib.import_module(spec_module))
        self._spec_names = frozenset(name for name, caller in vars(self.pm.hook).items()
                                     if getattr(caller, "spec", None) is not None)
        self._tracer = CallTracer(self.pm)
        self.trace = trace_requested(environ) if trace is None else trace
        self._records: dict[str, PluginRecord] = {}
        #: Config keys of the enabled plugins, declared once each: the start of the key registry.
        self._declared_keys: dict[str, KeySpec] = {}
        # Plugins not enabled (module or plugin object, None if never imported) and why not.
        self._inactive_modules: dict[str, tuple[object | None, str]] = {}
        self._lock = threading.Lock()
        self._registry: KeyRegistry | None = None
        self._extensions: frozenset[str] | None = None
        candidates = self._candidates(autoload)
        extra = list(extra)
        # A builtin's driver is switched off by PLUGIN.DRIVER (cgroup.v2); the plugin reads that name.
        drivers = {f"{plugin}.{driver}" for plugin, names in BUILTIN_DRIVERS.items() for driver in names}
        self._refuse_unknown(wanted_off, {c.name for c in candidates} | {name for name, _ in extra} | drivers,
                             autoload)
        for candidate in candidates:
            self._load(candidate)
        #: Plugins given as objects live only in this process: another process cannot load them.
        self.has_extras = bool(extra)
        for name, plugin in extra:
            candidate = _Candidate(name, getattr(plugin, "__name__", name), "", "", False)
            if name in self.disabled:
                # Disabling by name applies to plugins handed in by the caller too.
                self._inactive_modules[name] = (plugin, "is disabled on this host")
                self._records[name] = self._record(candidate, DISABLED, "disabled by configuration")
                continue
            self._register(name, plugin, candidate)

    def _refuse_unknown(self, wanted_off: list[tuple[str, str]], known: set[str], autoload: bool) -> None:
        """A name to disable that no plugin has is an error: a typo must not leave a plugin enabled.

        A third-party plugin that is not installed is unknown too: the operator asked for something
        that is not there, and a later install would then run it unasked.
        """
        unknown = [(name, origin) for name, origin in wanted_off if name not in known]
        if unknown and not autoload:
            # Installed but not autoloaded is still a real name: disabling it is harmless.
            from lxcframe.entry_points import entry_points

            known = known | {ep.name for ep in entry_points(ENTRY_POINT_GROUP)}
            unknown = [(name, origin) for name, origin in unknown if name not in known]
        if not unknown:
            return
        name, origin = unknown[0]
        hint = closest(name, known)
        suggestion = f" (did you mean {hint!r}?)" if hint else ""
        if origin == _HOST:
            raise ConfigError(f"no plugin of that name is installed{suggestion}", path=self.host.path,
                              line=self.host.disable_line, key="plugins.disable", value=name)
        raise PluginError(f"{origin}: no plugin named {name!r} is installed{suggestion}")

    # --- loading -------------------------------------------------------------------------------

    def _candidates(self, autoload: bool) -> list[_Candidate]:
        candidates = [_Candidate(n, m, "lxcframe", __version__, True) for n, m in BUILTIN_PLUGINS.items()]
        if not autoload:
            return candidates
        from lxcframe.entry_points import entry_points

        for ep in entry_points(ENTRY_POINT_GROUP):
            if ep.name in BUILTIN_PLUGINS:
                if ep.value != BUILTIN_PLUGINS[ep.name]:
                    self._records[ep.name + "@" + ep.value] = PluginRecord(
                        ep.name, ep.distribution, ep.version, FAILED,
                        f"entry point {ep.value!r} clashes with the builtin plugin of that name",
                    )
                continue
            candidates.append(_Candidate(ep.name, ep.value, ep.distribution, ep.version, False))
        return candidates

    def _load(self, candidate: _Candidate) -> None:
        if candidate.name in self.disabled:
            # Builtins are ours and cheap: load them anyway so their keys can be reported as
            # belonging to a disabled plugin. A third party's disabled code is never imported.
            module = _try_import(candidate.module) if candidate.builtin else None
            self._inactive_modules[candidate.name] = (module, "is disabled on this host")
            self._records[candidate.name] = self._record(candidate, DISABLED, "disabled by configuration")
            return
        try:
            module = _load_object(candidate.module)
        except Exception as err:  # a broken plugin must not stop the others
            self._fail(candidate, None, f"{type(err).__name__}: {err}", "failed to load")
            return
        self._register(candidate.name, module, candidate)

    def _register(self, name: str, plugin: object, candidate: _Candidate) -> None:
        """Enable ``plugin``, or record why not; a plugin that fails leaves nothing registered."""
        try:
            self.pm.builtin = name if candidate.builtin else None
            try:
                self.pm.register(plugin, name=name)
            except Exception as err:
                raise _RegistrationFailed(f"{type(err).__name__}: {err}") from None
            finally:
                self.pm.builtin = None
            self._refuse_unknown_hooks(plugin)
            reason = self._unavailable_reason(plugin)
            if reason:
                self.pm.unregister(name=name)
                self._inactive_modules[name] = (plugin, f"is unavailable on this host ({reason})")
                self._records[name] = self._record(candidate, UNAVAILABLE, reason)
                return
            keys = self._own_keys(name, plugin)
            extensions = self._own_extensions(plugin)
        except _RegistrationFailed as failed:
            if self.pm.get_plugin(name) is plugin:
                self.pm.unregister(name=name)
            self._fail(candidate, plugin, str(failed), "failed")
            return
        self._declared_keys.update(keys)
        callers = self.pm.get_hookcallers(plugin) or []
        for caller in callers:
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin:
                    guard(impl, caller.name, self._tracer)
        hooks = tuple(sorted(caller.name for caller in callers))
        self._records[name] = attrs.evolve(self._record(candidate, ENABLED), hooks=hooks, extensions=extensions)

    def _fail(self, candidate: _Candidate, plugin: object | None, reason: str, how: str) -> None:
        if candidate.builtin and candidate.name in ESSENTIAL_PLUGINS:
            raise PluginError(f"essential plugin {candidate.name!r} {how}: {reason}")
        # A name taken already (a plugin handed in under a builtin's name) keeps the other's record.
        key = candidate.name if candidate.name not in self._records else f"{candidate.name}@{candidate.module}"
        self._records[key] = self._record(candidate, FAILED, reason)
        if not self.is_enabled(candidate.name):
            self._inactive_modules[candidate.name] = (plugin, f"{how} ({reason})")

    def _refuse_unknown_hooks(self, plugin: object) -> None:
        """pluggy's ``check_pending`` for one registered plugin: a hook name no hookspec has is a typo.

        pluggy keeps such an implementation as a hook nobody calls (the plugin then silently does
        nothing), and its ``check_pending`` fails the whole manager; here only the plugin fails.
        ``@hookimpl(optionalhook=True)`` declares a hook another plugin may or may not provide. A
        function named ``lxcframe_*`` counts even unmarked: it is meant as a hook too. What pluggy
        registered is read back rather than found again: a second scan of every attribute with
        pluggy's own (``getattr_static``) lookup would double the cost of registering.
        """
        unknown = [caller.name for caller in self.pm.get_hookcallers(plugin) or ()
                   if caller.name not in self._spec_names
                   and any(impl.plugin is plugin and not impl.optionalhook for impl in caller.get_hookimpls())]
        for attribute in dir(plugin):
            if (attribute.startswith(f"{PROJECT_NAME}_") and attribute not in self._spec_names
                    and attribute not in unknown and self.pm.parse_hookimpl_opts(plugin, attribute) is None
                    and _is_function(inspect.getattr_static(plugin, attribute, None))):
                unknown.append(attribute)
        if unknown:
            parts = []
            for hook_name in unknown:
                hint = closest(hook_name, self._spec_names)
                parts.append(f"unknown hook {hook_name}" + (f"; did you mean {hint}?" if hint else ""))
            raise _RegistrationFailed(", ".join(parts))

    def _own_keys(self, name: str, plugin: object) -> dict[str, KeySpec]:
        """The keys ``plugin`` declares; one declared already (by core or any other plugin) fails it."""
        impl = self._impl_of(plugin, "lxcframe_config_keys")
        if impl is None:
            return {}
        try:
            specs = list(impl.function() or ())
        except Exception as err:
            raise _RegistrationFailed(f"lxcframe_config_keys raised {type(err).__name__}: {err}") from None
        keys: dict[str, KeySpec] = {}
        for spec in specs:
            if not isinstance(spec, KeySpec):
                raise _RegistrationFailed(f"lxcframe_config_keys gave {spec!r}, not a KeySpec")
            other = self._declared_keys.get(spec.name)
            if other is not None:
                raise _RegistrationFailed(f"config key {spec.name!r} is declared by plugin {other.plugin!r} already")
            if spec.name in keys:
                raise _RegistrationFailed(f"config key {spec.name!r} declared twice")
            keys[spec.name] = attrs.evolve(spec, plugin=name)
        return keys

    def _own_extensions(self, plugin: object) -> tuple[str, ...]:
        impl = self._impl_of(plugin, "lxcframe_api_extensions")
        if impl is None:
            return ()
        try:
            names = tuple(impl.function() or ())
        except Exception as err:
            raise _RegistrationFailed(f"lxcframe_api_extensions raised {type(err).__name__}: {err}") from None
        if not all(isinstance(item, str) for item in names):
            raise _RegistrationFailed(f"lxcframe_api_extensions gave {list(names)!r}, not names")
        return names

    def _impl_of(self, plugin: object, hook_name: str) -> Any:
        """``plugin``'s implementation of ``hook_name`` (called alone while the plugin is being checked)."""
        return next((impl for impl in getattr(self.pm.hook, hook_name).get_hookimpls() if impl.plugin is plugin),
                    None)

    def _unavailable_reason(self, plugin: object) -> str | None:
        try:
            return _call_single(plugin, "lxcframe_unavailable_reason")
        except Exception as err:
            return f"availability check failed: {type(err).__name__}: {err}"

    @staticmethod
    def _record(candidate: _Candidate, state: str, reason: str = "") -> PluginRecord:
        return PluginRecord(
            candidate.name, candidate.distribution, candidate.version, state, reason, builtin=candidate.builtin
        )

    # --- queries -------------------------------------------------------------------------------

    @property
    def hook(self) -> Any:
        return self.pm.hook

    @property
    def trace(self) -> bool:
        """Whether every hook call is logged (hook, plugins, durations) through pluggy's monitoring."""
        return self._tracer.on

    @trace.setter
    def trace(self, on: bool) -> None:
        self._tracer.set(on)

    def records(self) -> list[PluginRecord]:
        return list(self._records.values())

    def is_enabled(self, name: str) -> bool:
        return self.pm.get_plugin(name) is not None

    def name_of(self, plugin: object) -> str:
        return self.pm.get_name(plugin) or repr(plugin)

    def api_extensions(self) -> frozenset[str]:
        with self._lock:
            if self._extensions is None:
                names = set(CORE_API_EXTENSIONS)
                for result in self.hook.lxcframe_api_extensions():
                    names.update(result)
                self._extensions = frozenset(names)
            return self._extensions

    def has_api_extension(self, name: str | None) -> bool:
        # As LXC: no name at all asks whether the call itself exists.
        return True if name is None else name in self.api_extensions()

    def key_registry(self) -> KeyRegistry:
        """The config keys of the enabled plugins, and whom the rest would belong to."""
        with self._lock:
            if self._registry is None:
                self._registry = self._build_registry()
            return self._registry

    def _build_registry(self) -> KeyRegistry:
        registry = KeyRegistry()
        for spec in self._declared_keys.values():  # each declared once: checked at registration
            registry.add(spec)
        for name, (module, why) in self._inactive_modules.items():
            specs = _declared_by(module)
            if specs is None:
                # Not imported (a disabled third party, or one that failed), or its declaration fails:
                # its keys are unknown, but a plugin's own namespaces are by convention named after it.
                for pattern in (f"{name}.*", f"lxc.{name}.*"):
                    if registry.lookup(pattern.replace(".*", ".x")) is None:
                        registry.add_inactive(pattern, name, why)
                continue
            for spec in specs:
                if registry.lookup(spec.name) is None:
                    applied_by = next((other for other in spec.shared_with if self.is_enabled(other)), "")
                    registry.add_inactive(spec.name, name, why, applied_by)
        for pattern in UNSUPPORTED_LXC_KEYS:
            # LXC's keys no plugin handles: set aside as such, not unknown (no owner to name).
            sample = pattern.replace(".*", ".x")
            if registry.lookup(sample) is None and registry.inactive_owner(sample) is None:
                registry.add_inactive(pattern, "", NOT_SUPPORTED_YET)
        return registry

    def config_item_is_supported(self, key: str) -> bool:
        return self.key_registry().lookup(key) is not None


def _call_single(plugin: object, hook_name: str) -> Any:
    function = getattr(plugin, hook_name, None)
    return function() if callable(function) else None


def _declared_by(plugin: object | None) -> list[KeySpec] | None:
    """The keys a plugin that is not enabled would declare (None if unknown)."""
    if plugin is None:
        return None
    try:
        specs = list(_call_single(plugin, "lxcframe_config_keys") or ())
    except Exception:
        return None  # its failure is on its record already
    return [spec for spec in specs if isinstance(spec, KeySpec)]


def _is_function(value: object) -> bool:
    return inspect.isfunction(value) or inspect.ismethod(value) or isinstance(value, (staticmethod, classmethod))


def _load_object(value: str) -> Any:
    """An entry point's object: ``package.module`` or ``package.module:attribute``."""
    module_name, _, attribute = value.partition(":")
    obj: Any = importlib.import_module(module_name.strip())
    for part in attribute.strip().split(".") if attribute.strip() else ():
        obj = getattr(obj, part)
    return obj


def _try_import(module: str) -> ModuleType | None:
    try:
        return importlib.import_module(module)
    except Exception:
        return None


def spec(name: str, validator: Any = None, **kwargs: Any) -> KeySpec:
    """Shorthand used by plugins to declare a key."""
    return KeySpec(name, validator, **kwargs) if validator is not None else KeySpec(name, **kwargs)


#: The plugins a warm process (the server) loaded once, and what they were loaded from, for the workers it
#: forks to reuse (each worker's changes end with it): a command's own loading costs ~12 ms.
_WARM: list[tuple[tuple[Any, ...], Plugins]] = []


def _loaded_from(disable: Iterable[str], host: HostConfig, trace: bool | None,
                 environ: Mapping[str, str]) -> tuple[Any, ...]:
    from lxcframe.entry_points import entry_points

    # The entry points found on the module search path (~2 ms): a worker whose client runs from another
    # directory (the path's first entry) may find other plugins there.
    return (tuple(sorted(disable)), host, trace_requested(environ) if trace is None else trace,
            environ.get(DISABLE_ENV, ""), environ.get(NO_AUTOLOAD_ENV, ""), tuple(entry_points(ENTRY_POINT_GROUP)))


def keep_warm(plugins: Plugins) -> None:
    """Let :func:`for_command` hand out ``plugins`` (built with no argument but ``host``) in this
    process and its forks."""
    _WARM[:] = [(_loaded_from((), plugins.host, None, os.environ), plugins)]


def for_command(disable: Iterable[str], *, host: HostConfig, disable_origin: str, trace: bool | None) -> Plugins:
    """The plugins of a command: those a warm process kept, when they were loaded from the same disable
    list, host config, tracing, environment and module search path; else loaded now."""
    disable = list(disable)
    if _WARM and _WARM[0][0] == _loaded_from(disable, host, trace, os.environ):
        return _WARM[0][1]
    return Plugins(disable, host=host, disable_origin=disable_origin, trace=trace)
