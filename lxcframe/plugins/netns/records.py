"""What a start of the netns plugin records in the state file.

Light on purpose (attrs only): ``info``, ``get_ips`` and cleanup read the record without importing
any netlink code. (The plan part, :class:`~lxcframe.plugins.netns.config.NetPart`, lives with the
key parser, which every process that registers the plugin has loaded: a part crosses only to such
processes, as a class already loaded there.)
"""

from __future__ import annotations

import attrs


@attrs.frozen
class DeviceRecord:
    """One device as the monitor handed it over: enough to give a phys device back, or delete a veth's
    host end, after a monitor died."""

    index: int
    type: str
    #: The name inside the container.
    name: str | None = None
    #: veth: the host end's name and index.
    host: str | None = None
    host_index: int | None = None
    #: phys: the host's own name, MTU and MAC of the device, its index inside, the MAC it has there.
    link: str | None = None
    mtu: int | None = None
    hwaddr: str | None = None
    inside_index: int | None = None
    expect_hwaddr: str | None = None
    #: l2proxy: the link (name, index) holding neighbour proxy entries for these addresses, and whether
    #: each also has a route through lo (an ipvlan's).
    l2proxy_link: str | None = None
    l2proxy_index: int | None = None
    l2proxy: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    l2proxy_lo: bool = False


@attrs.frozen
class NetnsRecord:
    """What a start saves in the state file."""

    #: The container shares the host's network namespace (``lxc.net.0.type = none``).
    shared: bool
    #: The netns id the monitor assigned in its own namespace (the host's), if the kernel gave one.
    nsid: int | None = None
    devices: tuple[DeviceRecord, ...] = ()
