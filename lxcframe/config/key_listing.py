"""LXC's ``get_keys``: the top-level config keys, or the keys below a prefix.

The registry holds exact names and patterns (``lxc.net.<N>.type``, ``lxc.cgroup2.*``). A top-level
key is a name up to its first pattern segment, as LXC's key table lists ``lxc.net`` and
``lxc.cgroup2`` for everything below them. Below a network entry (``lxc.net.0``) the keys are those
LXC 3.1 lists for that entry's type (``lxc_list_net_items``), relative to the prefix as LXC gives them.
"""

from __future__ import annotations

from lxcframe.config.keys import KeyRegistry
from lxcframe.config.model import ContainerConfig
from lxcframe.errors import ConfigError

#: Every network entry has these, whatever its type (LXC 3.1's order).
NIC_KEYS_ANY = ("type", "script.up", "script.down")
#: Every type but ``empty`` adds these.
NIC_KEYS_DEVICE = ("flags", "link", "name", "hwaddr", "mtu", "ipv6.address", "ipv6.gateway", "ipv4.address",
                   "ipv4.gateway")
#: And a type its own.
NIC_KEYS_OF_TYPE = {"veth": ("veth.pair",), "macvlan": ("macvlan.mode",), "vlan": ("vlan.id",)}


def _is_wild(segment: str) -> bool:
    return segment in ("<N>", "*")


def _is_index(segment: str) -> bool:
    return segment.isascii() and segment.isdigit() and (len(segment) == 1 or segment[0] != "0")


def top_level_keys(registry: KeyRegistry) -> list[str]:
    """Each key an enabled plugin handles, a pattern cut before its first ``<N>`` or ``*``; sorted."""
    names = set()
    for spec in registry.specs():
        segments = spec.name.split(".")
        cut = next((index for index, segment in enumerate(segments) if _is_wild(segment)), len(segments))
        names.add(".".join(segments[:cut]))
    return sorted(names)


def sub_keys(registry: KeyRegistry, config: ContainerConfig, prefix: str) -> list[str]:
    """The keys below ``prefix``, relative to it; :class:`ConfigError` naming the prefix when there are none."""
    segments = prefix.split(".")
    if len(segments) == 3 and segments[:2] == ["lxc", "net"] and _is_index(segments[2]):
        return _nic_keys(registry, config, prefix, int(segments[2]))
    found = []
    for spec in registry.specs():
        names = spec.name.split(".")
        if len(names) > len(segments) and all(want == have or (want == "<N>" and _is_index(have))
                                              for want, have in zip(names, segments, strict=False)):
            found.append(".".join(names[len(segments):]))
    if not found:
        raise ConfigError("no key an enabled plugin handles is below this prefix", key=prefix)
    return sorted(found)


def _nic_keys(registry: KeyRegistry, config: ContainerConfig, prefix: str, index: int) -> list[str]:
    if registry.lookup(prefix + ".type") is None:
        raise ConfigError(registry.why_not_handled(prefix + ".type"), key=prefix)
    if index not in config.indexes("lxc.net."):
        raise ConfigError(f"no network entry {index} in this config", key=prefix)
    kind = config.get(prefix + ".type") or "empty"  # LXC's entry made by another key is of type empty
    device = () if kind == "empty" else NIC_KEYS_DEVICE
    return [*NIC_KEYS_ANY, *device, *NIC_KEYS_OF_TYPE.get(kind, ())]
