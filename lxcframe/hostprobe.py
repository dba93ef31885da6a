"""The network probes that are still to move into the netns plugin's check hook.

Each plugin probes the host in its own ``lxcframe_check`` hook (core: ``plugins/core_probes.py``;
seccomp, AppArmor and keyring in their own packages); this module goes once it is empty.

Every probe returns a :class:`Probe` and never raises: a check command must
report everything it can, so any failure is turned into ``supported=False``
with the reason in ``detail``.

pyroute2 is deliberately not used here (importing it costs ~130 ms, a lot for
a quick diagnostic); the one netlink request needed is packed by hand.
"""

from __future__ import annotations

import errno
import os
import socket
import struct

from lxcframe.probe import Probe, never_raises

# Kept as module attributes so that tests can point them elsewhere.
_PROC_NS_DIR = "/proc/self/ns"


# --------------------------------------------------------------------------
# Netlink
# --------------------------------------------------------------------------


_SOL_NETLINK = 270
_NETLINK_GET_STRICT_CHK = 12


@never_raises("netlink_strict_chk")
def probe_netlink_strict_chk() -> Probe:
    """NETLINK_GET_STRICT_CHK (kernel-side filtering of dump requests)."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        try:
            sock.setsockopt(_SOL_NETLINK, _NETLINK_GET_STRICT_CHK, 1)
        except OSError as exc:
            return Probe("netlink_strict_chk", False, f"setsockopt(NETLINK_GET_STRICT_CHK): {exc}")
    return Probe("netlink_strict_chk", True, "setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1) accepted")


_NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_NLMSG_ERROR = 2
_NLM_F_REQUEST = 1
_RTM_NEWNSID = 88
_RTM_GETNSID = 90
_NETNSA_NSID = 1
_NETNSA_FD = 3


def _parse_nsid(payload: bytes) -> int | None:
    """NETNSA_NSID from an RTM_NEWNSID payload (after the nlmsghdr)."""
    offset = 4  # struct rtgenmsg, padded to 4 bytes
    while offset + 4 <= len(payload):
        length, kind = struct.unpack_from("=HH", payload, offset)
        if length < 4:
            break
        if kind == _NETNSA_NSID and length >= 8:
            value: int = struct.unpack_from("=i", payload, offset + 4)[0]
            return value
        offset += (length + 3) & ~3
    return None


@never_raises("netns_id")
def probe_netns_id() -> Probe:
    """Network namespace ids: send a real RTM_GETNSID for our own netns."""
    ns_fd = os.open(os.path.join(_PROC_NS_DIR, "net"), os.O_RDONLY | os.O_CLOEXEC)
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
            sock.settimeout(5)
            sock.bind((0, 0))
            body = struct.pack("=B3x", socket.AF_UNSPEC) + struct.pack("=HHI", 8, _NETNSA_FD, ns_fd)
            seq = 1
            sock.send(
                _NLMSG_HDR.pack(_NLMSG_HDR.size + len(body), _RTM_GETNSID, _NLM_F_REQUEST, seq, 0) + body
            )
            reply = sock.recv(65536)
    finally:
        os.close(ns_fd)
    if len(reply) < _NLMSG_HDR.size:
        return Probe("netns_id", False, "RTM_GETNSID: short netlink reply")
    length, kind, _flags, _seq, _pid = _NLMSG_HDR.unpack_from(reply)
    payload = reply[_NLMSG_HDR.size : length]
    if kind == _NLMSG_ERROR:
        code = -struct.unpack_from("=i", payload)[0] if len(payload) >= 4 else errno.EIO
        return Probe("netns_id", False, f"RTM_GETNSID refused: {os.strerror(code)}")
    if kind != _RTM_NEWNSID:
        return Probe("netns_id", False, f"RTM_GETNSID: unexpected reply type {kind}")
    nsid = _parse_nsid(payload)
    shown = "not assigned" if nsid is None or nsid < 0 else str(nsid)
    return Probe("netns_id", True, f"RTM_GETNSID works (id of own netns: {shown})")
