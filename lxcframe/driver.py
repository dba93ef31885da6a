"""Walking the start table (:mod:`lxcframe.stages`): the monitor its host side, the init child its own.

Neither side hard-codes the sequence. Each provides a *core*: the hook arguments it has
(``arguments``), a method per core step of its side (named as the step, ``-`` read as ``_``) and
what a barrier means to it: the monitor waits for the child's record there (``wait_for``), runs the
host stages bound to it, then lets the child go on (``release``); the child says it reached the
barrier and waits to be let go (``wait_go``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from lxcframe.errors import StageError
from lxcframe.stage_runner import call_hook, describe
from lxcframe.stages import (
    CHILD_WALK,
    HOST_AFTER_EXIT,
    HOST_AFTER_START,
    HOST_START,
    HOST_WHILE_RUNNING,
    Barrier,
    CoreStep,
    Entry,
    Stage,
)


class StepFailed(Exception):
    """A core step's own failure: the walk reports it as a failure of that step."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class Core(Protocol):
    plugins: Any

    def arguments(self) -> Mapping[str, Any]:
        """The hook arguments this side has now, by name (``ctx``, ``pid``, ``status``)."""


class HostCore(Core, Protocol):
    def wait_for(self, barrier: Barrier) -> None:
        """Serve the child's records until it reports ``barrier`` (for exec: until its exec closed the channel)."""

    def release(self, barrier: Barrier) -> None:
        """Let the child go on past ``barrier``."""

    def failed_after_start(self, stage: Stage, err: StageError) -> None:
        """A stage after the start failed: log it (and stop the container if the stage says so)."""


class ChildCore(Core, Protocol):
    def wait_go(self, barrier: Barrier) -> None:
        """Tell the monitor the child reached ``barrier`` and wait until it lets the child go on."""


def run_stage(plugins: Any, stage: Stage, arguments: Mapping[str, Any]) -> list[Any]:
    """Call ``stage``'s hook with the arguments its hookspec names; a required answer missing is an error."""
    spec = getattr(plugins.hook, stage.hook).spec
    kwargs = {name: arguments[name] for name in spec.argnames}
    results = call_hook(plugins, stage.hook, firstresult=stage.firstresult, **kwargs)
    if stage.unanswered and not results:
        raise StageError(stage.name, None, stage.unanswered)
    return results


def run_step(core: object, step: CoreStep) -> None:
    getattr(core, step.method)()


def walk_host_start(core: HostCore) -> None:
    """The monitor's part of the start, up to the child's exec: any failure propagates (to be unwound)."""
    _walk_host(core, HOST_START)


def walk_host_after_start(core: HostCore) -> None:
    """The monitor's part once the container runs: a stage's failure is the core's to log, not raised."""
    _walk_host(core, HOST_AFTER_START)


def walk_host_running(core: HostCore) -> None:
    """The first half of :func:`walk_host_after_start`: up to the wait for init."""
    _walk_host(core, HOST_WHILE_RUNNING)


def walk_host_after_exit(core: HostCore) -> None:
    """The second half: wait for init, then end the container."""
    _walk_host(core, HOST_AFTER_EXIT)


def _walk_host(core: HostCore, entries: Iterable[Entry]) -> None:
    waiting: Barrier | None = None  # the barrier the child waits at while its host stages run
    for entry in entries:
        if waiting is not None and not (isinstance(entry, Stage) and entry.barrier == waiting.name):
            core.release(waiting)
            waiting = None
        if isinstance(entry, Barrier):
            core.wait_for(entry)
            waiting = entry if entry.child_waits else None
        elif isinstance(entry, CoreStep):
            run_step(core, entry)
        elif entry.logged_as:
            try:
                run_stage(core.plugins, entry, core.arguments())
            except StageError as err:
                core.failed_after_start(entry, err)
        else:
            run_stage(core.plugins, entry, core.arguments())
    if waiting is not None:
        core.release(waiting)


class ChildWalk:
    """The init child's walk; ``at`` names the entry it is at, for a failure that escapes it."""

    def __init__(self, core: ChildCore) -> None:
        self.core = core
        self.at = CHILD_WALK[0].name

    def run(self) -> None:
        """Walk the child's side; a core step's failure becomes a :class:`StageError` naming the step."""
        for entry in CHILD_WALK:
            self.at = entry.name
            if isinstance(entry, Barrier):
                self.core.wait_go(entry)
            elif isinstance(entry, Stage):
                run_stage(self.core.plugins, entry, self.core.arguments())
            else:
                try:
                    run_step(self.core, entry)
                except StageError:
                    raise
                except Exception as err:
                    errno = err.errno if isinstance(err, (OSError, StepFailed)) else None
                    raise StageError(entry.name, None, describe(err), errno) from err
