"""Network configuration through pyroute2: links, addresses, routes, moves between namespaces, netns ids.

Only the network stages import this module (the monitor's ``setup_network``, its undos and cleanup, and
the child's ``child_network``), so pyroute2 (~0.25 s to import) costs nothing to a command that configures
no network. Every :class:`Rtnl` is made by the process that uses it, after the fork that made the
container's child, and closed before its stage ends: pyroute2 0.9.7 runs each ``IPRoute`` on an asyncio
loop of its own (an epoll descriptor and a socket pair beside the netlink socket; it starts no thread),
none of which a child may inherit. Importing the modules alone makes no descriptor and no thread, which
is why ``warm_up`` may run before the fork.

A monitor lives as long as its container, so what it runs of pyroute2 it pays for in memory: making an
``IPRoute`` and asking one thing touches the reference counts of so many of pyroute2's shared objects
that ~2.5 MB of the pages the monitor shares with the supervisor and its siblings become its own
(measured; pyroute2's own allocations are ~0.3 MB). :func:`apart` runs such a request in a short-lived
fork instead, whose dirtied pages go when it exits.

pyroute2's ``NetlinkError`` is no ``OSError``: each request turns it into
:class:`~lxcframe.plugins.netns.rawlink.NetlinkError`, naming what was asked and carrying the kernel's
extended-ack text, so callers catch one error class whichever side of the network code failed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from lxcframe.plugins.netns.rawlink import (
    IFF_UP,
    LOOPBACK_INDEX,
    RT_SCOPE_UNIVERSE,
    Address,
    Link,
    NetlinkError,
    netlink_socket_inside,
)

__all__ = ["IFF_UP", "LOOPBACK_INDEX", "RT_SCOPE_UNIVERSE", "Address", "Link", "NetlinkError", "Rtnl", "apart",
           "warm_up"]

RT_SCOPE_LINK = 253
MACVLAN_MODES = {"private": 1, "vepa": 2, "bridge": 4, "passthru": 8}


def warm_up() -> None:
    """Import what :class:`Rtnl` uses, so that a child forked afterwards does not import it again."""
    import pyroute2.iproute.linux  # noqa: F401


Answer = int | bool | None


def apart(task: Callable[[Rtnl], Answer]) -> Answer:
    """``task`` run on an :class:`Rtnl` of its own in a forked process that exits right after; its answer.

    An ``OSError`` there is raised here again (same errno and text); any other failure becomes an
    ``OSError`` naming it. The fork inherits the caller's namespaces and credentials, which the task
    relies on, and leaves through ``os._exit``: no handler or finaliser of the caller's runs twice.
    """
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - measured through the monitor's tests; coverage does not follow forks
        code = 1
        try:
            os.close(read_end)
            try:
                with Rtnl() as rt:
                    outcome: dict[str, Any] = {"answer": task(rt)}
            except OSError as err:
                outcome = {"errno": err.errno or errno.EIO, "error": err.strerror or str(err)}
            except Exception as err:  # carried to the caller, which raises it
                outcome = {"errno": errno.EIO, "error": f"{type(err).__name__}: {err}"}
            os.write(write_end, json.dumps(outcome).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        chunks = []
        while chunk := os.read(read_end, 65536):
            chunks.append(chunk)
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    if not chunks or os.waitstatus_to_exitcode(status) != 0:
        raise OSError(errno.EIO, f"netlink request process ended with status {os.waitstatus_to_exitcode(status)}")
    outcome = json.loads(b"".join(chunks))
    if "errno" in outcome:
        raise OSError(outcome["errno"], outcome["error"])
    answer: Answer = outcome["answer"]
    return answer


@contextlib.contextmanager
def _asking(what: str) -> Iterator[None]:
    from pyroute2.netlink.exceptions import NetlinkError as Pyroute2Error

    try:
        yield
    except Pyroute2Error as err:
        code = err.code if isinstance(err.code, int) and err.code > 0 else errno.EIO
        said = str(err.args[1]) if len(err.args) > 1 and err.args[1] else ""
        raise NetlinkError(code, what, "" if said == os.strerror(code) else said) from None


def _link(message: Any) -> Link:
    return Link(message["index"], message.get_attr("IFLA_IFNAME") or "", message["flags"],
                message.get_attr("IFLA_MTU") or 0, message.get_attr("IFLA_ADDRESS") or "")


class Rtnl:
    """One pyroute2 ``IPRoute`` with extended acks, in the caller's network namespace or in ``ns_fd``'s.

    A socket inside another namespace is made by :func:`~.rawlink.netlink_socket_inside` (a short-lived
    thread's setns) and handed to pyroute2 with ``use_socket``: pyroute2's own ``netns=`` forks a process.
    """

    def __init__(self, *, ns_fd: int | None = None) -> None:
        from pyroute2 import IPRoute

        if ns_fd is None:
            self._ipr = IPRoute(ext_ack=True)
            return
        sock = netlink_socket_inside(ns_fd)
        try:
            self._ipr = IPRoute(use_socket=sock)
        except BaseException:
            sock.close()
            raise

    def close(self) -> None:
        self._ipr.close()  # also closes a socket given with use_socket (its asyncio transport does)

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- links -------------------------------------------------------------------------------------

    def link(self, name: str) -> Link:
        """The link called ``name`` (a NetlinkError ``ENODEV`` when there is none)."""
        with _asking(f"find link {name}"):
            return _link(self._ipr.link("get", ifname=name)[0])

    def links(self) -> list[Link]:
        with _asking("list links"):
            return [_link(message) for message in self._ipr.link("dump")]

    def create_veth(self, host_name: str, peer_name: str, peer_ns_fd: int, *, mtu: int | None = None) -> None:
        """A veth pair: ``host_name`` here, ``peer_name`` created directly inside ``peer_ns_fd``.

        Creating the peer in its namespace (rather than moving it there afterwards) means it never holds a
        name on the host, so two containers cannot race for a temporary name.
        """
        sized = {} if mtu is None else {"mtu": mtu}
        with _asking(f"create veth pair {host_name}/{peer_name}"):
            self._ipr.link("add", ifname=host_name, kind="veth", **sized,
                           peer={"ifname": peer_name, "net_ns_fd": peer_ns_fd, **sized})

    def create_macvlan(self, name: str, lower_index: int, mode: str, ns_fd: int) -> None:
        """A macvlan on ``lower_index`` (a link of this namespace), created inside ``ns_fd``."""
        with _asking(f"create macvlan {name}"):
            self._ipr.link("add", ifname=name, kind="macvlan", link=lower_index,
                           macvlan_mode=MACVLAN_MODES[mode], net_ns_fd=ns_fd)

    def set_link(self, index: int, *, what: str, name: str | None = None, mtu: int | None = None,
                 hwaddr: str | None = None, up: bool | None = None, master: int | None = None,
                 ns_fd: int | None = None) -> None:
        """Change a link; with ``ns_fd`` it moves into that namespace (and takes ``name`` there)."""
        changes: dict[str, Any] = {key: value for key, value in (
            ("ifname", name), ("mtu", mtu), ("address", hwaddr), ("master", master), ("net_ns_fd", ns_fd),
        ) if value is not None}
        if up is not None:
            changes["state"] = "up" if up else "down"
        with _asking(what):
            self._ipr.link("set", index=index, **changes)

    def delete_link(self, index: int, *, what: str) -> None:
        with _asking(what):
            self._ipr.link("del", index=index)

    # --- addresses and routes ----------------------------------------------------------------------

    def addresses(self, family: int) -> list[Address]:
        with _asking("list addresses"):
            return [Address(m["index"], m["family"], m.get_attr("IFA_LOCAL") or m.get_attr("IFA_ADDRESS") or "",
                            m["prefixlen"], m["scope"], m.get_attr("IFA_LABEL") or "")
                    for m in self._ipr.addr("dump", family=family)]

    def add_address(self, index: int, family: int, address: str, prefixlen: int,
                    broadcast: str | None = None) -> None:
        extra = {} if broadcast is None else {"broadcast": broadcast}
        with _asking(f"add address {address}/{prefixlen}"):
            self._ipr.addr("add", index=index, family=family, address=address, local=address,
                           prefixlen=prefixlen, **extra)

    def add_route(self, family: int, index: int, *, gateway: str | None = None, destination: str | None = None,
                  dst_len: int = 0) -> None:
        """A route in the main table: a default route via ``gateway``, or a device route to ``destination``
        (the default route when it is ``None``)."""
        spec: dict[str, Any] = {"family": family, "oif": index, "proto": "boot",
                                "scope": RT_SCOPE_UNIVERSE if gateway else RT_SCOPE_LINK}
        if gateway is not None:
            spec["gateway"] = gateway
        if destination is not None:
            spec.update(dst=destination, dst_len=dst_len)
        target = f"via {gateway}" if gateway else f"to {destination}/{dst_len}" if destination else "default dev"
        with _asking(f"add route {target}"):
            self._ipr.route("add", **spec)

    # --- network namespace ids ---------------------------------------------------------------------

    def assign_nsid(self, ns_fd: int) -> int:
        """Give the namespace ``ns_fd`` an id here (the kernel picks it) and return it; an id it already
        has is kept (the kernel answers EEXIST) and returned."""
        try:
            with _asking("assign a netns id"):
                self._ipr.set_netnsid(fd=ns_fd)
        except NetlinkError as err:
            if err.errno != errno.EEXIST:
                raise
        nsid = self.get_nsid(ns_fd=ns_fd)
        if nsid is None:
            raise NetlinkError(errno.ENOENT, "assign a netns id", "the kernel kept no id")
        return nsid

    def get_nsid(self, *, ns_fd: int | None = None, nsid: int | None = None) -> int | None:
        """The id of the namespace of ``ns_fd``, or check that ``nsid`` names one; ``None`` if not."""
        try:
            with _asking("look up a netns id"):
                found = self._ipr.get_netnsid(fd=ns_fd) if ns_fd is not None else self._ipr.get_netnsid(nsid=nsid)
        except NetlinkError as err:
            if err.errno == errno.ENOENT:  # no namespace has that id
                return None
            raise
        value = found.get("nsid") if found else None
        return None if value is None or value < 0 or value == 0xFFFFFFFF else int(value)

    def wait_nsid_released(self, nsid: int, timeout: float) -> bool:
        """Wait until ``nsid`` names no namespace any more; False if it still does after ``timeout`` s.

        Linux has no RTM_DELNSID request (it answers EOPNOTSUPP): an id goes when its namespace dies,
        which the kernel does asynchronously after the last reference is dropped. Its RTM_DELNSID
        notice was not delivered to RTNLGRP_NSID listeners in our checks (kernel 6.18), so ask instead.
        """
        deadline = time.monotonic() + timeout
        delay = 0.001
        while self.get_nsid(nsid=nsid) is not None:
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return True

