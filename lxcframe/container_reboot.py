"""``Container.reboot`` and ``reboot2``: ask init to reboot (``lxc.signal.reboot``, SIGINT by default), as
``lxc-stop -r`` and python3-lxc do.

The reboot itself is init's: it ends itself with reboot(2), which in a pid namespace kills it with
SIGHUP, and the server that monitors the container (its init's parent) ends it as after any exit and
starts it again from the same start request: the same plan, a fresh network, a new init.
"""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING

from lxcframe import state as st
from lxcframe.container_base import ContainerMixin
from lxcframe.errors import ConfigError, ContainerError
from lxcframe.log import bound_container

if TYPE_CHECKING:
    pass

#: How often reboot2 looks whether the container came back.
_POLL = 0.05


class RebootMethods(ContainerMixin):
    """Rebooting a running container."""

    if TYPE_CHECKING:
        def _stop_targets(self, current: st.ContainerState) -> tuple[int | None, int | None]: ...

    def reboot(self) -> None:
        """Send init ``lxc.signal.reboot`` (SIGINT by default) and return; init reboots, and the
        container is started again with a new init."""
        self._send_reboot()

    def reboot2(self, timeout: float = -1) -> bool:
        """:meth:`reboot`, then wait up to ``timeout`` seconds (-1: without end) until the container runs
        again with a new init; ``False`` if it did not within the time (LXC 3.1's ``reboot2``)."""
        before = self._send_reboot()
        deadline = None if timeout < 0 else time.monotonic() + timeout
        while deadline is None or time.monotonic() < deadline:
            now = self.current_state()
            if now is not None and now.state == st.RUNNING and now.init_pid and (
                    now.init_pid, now.init_start) != (before.init_pid, before.init_start):
                return True
            time.sleep(_POLL)
        return False

    def _send_reboot(self) -> st.ContainerState:
        from lxcframe import process_proof, syscalls

        with bound_container(self.name):
            current = self._running_state()
            if not current.adopted:
                raise ContainerError(f"{self.name}: its monitor is a process of its own (LXCFRAME_ADOPT=0 or a "
                                     "foreground start), which ends the container when init reboots: stop and "
                                     "start it instead")
            try:
                wanted = self.load_config().get("lxc.signal.reboot", int(signal.SIGINT))
            except (ConfigError, ContainerError):
                wanted = int(signal.SIGINT)
            monitor, init = self._stop_targets(current)
            try:
                if init is None:
                    raise ContainerError(f"{self.name}: not running")
                syscalls.pidfd_send_signal(init, wanted)
            finally:
                process_proof.close(monitor, init)
            return current


__all__ = ["RebootMethods"]
