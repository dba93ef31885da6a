"""Calling one stage's hook implementation by implementation, so a failure names its plugin."""

from __future__ import annotations

from typing import Any

from lxcframe.errors import LxcframeError, StageError
from lxcframe.stages import AFTER_START, STAGE_BY_HOOK


def describe(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    return str(err) or type(err).__name__


def call_hook(plugins: Any, hook_name: str, *, firstresult: bool = False, **kwargs: Any) -> list[Any]:
    """Call every implementation of ``hook_name`` in pluggy's order (tryfirst … trylast).

    Any exception becomes a :class:`StageError` naming the stage and the plugin (outside the start
    pipeline a plugin's own :class:`LxcframeError` passes through unchanged). With
    ``firstresult`` the first non-None result ends the call.
    """
    stage = STAGE_BY_HOOK.get(hook_name)
    stage_name = stage.name if stage else hook_name.removeprefix("lxcframe_")
    hook = getattr(plugins.hook, hook_name)
    results: list[Any] = []
    # pluggy runs the last registered implementation first; get_hookimpls() lists them in
    # registration order, with tryfirst ones at the end.
    for impl in reversed(hook.get_hookimpls()):
        if impl.hookwrapper or getattr(impl, "wrapper", False):
            continue
        try:
            result = impl.function(*(kwargs[name] for name in impl.argnames))
        except StageError:
            raise
        except Exception as err:
            if stage is None and isinstance(err, LxcframeError):
                raise  # outside the start pipeline a plugin's own clear error stands as it is
            errno = err.errno if isinstance(err, OSError) else None
            raise StageError(stage_name, impl.plugin_name, describe(err), errno,
                             in_start=stage is not None and stage.name not in AFTER_START) from err
        if result is not None:
            results.append(result)
            if firstresult:
                break
    return results
