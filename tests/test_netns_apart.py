"""Netlink requests run apart from the monitor (``iproute.apart``), and what that spares a monitor.

A daemon monitor lives as long as its container; whatever pyroute2 code it runs itself dirties pages it
shares with the supervisor and its siblings (reference counts), ~2.5 MB for one IPRoute and one request.
"""

from __future__ import annotations

import errno
import os

import pytest

from lxcframe.plugins.netns.iproute import LOOPBACK_INDEX, apart


def _descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_apart_answers_from_a_process_of_its_own_that_is_gone_afterwards():
    held = _descriptors()
    answer = apart(lambda rt: [os.getpid(), rt.link("lo").ifindex][0])
    assert isinstance(answer, int) and answer != os.getpid()
    assert not os.path.exists(f"/proc/{answer}")  # reaped, not a zombie
    assert apart(lambda rt: rt.link("lo").ifindex) == LOOPBACK_INDEX
    assert apart(lambda rt: rt.get_nsid(nsid=2**31 - 2)) is None
    assert _descriptors() == held


def test_apart_raises_the_kernel_refusal_with_its_errno_and_text():
    with pytest.raises(OSError) as caught:
        apart(lambda rt: rt.link("lxfnosuchdev").ifindex)
    assert (caught.value.errno, caught.value.strerror) == (errno.ENODEV, "find link lxfnosuchdev: No such device")


def test_apart_turns_any_other_failure_into_an_oserror_naming_it():
    with pytest.raises(OSError) as caught:
        apart(lambda rt: 1 // 0)
    assert (caught.value.errno, caught.value.strerror) == (
        errno.EIO, "ZeroDivisionError: integer division or modulo by zero")


def _private_kb(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        values = {key: int(rest.split()[0]) for key, _, rest in (line.partition(":") for line in handle)
                  if rest.strip().endswith("kB")}
    return values["Private_Clean"] + values["Private_Dirty"]


@pytest.mark.container
def test_a_monitor_with_its_own_netns_owns_no_more_memory_than_one_without(make_container):
    # Both monitors are forked by the same supervisor, which preloaded pyroute2. The netns id (assigned
    # at start) is the only netlink work of an 'empty' network in the monitor: done apart, it leaves the
    # monitor's memory as it is without a network of its own. Done in the monitor, it cost ~2.6 MB.
    shared = make_container("nmnone", config=(("lxc.net.0.type", "none"),))
    own = make_container("nmempty", config=(("lxc.net.0.type", "empty"),))
    shared.start()
    own.start()
    try:
        assert isinstance(own.info()["netns_id"], int)
        without, with_netns = (_private_kb(c.current_state().monitor_pid) for c in (shared, own))
        assert with_netns - without < 1024, (without, with_netns)
    finally:
        own.stop(kill=True)
        shared.stop(kill=True)
