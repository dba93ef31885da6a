"""Calling one stage's hook through pluggy, so that a failure is a StageError naming its plugin."""

from __future__ import annotations

import time
from typing import Any

from lxcframe.errors import LxcframeError, StageError
from lxcframe.plugin_calls import raised_by
from lxcframe.stages import AFTER_START, STAGE_BY_HOOK


def describe(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    return str(err) or type(err).__name__


def call_hook(plugins: Any, hook_name: str, *, firstresult: bool = False, **kwargs: Any) -> list[Any]:
    """Call ``hook_name`` through pluggy (wrappers, tryfirst … trylast, monitoring) with ``kwargs``.

    Returns the non-None results as a list; for a ``firstresult`` hook (``firstresult`` must say so, as
    the caller relies on it) that list holds the first result only, or nothing.

    Any exception becomes a :class:`StageError` naming the stage and the plugin whose implementation
    raised it (outside the start pipeline a plugin's own :class:`LxcframeError` passes through
    unchanged).
    """
    hook = getattr(plugins.hook, hook_name)
    spec_firstresult = bool(hook.spec is not None and hook.spec.opts.get("firstresult"))
    if firstresult != spec_firstresult:
        # A caller that expects one result from a hook that gives all (or the reverse) is a bug here.
        raise TypeError(f"{hook_name} is {'a' if spec_firstresult else 'not a'} firstresult hook")
    stage = STAGE_BY_HOOK.get(hook_name)
    started = time.perf_counter()
    try:
        outcome = hook(**kwargs)
    except StageError:
        raise
    except Exception as err:
        if (stage is None or stage.by_caller) and isinstance(err, LxcframeError):
            # Outside the start pipeline, or in the caller before anything exists (a config that
            # cannot be planned), a plugin's own clear error stands as it is.
            raise
        errno = err.errno if isinstance(err, OSError) else None
        raise StageError(stage.name if stage else hook_name.removeprefix("lxcframe_"), raised_by(err),
                         describe(err), errno, in_start=stage is not None and stage.name not in AFTER_START
                         ) from err
    # A start's progress at debug level, on the side that ran the stage (the child's line crosses its
    # channel): what LXC's DEBUG log shows step by step. Only start stages have a context with a log.
    log = getattr(kwargs.get("ctx"), "log", None)
    if stage is not None and log is not None:
        log.debug("stage done", stage=stage.name, ms=f"{(time.perf_counter() - started) * 1000:.3f}")
    if spec_firstresult:
        return [] if outcome is None else [outcome]
    return list(outcome)
