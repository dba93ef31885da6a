"""``lxcframe monitor [NAME...]``: state changes as lxc-monitor prints them, until SIGINT.

Each container's state is read every :data:`INTERVAL` seconds the way ``state`` reads it (so a dead
monitor reads STOPPED and a frozen cgroup FROZEN), and every change is one line,
``'NAME' changed state to [STATE]``, flushed at once. NAMEs are regular expressions matched against
the whole name, as lxc-monitor's ``-n``; without any, every container of the lxcpath is watched, those
created meanwhile too. Only changes are printed: the states found at the start are the baseline.
"""

from __future__ import annotations

import re
import sys
import time
from typing import Any

from lxcframe.errors import LxcframeError

#: Seconds between two reads of every watched container's state.
INTERVAL = 0.1


def patterns(names: list[str]) -> list[re.Pattern[str]]:
    compiled = []
    for name in names or [".*"]:
        try:
            compiled.append(re.compile(name))
        except re.error as err:
            raise LxcframeError(f"monitor: {name!r} is not a regular expression: {err}") from None
    return compiled


def run(options: Any, plugins: Any) -> int:
    from lxcframe.container import Container, list_containers
    from lxcframe.log import get_logger

    wanted = patterns(options.names)
    log = get_logger("monitor")
    containers: dict[str, Container] = {}
    last: dict[str, str] = {}
    first = True
    try:
        while True:
            names = [n for n in list_containers(options.lxcpath) if any(p.fullmatch(n) for p in wanted)]
            for name in names:
                container = containers.get(name)
                if container is None:
                    container = containers[name] = Container(name, options.lxcpath, plugins=plugins)
                try:
                    state = container.state
                except LxcframeError as err:  # a state file gone bad: say so once, keep watching the rest
                    state = f"unreadable: {err}"
                if not first and last.get(name) != state:
                    print(f"'{name}' changed state to [{state}]", flush=True)
                last[name] = state
            for gone in set(last) - set(names):  # destroyed (or renamed) meanwhile
                del last[gone]
                containers.pop(gone, None)
            if first:
                # With --log-level info: the baseline is read, every change from here on is printed.
                log.info("watching", lxcpath=options.lxcpath, containers=len(names))
            first = False
            time.sleep(INTERVAL)
    except KeyboardInterrupt:
        sys.stdout.flush()
        return 0
