"""What ``lxcframe check`` reports about the host's network namespaces, from the netns plugin's check hook.

Each probe asks the kernel itself on the raw layer (:mod:`.rawlink`, no pyroute2 import for a quick
diagnostic), changes nothing, and never raises: a failure is reported as unsupported, with the reason.
"""

from __future__ import annotations

import errno
import os

from lxcframe.plugins.netns import rawlink
from lxcframe.plugins.netns.inspect import FALLBACK, FAST
from lxcframe.probe import Probe, never_raises


@never_raises("netns:strict-check")
def probe_netlink_strict_chk() -> Probe:
    """NETLINK_GET_STRICT_CHK (kernel-side checking and filtering of dump requests)."""
    with rawlink.netlink_socket() as sock:
        try:
            sock.setsockopt(rawlink.SOL_NETLINK, rawlink.NETLINK_GET_STRICT_CHK, 1)
        except OSError as exc:
            # Reads then take the fallback (a socket inside each netns): slower, not missing.
            return Probe("netns:strict-check", False, f"setsockopt(NETLINK_GET_STRICT_CHK): {exc}", required=False)
    return Probe("netns:strict-check", True, "setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1) accepted")


@never_raises("netns:ids")
def probe_netns_id() -> Probe:
    """Network namespace ids: a real RTM_GETNSID for our own network namespace."""
    ns_fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with rawlink.RtnlSocket() as sock:
            nsid = rawlink.get_nsid(sock, ns_fd=ns_fd)
    except rawlink.NetlinkError as err:
        return Probe("netns:ids", False, f"RTM_GETNSID refused: {err.strerror}")
    finally:
        os.close(ns_fd)
    return Probe("netns:ids", True, f"RTM_GETNSID works (id of own netns: {'not assigned' if nsid is None else nsid})")


@never_raises("netns:target-netnsid")
def probe_target_netnsid() -> Probe:
    """Whether this kernel serves target-netnsid address dumps, the way get_ips and info read containers
    (otherwise they take the slower fallback of a socket opened inside each netns)."""
    name = "netns:target-netnsid"
    try:
        sock = rawlink.RtnlSocket(strict=True)
    except OSError as err:
        return Probe(name, False, f"{FALLBACK}: NETLINK_GET_STRICT_CHK refused ({err.strerror}); a socket is "
                     "opened inside each container's netns by a short-lived thread", required=False)
    with sock:
        try:
            # -1 names no namespace: a kernel that knows the attribute rejects the id itself.
            rawlink.dump_addresses_raw(sock, -1)
        except rawlink.NetlinkError as err:
            if err.errno == errno.EINVAL:
                # The refusal of the bogus id is the proof; the kernel's words for it are no error here.
                return Probe(name, True, f"{FAST}: strict-check dumps with IFLA/IFA_TARGET_NETNSID, no fork or "
                             "setns (the kernel checks the target id it is given)")
            return Probe(name, False, f"{FALLBACK}: target-netnsid probe failed: {err}", required=False)
    return Probe(name, False, f"{FALLBACK}: the kernel ignores IFA_TARGET_NETNSID; a socket is opened inside "
                 "each netns", required=False)


def all_probes() -> list[Probe]:
    """The netns plugin's probes, in the order ``lxcframe check`` lists them."""
    return [probe_netlink_strict_chk(), probe_netns_id(), probe_target_netnsid()]
