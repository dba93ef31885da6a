"""python3-lxc's calls on a running container: attach, addresses, cgroup items, consoles, and LXC
3.1's mount injection, for :class:`lxcframe.compat.lxc.Container`."""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any

from lxcframe.compat import _attach
from lxcframe.compat._shared import refused
from lxcframe.errors import ConfigError, ContainerError, LxcframeError

#: The kernel's scope of link-local addresses (RT_SCOPE_LINK).
_LINK_SCOPE = 253


def _interface_of_index(init_pid: int, index: int) -> str | None:
    """The name of interface ``index`` in the network namespace of ``init_pid`` (its IPv6 table)."""
    with open(f"/proc/{init_pid}/net/if_inet6") as table:
        for line in table:
            fields = line.split()
            if len(fields) == 6 and int(fields[1], 16) == index:
                return fields[5]
    return None


def _errno_in(err: BaseException) -> int | None:
    """The errno an error carries (a stage's), or the first one of what caused it."""
    seen: BaseException | None = err
    while seen is not None:
        code = getattr(seen, "errno", None)
        if isinstance(code, int) and code > 0:
            return code
        seen = seen.__cause__ or seen.__context__
    return None


class RunningCalls:
    """The methods of :class:`lxcframe.compat.lxc.Container` that act on a running container."""

    _native: Any
    name: str
    if TYPE_CHECKING:
        @property
        def running(self) -> bool: ...
        def _call(self, what: str, call: Any, *args: Any, **kwargs: Any) -> bool: ...

    def attach(self, run: Any, payload: Any = _attach.NO_PAYLOAD, **options: Any) -> int:
        return _attach.attach(self._native, run, payload, options)

    def attach_wait(self, run: Any, payload: Any = _attach.NO_PAYLOAD, **options: Any) -> int:
        return _attach.attach_wait(self._native, run, payload, options)

    def get_ips(self, interface: str | None = None, family: str | None = None, scope: int | None = None,
                timeout: int = 0) -> tuple[str, ...]:
        """Addresses, polled once a second up to ``timeout`` (``LXC_GETIP_TIMEOUT`` overrides) until
        there is one; as python3-lxc, a negative timeout polls for ever."""
        import time

        remaining = int(os.environ.get("LXC_GETIP_TIMEOUT", timeout))
        while True:
            ips = self._ips_once(interface or None, family or None, scope or None)
            if ips or remaining == 0:
                return ips
            remaining -= 1
            time.sleep(1)

    def _ips_once(self, interface: str | None, family: str | None, scope: int | None) -> tuple[str, ...]:
        if not self.running:
            return ()
        try:
            if not scope:
                return tuple(self._native.get_ips(interface, family, None))
            # liblxc compares ``scope`` with an IPv6 address's scope id, which is its interface's
            # index for a link-local address (0 for the others): the link-local addresses of that
            # interface, IPv4 addresses unfiltered.
            ipv4 = tuple(self._native.get_ips(interface, "inet", None)) if family in (None, "inet") else ()
            link = _interface_of_index(self._native.init_pid, scope)
            if family not in (None, "inet6") or link is None or interface not in (None, link):
                return ipv4
            return ipv4 + tuple(self._native.get_ips(link, "inet6", _LINK_SCOPE))
        except (LxcframeError, OSError):
            return ()

    def get_interfaces(self) -> tuple[str, ...]:
        if not self.running:
            return ()
        try:
            return tuple(self._native.get_interfaces())
        except LxcframeError:
            return ()

    def get_cgroup_item(self, key: str) -> str:
        try:
            return str(self._native.get_cgroup_item(key)).rstrip("\n")
        except (ConfigError, ContainerError, OSError):
            raise KeyError("Invalid cgroup entry") from None

    def set_cgroup_item(self, key: str, value: str) -> bool:
        return self._call("set_cgroup_item", self._native.set_cgroup_item, key, value)

    def console(self, ttynum: int = -1, stdinfd: int = 0, stdoutfd: int = 1, stderrfd: int = 2,
                escape: int = 1) -> bool:
        if not self.running:
            return False
        if (stdinfd, stdoutfd, stderrfd) != (0, 1, 2):
            return refused(self.name, "console", ContainerError("the console uses the caller's terminal (fds 0-2)"))
        # LXC's escape is the control key's number: 1 is Ctrl-a.
        key = "^" + chr(ord("a") + escape - 1)
        try:
            return self._native.console(ttynum, escape=key) == 0
        except LxcframeError as err:
            return refused(self.name, "console", err)

    def console_getfd(self, ttynum: int = -1) -> Any:
        if not self.running:
            return False
        try:
            return int(self._native.console_getfd(ttynum))
        except LxcframeError:
            raise ValueError("Unable to allocate tty") from None

    def console_log(self, clear: bool = False, read: bool = False, read_max: int = 0) -> Any:
        """LXC 3.1's console ring buffer: its text when ``read`` (at most ``read_max`` bytes when > 0),
        emptied after reading when ``clear``; ``True`` for a clear alone, ``False`` on failure."""
        try:
            text = str(self._native.console_log(clear))
        except LxcframeError as err:
            return refused(self.name, "console_log", err)
        if not read:
            return True
        return text[:read_max] if read_max > 0 else text

    def mount(self, source: str, target: str, fstype: str | None = None, flags: int = 0,
              data: str | None = None) -> int:
        """LXC 3.1's mount injection: 0, or a negative errno."""
        if fstype is None and self.running:
            # A bind mount's source is the host's: the kernel's own answer about it, as an errno.
            try:
                os.stat(source)
            except OSError as err:
                return -(err.errno or errno.EINVAL)
        return self._errno_of(self._native.mount, source, target, fstype, flags, data)

    def umount(self, target: str, flags: int = 0) -> int:
        return self._errno_of(self._native.umount, target, flags)

    def _errno_of(self, call: Any, *args: Any) -> int:
        if not self.running:
            return -errno.EINVAL
        try:
            call(*args)
        except OSError as err:
            return -(err.errno or errno.EINVAL)
        except LxcframeError as err:
            refused(self.name, getattr(call, "__name__", "mount"), err)
            return -(_errno_in(err) or errno.EINVAL)
        return 0
