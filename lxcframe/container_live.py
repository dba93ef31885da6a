"""The live cgroup methods of :class:`lxcframe.container.Container`: one file of a running container's
cgroup read or written by its key, as python3-lxc's ``get_cgroup_item``/``set_cgroup_item`` and LXC's
``lxc-cgroup``. The cgroup plugin does the work (``lxcframe_cgroup_item``) from what the start recorded."""

from __future__ import annotations

from lxcframe import state as st
from lxcframe.container_base import ContainerMixin
from lxcframe.errors import ContainerError
from lxcframe.stage_runner import call_hook


class LiveCgroupMethods(ContainerMixin):
    """Reading and writing the cgroup files of a running container."""

    def _cgroup_item(self, key: str, value: str | None) -> str:
        current = self.current_state()
        # A starting container may not have recorded its cgroups yet, a stopping one is removing them.
        if current is None or current.state not in (st.RUNNING, st.FROZEN):
            why = current.state.lower() if current is not None else (
                "not running" if self.defined else "no such container")
            raise ContainerError(f"{self.name}: {why}")
        found = call_hook(self.plugins, "lxcframe_cgroup_item", firstresult=True, state=current, key=key,
                          value=value)
        if not found:
            raise ContainerError(f"{self.name}: no enabled plugin holds the container's cgroups (it started "
                                 "without the cgroup plugin, or that plugin is disabled)")
        return str(found[0])

    def get_cgroup_item(self, key: str) -> str:
        """The text of the running container's cgroup file ``key`` (``pids.max``, ``memory.current``),
        without its trailing newline."""
        return self._cgroup_item(key, None)

    def set_cgroup_item(self, key: str, value: str) -> None:
        """Write ``value`` to the running container's cgroup file ``key``; the kernel's refusal is a
        :class:`ContainerError` naming the key, the value and the kernel's reason."""
        self._cgroup_item(key, str(value))
