"""Each hook implementation runs under a guard; hook calls are traced on demand.

pluggy calls the hooks (wrappers, ``firstresult`` and hook-call monitoring included). What it cannot
say is which plugin's implementation raised: that is what the guard installed around each
implementation at registration is for. While an implementation runs, the guard

* binds the plugin's name in :data:`lxcframe.log.current_plugin`, so its log lines carry ``plugin=``;
* marks an exception raised by the implementation with the plugin's name (:func:`raised_by`);
* times it, when tracing is on.

A guard around the implementation was preferred to matching the raising frame's code object against
the hookimpls' functions: one function can be registered by two plugins (two instances of one class,
a helper module shared by two entry points), a decorator puts its own code object in front of the
plugin's, and a generator wrapper's frame is not on the stack while the others run.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any

from lxcframe.log import current_plugin, get_logger

#: The attribute a guard sets on an exception raised by a plugin's implementation.
_RAISED_BY = "_lxcframe_raised_by"

_log = get_logger("plugins")


def raised_by(err: BaseException) -> str | None:
    """The plugin whose hook implementation raised ``err`` (None if none did)."""
    name = getattr(err, _RAISED_BY, None)
    return name if isinstance(name, str) else None


def _mark(err: BaseException, plugin: str) -> None:
    # The innermost guard marks first and wins: an exception passing through a wrapper (pluggy throws
    # it into the wrapper's generator) stays the raising plugin's.
    if not hasattr(err, _RAISED_BY):
        setattr(err, _RAISED_BY, plugin)


class CallTracer:
    """Logs every hook call and every implementation's share of it, while on.

    The call line comes from pluggy's hook-call monitoring; the implementation lines from the guards.
    Lines go to the project's logger at INFO, except inside the container's init child, where the
    only way out is the child's channel logger (``ctx.log``): its lines reach the monitor's sinks.
    """

    def __init__(self, pm: Any) -> None:
        self._pm = pm
        self._undo: Callable[[], None] | None = None
        #: Read by every guard on every call: a plain attribute.
        self.on = False
        #: Per thread, the hook calls under way: when each started, its implementations' trace lines.
        self._calls = threading.local()

    def set(self, on: bool) -> None:
        if on and self._undo is None:
            self._undo = self._pm.add_hookcall_monitoring(self._before, self._after)
        elif not on and self._undo is not None:
            self._undo()
            self._undo = None
        self.on = on

    def _before(self, hook_name: str, impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        calls = getattr(self._calls, "stack", None)
        if calls is None:
            calls = self._calls.stack = []
        calls.append((time.perf_counter(), []))

    def _after(self, outcome: Any, hook_name: str, impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        started, lines = self._calls.stack.pop()
        elapsed = time.perf_counter() - started
        # The implementations' lines are written now, so that the call's duration is not the logging's
        # (the first line written imports structlog).
        log = _logger_for(kwargs)
        for fields in lines:
            log.info("hook implementation", **fields)
        fields = {
            "hook": hook_name,
            # pluggy's calling order: last registered first, tryfirst before, trylast after.
            "plugins": ",".join(impl.plugin_name for impl in reversed(impls)) or "-",
            "ms": _ms(elapsed),
        }
        if outcome.exception is not None:
            fields["raised"] = type(outcome.exception).__name__
        log.info("hook call", **fields)

    def implementation(self, hook_name: str, plugin: str, elapsed: float, kwargs: Mapping[str, Any],
                       wrapper: bool, err: BaseException | None) -> None:
        fields: dict[str, Any] = {"hook": hook_name, "plugin": plugin, "ms": _ms(elapsed)}
        if wrapper:
            fields["wrapper"] = True  # its own time, without the implementations it wraps
        if err is not None:
            fields["raised"] = type(err).__name__
        calls = getattr(self._calls, "stack", None)
        if calls:
            calls[-1][1].append(fields)
        else:  # called outside a monitored call (tracing was switched on during it)
            _logger_for(kwargs).info("hook implementation", **fields)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def _logger_for(kwargs: Mapping[str, Any]) -> Any:
    log = getattr(kwargs.get("ctx"), "log", None)
    if log is not None:
        from lxcframe.channel import ChildLog

        if isinstance(log, ChildLog):
            return log
    return _log


def _kwargs_of(impl: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {**dict(zip(impl.argnames, args, strict=False)), **kwargs}


def guard(impl: Any, hook_name: str, tracer: CallTracer) -> None:
    """Put the guard around ``impl`` (a pluggy ``HookImpl``) in place of its function."""
    function = impl.function
    plugin = impl.plugin_name
    is_wrapper = bool(impl.hookwrapper or impl.wrapper)

    if inspect.isgeneratorfunction(function):
        def guarded_generator(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            return (yield from _step_guarded(function(*args, **kwargs), impl, hook_name, tracer, args, kwargs,
                                             is_wrapper))

        guarded: Callable[..., Any] = guarded_generator
    else:
        def guarded_function(*args: Any, **kwargs: Any) -> Any:
            token = current_plugin.set(plugin)
            try:
                if not tracer.on:
                    return function(*args, **kwargs)
                return _timed(function, args, kwargs, impl, hook_name, tracer, is_wrapper)
            except BaseException as err:
                _mark(err, plugin)
                raise
            finally:
                current_plugin.reset(token)

        guarded = guarded_function
    # pluggy read the argument names from the function at registration; it calls whatever is here.
    impl.function = guarded


def _timed(function: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any], impl: Any,
           hook_name: str, tracer: CallTracer, is_wrapper: bool) -> Any:
    started = time.perf_counter()
    failure: BaseException | None = None
    try:
        return function(*args, **kwargs)
    except BaseException as err:
        failure = err
        raise
    finally:
        tracer.implementation(hook_name, impl.plugin_name, time.perf_counter() - started,
                              _kwargs_of(impl, args, kwargs), is_wrapper, failure)


def _step_guarded(generator: Generator[Any, Any, Any], impl: Any, hook_name: str, tracer: CallTracer,
                  args: tuple[Any, ...], kwargs: Mapping[str, Any], is_wrapper: bool) -> Generator[Any, Any, Any]:
    """Run a generator implementation (a wrapper) one step at a time, each step under the guard.

    ``yield from`` would do the delegation, but the plugin's name must be bound only while the wrapper's
    own code runs, not while it is suspended and the implementations it wraps run.
    """
    plugin = impl.plugin_name
    own_time = 0.0
    failure: BaseException | None = None
    to_send: Any = None
    to_throw: BaseException | None = None
    try:
        while True:
            thrown, to_throw = to_throw, None
            token = current_plugin.set(plugin)
            started = time.perf_counter()
            try:
                yielded = generator.send(to_send) if thrown is None else generator.throw(thrown)
            except StopIteration as stop:
                return stop.value
            except BaseException as err:
                failure = err
                if err is not thrown:  # raised by the wrapper itself, not passed on from those it wraps
                    _mark(err, plugin)
                raise
            finally:
                own_time += time.perf_counter() - started
                current_plugin.reset(token)
            try:
                to_send = yield yielded
            except GeneratorExit:
                generator.close()
                raise
            except BaseException as err:  # pluggy hands the wrapped implementations' exception in
                to_throw = err
    finally:
        if tracer.on:
            tracer.implementation(hook_name, plugin, own_time, _kwargs_of(impl, args, kwargs), is_wrapper,
                                  failure)
