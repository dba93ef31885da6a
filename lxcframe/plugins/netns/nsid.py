"""A container's network namespace id: assigned when it starts, waited out when it ends.

The request is pyroute2's ``nsidmsg`` (RTM_NEWNSID), encoded by pyroute2 and sent on the read path's
plain socket (:class:`~.rawlink.RtnlSocket`) rather than through an ``IPRoute``: every container with a
network namespace of its own does this, and an ``IPRoute`` costs ~3 ms to make (an asyncio loop of its
own) plus, in a daemon monitor, ~2.5 MB of pages it shares with the supervisor and its siblings that
its reference counts make its own (measured; see tests/test_netns_memory.py). The message class alone
touches a few of them. Looking an id up is the read path's RTM_GETNSID (:func:`~.rawlink.get_nsid`).
"""

from __future__ import annotations

import errno
import time
from typing import Any

from lxcframe.plugins.netns import pyroute2_import
from lxcframe.plugins.netns.rawlink import HEADER, NetlinkError, RtnlSocket, get_nsid

RTM_NEWNSID = 88
#: NETNSA_NSID's "no id": asked for in RTM_NEWNSID, the kernel picks a free one.
KERNEL_PICKS = 0xFFFFFFFF


def message_class() -> type[Any]:
    """pyroute2's RTM_NEWNSID message class, imported without pyroute2's package body."""
    pyroute2_import.message_classes()
    from pyroute2.netlink.rtnl.nsidmsg import nsidmsg

    return nsidmsg


def assign_nsid(ns_fd: int) -> int:
    """Give the namespace ``ns_fd`` an id in the caller's namespace (the kernel picks it) and return it;
    an id it already has is kept (the kernel answers EEXIST) and returned."""
    message = message_class()()
    message["attrs"] = [("NETNSA_NSID", KERNEL_PICKS), ("NETNSA_FD", ns_fd)]
    message.encode()
    with RtnlSocket() as sock:
        try:
            sock.request(RTM_NEWNSID, bytes(message.data[HEADER.size:]), what="assign a netns id")
        except NetlinkError as err:
            if err.errno != errno.EEXIST:
                raise
        nsid = get_nsid(sock, ns_fd=ns_fd)
    if nsid is None:
        raise NetlinkError(errno.ENOENT, "assign a netns id", "the kernel kept no id")
    return nsid


def wait_nsid_released(nsid: int, timeout: float) -> bool:
    """Wait until ``nsid`` names no namespace any more; False if it still does after ``timeout`` s.

    Linux has no RTM_DELNSID request (it answers EOPNOTSUPP): an id goes when its namespace dies,
    which the kernel does asynchronously after the last reference is dropped. Its RTM_DELNSID
    notice was not delivered to RTNLGRP_NSID listeners in our checks (kernel 6.18), so ask instead.
    """
    deadline = time.monotonic() + timeout
    delay = 0.001
    with RtnlSocket() as sock:
        while get_nsid(sock, nsid=nsid) is not None:
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
    return True
