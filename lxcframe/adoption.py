"""The start worker's line to the server that adopts its container: no Python monitor per container.

A daemon start served by the server runs in a worker forked from it (as a monitor does). The worker
forks init as the server's own child (:func:`lxcframe.syscalls.fork_as_sibling`), so that init's parent
— the process that reaps it, and the one ``lxc.monitor.signal.pdeath`` is about — is the long-lived
server from birth, and the worker can leave once the container runs. Over this link the worker:

* says which pid its init has (``born``): the server reaps it, and tells the worker how it ended
  when it dies during the start (:meth:`AdoptionLink.exit_status`);
* gives the container to the server when it runs (``adopt``): the container's monitor lock (and key
  lock) move to the server, which the state file names as the monitor from then on;
* after the post-start stage, hands over what lives until init exits (``hand-over``): the console
  server (:meth:`lxcframe.console_service.ConsoleServer.export`) and the descriptors plugins keep for
  the end of the container (``HostContext.kept``); then it exits.

When init exits, the server forks another short-lived worker that ends the container
(:mod:`lxcframe.after_stop`). See :mod:`lxcframe.adopted` for the server's side.
"""

from __future__ import annotations

import os
import time
from typing import Any

from lxcframe.channel import Channel
from lxcframe.errors import LxcframeError

#: Seconds the worker waits for the server's answer to a message.
ANSWER_TIMEOUT = 10.0
#: ``0`` keeps a Python monitor per container even under a server (the model before adoption).
ADOPT_ENV = "LXCFRAME_ADOPT"


def adopting() -> bool:
    """Whether a server adopts the containers it starts (read in the server)."""
    return os.environ.get(ADOPT_ENV, "1") != "0"


class AdoptionError(LxcframeError):
    """The server did not take what the worker handed it."""


class AdoptionLink:
    """The worker's end of its socketpair with the server."""

    def __init__(self, channel: Channel, server_pid: int) -> None:
        self.channel = channel
        self.server_pid = server_pid
        #: Init's end, as the server reported it while the worker waited for something else.
        self._exits: dict[int, int] = {}

    def born(self, pid: int) -> None:
        self.channel.send({"t": "born", "pid": pid})

    def exit_status(self, pid: int, timeout: float = ANSWER_TIMEOUT) -> int | None:
        """Init's wait status once the server reaped it; ``None`` if it did not say in time."""
        deadline = time.monotonic() + timeout
        while pid not in self._exits:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                record = self.channel.recv(timeout=remaining)
            except TimeoutError:
                return None
            if record is None:
                return None
            self._note(record)
        return self._exits[pid]

    def adopt(self, name: str, lxcpath: str, child_pid: int, init_pid: int, locks: list[int]) -> None:
        """Give the running container to the server: from the answer on, it holds the locks too.
        ``child_pid`` is the server's child the worker forked: init, or with a user namespace init's
        parent, which mirrors init's end."""
        self.channel.send({"t": "adopt", "name": name, "lxcpath": lxcpath, "child": child_pid, "init": init_pid},
                          {f"lock{index}": fd for index, fd in enumerate(locks)})
        self._answer("adopted")

    def hand_over(self, kept: dict[str, int], console: tuple[dict[str, Any], list[int]] | None) -> None:
        """Hand over what lives until init exits; the caller closes its copies afterwards."""
        fds = {f"kept:{name}": fd for name, fd in kept.items()}
        record: dict[str, Any] = {"t": "hand-over", "kept": sorted(kept)}
        if console is not None:
            data, console_fds = console
            record["console"] = data
            fds.update({f"console:{index}": fd for index, fd in enumerate(console_fds)})
        self.channel.send(record, fds)
        self._answer("handed-over")

    def close(self) -> None:
        self.channel.close()

    def _answer(self, expected: str) -> None:
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while True:
            try:
                record = self.channel.recv(timeout=max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                record = None
            if record is None:
                raise AdoptionError(f"the server did not answer {expected!r}")
            if record.get("t") == expected:
                return
            if record.get("t") == "refused":
                raise AdoptionError(f"the server refused: {record.get('why')}")
            self._note(record)

    def _note(self, record: dict[str, Any]) -> None:
        if record.get("t") == "exited":
            self._exits[int(record["pid"])] = int(record["status"])
        for fd in record.get("_fds", {}).values():
            os.close(fd)  # the server sends none: nothing may stay open by mistake
