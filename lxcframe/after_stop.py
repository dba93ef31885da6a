"""The end of an adopted container, in a short-lived worker the server forks once init exited.

The start worker that built the container left when it ran (:mod:`lxcframe.adoption`), and with it the
start's undo stack. What the monitor would do after init exits runs here instead, from what outlives
a process: the plan the container started with (``start.json`` in its runtime directory, as the server
received it), its state records, the descriptors plugins kept (``HostContext.kept``), and the
container's locks, which this worker holds until everything is released:

* record STOPPING, naming this worker as the monitor;
* the ``stop`` stage (``lxc.hook.stop`` with the namespaces kept for it);
* ``lxcframe_cleanup(state, ctx)``: each plugin releases what its record says (cgroups, veths, netns id,
  AppArmor profile, ``lxc.net.N.script.down``);
* the ``post-stop`` stage; then the runtime directory goes and the locks with it.

A stage's failure is logged and the rest still runs, as after a monitor's start.
"""

from __future__ import annotations

import os
from typing import Any

import attrs

from lxcframe import driver
from lxcframe import state as st
from lxcframe.context import HostContext
from lxcframe.errors import StageError
from lxcframe.log import HUB, bound_container, get_logger
from lxcframe.monitor import status_text
from lxcframe.stages import STAGE_BY_HOOK
from lxcframe.start_request import StartRequest


def end_container(request: StartRequest, plugins: Any, status: int | None, kept: dict[str, int],
                  restarting: bool = False) -> int:
    """End the container of ``request`` whose init exited with ``status`` (``None``: not our child, its
    end unknown); returns 0, or 1 when a step failed (logged). ``restarting``: the server starts it
    again afterwards (a reboot)."""
    plan = request.plan
    config = plan.config
    with bound_container(plan.name), HUB.container_sink(
        plan.name, config.get("lxc.log.file"), config.get("lxc.log.level"), config.get("lxc.log.syslog")
    ):
        log = get_logger("monitor")
        ctx = HostContext(plan, plugins, log)
        ctx.kept.update(kept)
        ctx.restarting = restarting
        failed = False
        try:
            recorded = st.read_state(plan.lxcpath, plan.name)
        except Exception as err:  # a state file gone bad: its records cannot be trusted to act on
            log.error("reading the state of the stopped container failed", error=str(err))
            recorded = None
        if recorded is not None:
            st.write_state(attrs.evolve(
                recorded, state=st.STOPPING, monitor_pid=ctx.monitor_pid,
                monitor_start=st.process_start_time(ctx.monitor_pid), init_pid=None, init_start=None,
                init_pidns=None, adopted=False))
        log.info("container stopped", status=status_text(status))
        arguments = {"ctx": ctx, "pid": 0, "status": status or 0}
        failed |= _run(plugins, "lxcframe_stopped", arguments, log)
        if recorded is not None:
            failed |= _release(plugins, recorded, ctx, log)
        # Whatever no plugin took back (each closes its own once done with it).
        for fd in ctx.kept.values():
            os.close(fd)
        ctx.kept.clear()
        failed |= _run(plugins, "lxcframe_post_stop", arguments, log)
        st.remove_runtime(plan.lxcpath, plan.name, unless_locked=True)
        return 1 if failed else 0


def _release(plugins: Any, recorded: st.ContainerState, ctx: HostContext, log: Any) -> bool:
    """Each plugin's ``lxcframe_cleanup``, in pluggy's order; as an undo stack, one failing does not
    keep the others from running. True when one failed."""
    problems = []
    arguments = {"state": recorded, "ctx": ctx}
    for impl in reversed(plugins.hook.lxcframe_cleanup.get_hookimpls()):
        try:
            impl.function(**{name: arguments[name] for name in impl.argnames})
        except Exception as err:
            problems.append(err.strerror if isinstance(err, OSError) and err.strerror else str(err))
    if problems:
        # One line for all, as the monitor reports its undo stack's failures.
        log.error("releasing host state failed", error="; ".join(problems))
    return bool(problems)


def _run(plugins: Any, hook: str, arguments: dict[str, Any], log: Any) -> bool:
    stage = STAGE_BY_HOOK[hook]
    try:
        driver.run_stage(plugins, stage, arguments)
    except StageError as err:
        log.error(stage.logged_as or f"{stage.name} failed", error=str(err))
        return True
    return False
