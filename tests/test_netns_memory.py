"""What the network code costs a process that does not configure devices: pyroute2's package body,
an ``IPRoute``, or a monitor's memory.

A daemon monitor lives as long as its container; whatever pyroute2 code it runs itself dirties pages it
shares with the supervisor and its siblings (reference counts), ~2.5 MB for one IPRoute and one request.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, os, sys
from lxcframe.plugins.netns import pyroute2_import
from lxcframe.plugins.netns.nsid import assign_nsid, wait_nsid_released
pin = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
nsid = assign_nsid(pin)
loaded = sorted(name for name in sys.modules if name.startswith("pyroute2"))
partial = not pyroute2_import.is_complete()
from pyroute2 import IPRoute  # anyone asking the package for a name gets the whole package
json.dump({"nsid": nsid, "again": assign_nsid(pin), "partial": partial, "loaded": loaded,
           "ipr": IPRoute.__module__, "complete": pyroute2_import.is_complete(),
           "after": len([name for name in sys.modules if name.startswith("pyroute2")])}, sys.stdout)
"""


def test_a_netns_id_imports_the_message_classes_alone_and_the_package_completes_on_demand():
    # In a network namespace of its own (unshare), so the id it assigns is its own, in its own namespace.
    done = subprocess.run(["unshare", "--net", sys.executable, "-c", PROBE], capture_output=True, text=True,
                          check=True, timeout=60)
    facts = json.loads(done.stdout)
    assert isinstance(facts["nsid"], int) and facts["nsid"] >= 0
    assert facts["again"] == facts["nsid"]  # EEXIST: the id it has is kept
    assert facts["partial"] is True
    assert "pyroute2.netlink.rtnl.nsidmsg" in facts["loaded"]
    for heavy in ("pyroute2.ndb", "pyroute2.ipdb", "pyroute2.iproute", "pyroute2.conntrack"):
        assert heavy not in facts["loaded"]
    assert facts["ipr"] == "pyroute2.iproute.linux"
    assert facts["complete"] is True
    assert facts["after"] > len(facts["loaded"]) + 50


def _private_kb(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        values = {key: int(rest.split()[0]) for key, _, rest in (line.partition(":") for line in handle)
                  if rest.strip().endswith("kB")}
    return values["Private_Clean"] + values["Private_Dirty"]


@pytest.mark.container
def test_a_monitor_with_its_own_netns_owns_no_more_memory_than_one_without(per_container_monitor, make_container):
    # Both monitors are forked by the same supervisor. The netns id (assigned at start) is the only
    # netlink work of an 'empty' network in the monitor: done with pyroute2's message class on a plain
    # socket, it leaves the monitor's memory as it is without a network of its own. Done with an
    # IPRoute in the monitor, it cost ~2.6 MB.
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
