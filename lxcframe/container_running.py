"""The methods of :class:`lxcframe.container.Container` that act on a running container: freeze, mount
injection, attach, addresses, consoles."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from lxcframe import state as st
from lxcframe.container_base import ContainerMixin
from lxcframe.errors import ContainerError
from lxcframe.log import bound_container
from lxcframe.stage_runner import call_hook

if TYPE_CHECKING:
    pass


class RunningMethods(ContainerMixin):
    """What acts on a running container."""

    #: The running container's netns reference, kept by get_ips while the same init lives.
    _netns_ref: Any

    def _running_state(self) -> st.ContainerState:
        current = self.current_state()
        if current is None or not current.init_pid:
            raise ContainerError(f"{self.name}: {'not running' if self.defined else 'no such container'}")
        return current

    def freeze(self) -> None:
        if not call_hook(self.plugins, "lxcframe_freeze", firstresult=True, state=self._running_state(),
                         frozen=True):
            raise ContainerError("no enabled plugin can freeze containers (enable the cgroup plugin)")

    def unfreeze(self) -> None:
        if not call_hook(self.plugins, "lxcframe_freeze", firstresult=True, state=self._running_state(),
                         frozen=False):
            raise ContainerError("no enabled plugin can thaw containers (enable the cgroup plugin)")

    def mount(self, source: str, target: str, fstype: str | None = None, flags: int = 0,
              data: str | None = None) -> None:
        """Mount ``source`` at ``target`` inside the running container (LXC's mount injection).

        A bind mount when ``fstype`` is None (``MS_REC`` in ``flags`` for a recursive one); else a
        new filesystem of that type. The target is created (a directory, or a file for a file).
        """
        if not call_hook(self.plugins, "lxcframe_mount", firstresult=True, state=self._running_state(),
                         source=source, target=target, fstype=fstype, flags=flags, data=data):
            raise ContainerError("no enabled plugin can inject mounts (enable mount-injection)")

    def umount(self, target: str, flags: int = 0) -> None:
        """Remove a mount from the running container."""
        if not call_hook(self.plugins, "lxcframe_umount", firstresult=True, state=self._running_state(),
                         target=target, flags=flags, remove=False):
            raise ContainerError("no enabled plugin can remove mounts (enable mount-injection)")

    def info(self) -> dict[str, Any]:
        current = self.current_state()
        data: dict[str, Any] = {"name": self.name, "state": current.state if current else st.STOPPED}
        if current is not None:
            data["pid"] = current.init_pid
            data["monitor_pid"] = current.monitor_pid
            for extra in call_hook(self.plugins, "lxcframe_info", state=current):
                for key, value in extra.items():
                    data.setdefault(key, value)
        return data

    def attach(self, run: Sequence[str] | Callable[[], Any], *, clear_env: bool = False,
               keep_env: Iterable[str] = (), env: Iterable[str] = (), uid: int | None = None,
               gid: int | None = None, cwd: str = "/", stdin: Any = None, stdout: Any = None, stderr: Any = None,
               namespaces: int | None = None, personality: int | None = None, pass_fds: Iterable[int] = ()) -> int:
        """Start ``run`` inside the running container; its host pid, a child of this process (reap it
        with ``os.waitpid``).

        ``run`` is a command (argv) or a Python callable taking no argument, run in a fork of this
        process inside the container (its return value, an int or None, is the exit status; an
        exception exits 1). The command gets the caller's environment, unless ``clear_env`` (then only
        ``keep_env`` and LXC's default PATH), plus ``container=lxc``, the config's ``lxc.environment``
        and ``env`` ("NAME=value"); ``stdin``/``stdout``/``stderr`` (a descriptor or an object with
        ``fileno()``) or the caller's; no other descriptor of the caller but ``pass_fds`` (a callable
        keeps them all). ``namespaces`` (an OR of ``lxcframe.syscalls.CLONE_NEW*``, ``os.CLONE_NEW*`` from
        Python 3.12) joins only those; ``personality`` replaces the container's ``lxc.arch``;
        ``uid``/``gid`` inside, root by default; ``cwd`` inside.
        """
        from lxcframe.attach import spawn
        from lxcframe.attach_options import attach_options

        options = attach_options(clear_env=clear_env, keep_env=keep_env, env=env, uid=uid, gid=gid, cwd=cwd,
                                 stdin=stdin, stdout=stdout, stderr=stderr, namespaces=namespaces,
                                 personality=personality, pass_fds=pass_fds)
        with bound_container(self.name):
            return spawn(self, _run(run), options)

    def attach_wait(self, run: Sequence[str] | Callable[[], Any], *, clear_env: bool = False,
                    keep_env: Iterable[str] = (), env: Iterable[str] = (), uid: int | None = None,
                    gid: int | None = None, cwd: str = "/", stdin: Any = None, stdout: Any = None,
                    stderr: Any = None, namespaces: int | None = None, personality: int | None = None,
                    pass_fds: Iterable[int] = ()) -> int:
        """Run ``run`` inside the running container (as :meth:`attach`) and wait; its exit status,
        128 + N when a signal N killed it.

        As with lxc-attach, a command gets the caller's stdio and no other descriptor of the caller
        but those in ``pass_fds`` (same numbers inside).
        """
        from lxcframe.attach import attach_wait
        from lxcframe.attach_options import attach_options

        options = attach_options(clear_env=clear_env, keep_env=keep_env, env=env, uid=uid, gid=gid, cwd=cwd,
                                 stdin=stdin, stdout=stdout, stderr=stderr, namespaces=namespaces,
                                 personality=personality, pass_fds=pass_fds)
        with bound_container(self.name):
            return attach_wait(self, _run(run), options)

    def get_ips(self, interface: str | None = None, family: str | None = None,
                scope: int | None = None, timeout: float = 0) -> tuple[str, ...]:
        """Addresses of the running container, as python3-lxc: ``family`` ``"inet"``/``"inet6"``,
        ``interface`` a name (lo is left out unless named), ``scope`` the kernel's (global by default).
        With ``timeout`` (seconds), asked again every 0.1 s until an address shows up or the time is out:
        the way callers wait for a container's network.

        Read by the network plugin (``netns``) through the netns id the start recorded: no fork, no
        setns. The state is kept while the same init lives, so repeated calls skip the state file. With
        the network plugin disabled this is an error, not an empty tuple (which would read as "no
        address yet" to a caller waiting for one).
        """
        deadline = time.monotonic() + max(timeout, 0)
        while True:
            state = self._netns_ref
            if state is None or st.process_start_time(state.init_pid) != state.init_start:
                state = self._netns_ref = self._running_state()
            found = call_hook(self.plugins, "lxcframe_get_ips", firstresult=True, state=state,
                              interface=interface, family=family, scope=scope)
            if not found:
                raise ContainerError("no enabled plugin reads a container's addresses (enable netns)")
            if found[0] or time.monotonic() >= deadline:
                return tuple(found[0])
            time.sleep(min(0.1, max(deadline - time.monotonic(), 0)))

    def attach_interface(self, src_ifname: str, dst_ifname: str | None = None) -> None:
        """Move the host's interface ``src_ifname`` into the running container, as ``dst_ifname`` if given."""
        self._move_interface(src_ifname, dst_ifname, into=True)

    def detach_interface(self, ifname: str, dst_ifname: str | None = None) -> None:
        """Move the container's interface ``ifname`` back to the host, as ``dst_ifname`` if given."""
        self._move_interface(ifname, dst_ifname, into=False)

    def _move_interface(self, name: str, new_name: str | None, *, into: bool) -> None:
        for ifname in (name, new_name):
            if ifname is not None and (not ifname or len(ifname) > 15 or "/" in ifname or ifname.strip() != ifname):
                raise ContainerError(f"{ifname!r} is not an interface name (1 to 15 characters, no '/' or space)")
        with bound_container(self.name):
            if not call_hook(self.plugins, "lxcframe_move_interface", firstresult=True,
                             state=self._running_state(), name=name, new_name=new_name, into=into):
                raise ContainerError("no enabled plugin moves network interfaces (enable netns)")

    def add_device_node(self, src_path: str, dest_path: str | None = None) -> None:
        """Give the running container the host's device node ``src_path`` at ``dest_path`` (default: the
        same path), and allow it in the container's device cgroup (cgroup1's ``devices.allow``, or on
        cgroup2 the device program's rules).

        The node is bind-mounted by mount injection rather than made with mknod, so that an
        unprivileged container (which may not mknod) gets it too.
        """
        rule = _device_rule(src_path)
        self._running_state()
        if self._has_device_cgroup():
            self.set_cgroup_item("devices.allow", rule)  # type: ignore[attr-defined]
        self.mount(src_path, dest_path or src_path)

    def remove_device_node(self, src_path: str, dest_path: str | None = None) -> None:
        """Take away a node :meth:`add_device_node` gave (unmounted and removed), and deny it again."""
        rule = _device_rule(src_path)
        target = dest_path or src_path
        if not call_hook(self.plugins, "lxcframe_umount", firstresult=True, state=self._running_state(),
                         target=target, flags=0, remove=True):
            raise ContainerError("no enabled plugin can remove mounts (enable mount-injection)")
        if self._has_device_cgroup():
            self.set_cgroup_item("devices.deny", rule)  # type: ignore[attr-defined]

    def _has_device_cgroup(self) -> bool:
        """Whether the container's devices are controlled: by cgroup1's devices controller, or on cgroup2
        by the device program, whose rules ``devices.allow``/``devices.deny`` change while it runs."""
        try:
            self.get_cgroup_item("devices.list")  # type: ignore[attr-defined]
        except ContainerError:
            return False
        return True

    def get_interfaces(self) -> tuple[str, ...]:
        """Interface names of the running container, lo included (as python3-lxc); read by the network
        plugin, an error when it is disabled."""
        state = self._netns_ref
        if state is None or st.process_start_time(state.init_pid) != state.init_start:
            state = self._netns_ref = self._running_state()
        found = call_hook(self.plugins, "lxcframe_get_interfaces", firstresult=True, state=state)
        if not found:
            raise ContainerError("no enabled plugin reads a container's interfaces (enable netns)")
        return tuple(found[0])

    # --- console -------------------------------------------------------------------------------

    def console_getfd(self, ttynum: int = -1) -> int:
        """A descriptor to read and write tty ``ttynum`` of the running container (python3-lxc's name).

        ``-1`` takes the first free tty (the console when ``lxc.tty.max`` is 0), ``0`` the console.
        The tty stays reserved for this object until :meth:`console_release` (or the object goes).
        """
        from lxcframe.plugins.console.client import open_tty

        self._running_state()
        holder, fd, _number = open_tty(self.lxcpath, self.name, ttynum)
        self.__dict__.setdefault("_console_holders", {})[fd] = holder
        return fd

    def console_release(self, fd: int) -> None:
        """Close a descriptor of :meth:`console_getfd` and free its tty."""
        holder = self.__dict__.get("_console_holders", {}).pop(fd, None)
        os.close(fd)
        if holder is not None:
            holder.close()

    def console(self, ttynum: int = -1, escape: str = "^a") -> int:
        """Connect the caller's terminal to a tty (``lxcframe console``); ``escape q`` detaches."""
        from lxcframe.plugins.console.terminal import parse_escape, run

        key = parse_escape(escape)
        self._running_state()
        return run(self.lxcpath, self.name, ttynum, key)

    def console_log(self, clear: bool = False) -> str:
        """The console's ring buffer (``lxc.console.buffer.size``); ``clear`` empties it after reading."""
        from lxcframe.plugins.console.client import read_log

        self._running_state()
        return read_log(self.lxcpath, self.name, clear)




def _run(run: Sequence[str] | Callable[[], Any]) -> Sequence[str] | Callable[[], Any]:
    """A command as a tuple of strings, or a callable as it is; a ContainerError for anything else."""
    if callable(run):
        return run
    if isinstance(run, str | bytes) or not all(isinstance(word, str) for word in run):
        raise ContainerError(f"attach: {run!r} is neither a command (a sequence of strings) nor a callable")
    return tuple(run)


def _device_rule(path: str) -> str:
    """The device cgroup rule of the host's device node ``path`` (``c 1:3 rwm``)."""
    import stat

    try:
        info = os.stat(path)
    except OSError as err:
        raise ContainerError(f"device {path}: {err.strerror}") from None
    if not (stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)):
        raise ContainerError(f"device {path}: not a character or block device node")
    kind = "c" if stat.S_ISCHR(info.st_mode) else "b"
    return f"{kind} {os.major(info.st_rdev)}:{os.minor(info.st_rdev)} rwm"
