"""Autostart, as LXC 5.0's ``lxc-autostart``: start, shut down, kill or reboot the containers of an lxcpath
marked ``lxc.start.auto = 1``, group by group, in ``lxc.start.order``.

How LXC 5.0.2 picks and orders them (``src/lxc/tools/lxc_autostart.c``), and so this module:

* every container of the lxcpath is sorted by ``lxc.start.order`` (lower first), then by name; a
  shutdown or kill walks the same list backwards, so what started last stops first. A reboot keeps
  the start's order.
* the groups asked for are taken one after the other, in the order given (``-g web,db``: every
  ``web`` container first). The empty name is the NULL group, the containers without ``lxc.group``;
  without groups only that one is taken. ``all_groups`` (``-a``) takes every container once, in the
  list's order, whatever its groups. A container is handled once, in the first group that has it.
* a container whose ``lxc.start.auto`` is not 1 is left out (``ignore_auto``, ``-A``: it is not).
* start acts on the stopped ones, the others on the running ones; a start or reboot is followed by
  ``lxc.start.delay`` seconds of waiting, the last one's too.
* the exit status is 0 when nothing failed, 1 when every container of the lxcpath failed, 2 when
  some did.

Where lxcframe differs: a container's group matches a group asked for by its whole name (LXC 5.0.2
compares the container's group with the start of the name asked for, so ``-g webserver`` takes
``lxc.group = web``); an lxcpath without containers is no failure (LXC fixed that in 6.0); and a
container whose config does not read is reported (file, line and key) and counts as failed, where
LXC leaves it out of the list.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from lxcframe.errors import LxcframeError

START, SHUTDOWN, KILL, REBOOT = "start", "shutdown", "kill", "reboot"
ACTIONS = (START, SHUTDOWN, KILL, REBOOT)

#: The NULL group: the containers without ``lxc.group``.
NULL_GROUP = ""


@attrs.frozen
class Entry:
    """An autostart candidate: a container with what its config says of autostart."""

    name: str
    auto: bool
    order: int
    delay: int
    groups: tuple[str, ...]

    def in_group(self, group: str) -> bool:
        return not self.groups if group == NULL_GROUP else group in self.groups


@attrs.frozen
class Failure:
    name: str
    reason: str


@attrs.frozen
class Outcome:
    """What a run did: the containers it acted on (or listed), in order, and those that failed."""

    acted: tuple[Entry, ...]
    failed: tuple[Failure, ...]
    #: Containers defined in the lxcpath: LXC's exit status compares the failures with them.
    defined: int

    @property
    def exit_status(self) -> int:
        if not self.failed:
            return 0
        return 1 if len(self.failed) >= self.defined else 2


def parse_groups(values: Iterable[str]) -> tuple[str, ...]:
    """``-g`` arguments (each a comma list; an empty item is the NULL group) as one list in order, each
    group once; none given: the NULL group alone, as LXC's default."""
    groups: list[str] = []
    given = False
    for value in values:
        given = True
        for group in value.split(","):
            if group not in groups:
                groups.append(group)
    return tuple(groups) if given else (NULL_GROUP,)


def read_entry(container: Any) -> Entry:
    """``container``'s autostart keys; its config's error (file, line and key) when it does not read."""
    config = container.load_config()
    groups = tuple(group for words in config.get_all("lxc.group") for group in words)
    return Entry(name=container.name, auto=config.get("lxc.start.auto", False) is True,
                 order=int(config.get("lxc.start.order", 0)), delay=int(config.get("lxc.start.delay", 0)),
                 groups=groups)


def sort_entries(entries: Iterable[Entry], action: str) -> list[Entry]:
    """LXC's order: ``lxc.start.order``, then name; backwards for a shutdown or kill."""
    return sorted(entries, key=lambda e: (e.order, e.name), reverse=action in (SHUTDOWN, KILL))


def choose(entries: Sequence[Entry], groups: Sequence[str] = (NULL_GROUP,), *, all_groups: bool = False,
           ignore_auto: bool = False) -> list[Entry]:
    """The sorted ``entries`` a run takes, in the order it takes them (group after group)."""
    taken: list[Entry] = []
    for group in (NULL_GROUP,) if all_groups else groups:
        for entry in entries:
            if entry in taken or not (ignore_auto or entry.auto):
                continue
            if all_groups or entry.in_group(group):
                taken.append(entry)
    return taken


def autostart(lxcpath: str, action: str = START, *, groups: Sequence[str] = (NULL_GROUP,),
              all_groups: bool = False, ignore_auto: bool = False, timeout: float = 60.0,
              list_only: bool = False, plugins: Any = None, report: Callable[[Entry], None] | None = None,
              sleep: Callable[[float], None] = time.sleep) -> Outcome:
    """Run ``action`` (:data:`ACTIONS`) over the autostart containers of ``lxcpath``, as ``lxc-autostart``.

    ``list_only`` acts on nothing: the outcome names the containers the run would act on.
    ``report`` is called with each one as it is reached, before it is acted on (the command line
    prints it). ``timeout``: a shutdown's seconds before its container is killed. A container that
    fails is logged and the run goes on.
    """
    from lxcframe.container import Container, list_containers
    from lxcframe.log import get_logger

    if action not in ACTIONS:
        raise LxcframeError(f"autostart: unknown action {action!r} (expected one of {', '.join(ACTIONS)})")
    log = get_logger("autostart")
    names = list_containers(lxcpath)
    entries, failed = [], []
    for name in names:
        try:
            entries.append(read_entry(Container(name, lxcpath, plugins=plugins)))
        except LxcframeError as err:
            # Reported to the caller with the outcome (the command line prints it), not logged twice.
            log.debug("autostart: a container whose config does not read", container=name, error=str(err))
            failed.append(Failure(name, str(err)))
    acted = []
    for entry in choose(sort_entries(entries, action), groups, all_groups=all_groups, ignore_auto=ignore_auto):
        container = Container(entry.name, lxcpath, plugins=plugins)
        if container.running == (action == START):
            continue  # nothing to do: a start of a running one, a stop of a stopped one
        acted.append(entry)
        if report is not None:
            report(entry)
        if list_only:
            continue
        try:
            _act(container, action, timeout)
        except LxcframeError as err:
            log.debug(f"autostart: {action} failed", container=entry.name, error=str(err))
            failed.append(Failure(entry.name, str(err)))
            continue
        if action in (START, REBOOT) and entry.delay:
            sleep(entry.delay)
    return Outcome(tuple(acted), tuple(failed), len(names))


def _act(container: Any, action: str, timeout: float) -> None:
    if action == START:
        container.start()
    elif action == SHUTDOWN:
        # lxc-autostart -s: a clean halt within the timeout, else killed.
        if not container.shutdown(timeout):
            container.stop(kill=True)
    elif action == KILL:
        container.stop(kill=True)
    else:
        container.reboot()
