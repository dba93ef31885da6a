"""python3-lxc's ``network`` view: ``container.network[i].link = "br0"`` reads and writes ``lxc.net.i.link``.

As in python3-lxc, the attribute names of a ``ContainerNetwork`` (sub-keys with ``.`` as ``_``) live
in one dictionary shared by every instance (the class attribute ``props``), so a network of one type
accepts the attributes another type brought in; callers that work depend on nothing more.
"""

from __future__ import annotations

from typing import Any

_OWN = ("container", "index", "props")


class ContainerNetwork:
    props: dict[str, str] = {}

    def __init__(self, container: Any, index: int) -> None:
        self.container = container
        self.index = index
        keys = container.get_keys(f"lxc.net.{index}")
        for key in keys if isinstance(keys, list) else [keys]:
            self.props[key.replace(".", "_")] = key

    def _key(self, attr: str) -> str:
        if attr not in self.props:
            kind = self.container.get_config_item(f"lxc.net.{self.index}.type")
            raise AttributeError(f"'{kind}' network has no attribute '{attr}'")
        return f"lxc.net.{self.index}.{self.props[attr]}"

    def __getattr__(self, attr: str) -> Any:
        if attr in _OWN:
            return object.__getattribute__(self, attr)
        return self.container.get_config_item(self._key(attr))

    def __setattr__(self, attr: str, value: Any) -> None:
        if attr in _OWN:
            object.__setattr__(self, attr, value)
            return
        self.container.set_config_item(self._key(attr), value)

    def __delattr__(self, attr: str) -> None:
        if attr in _OWN:
            object.__delattr__(self, attr)
            return
        key = self._key(attr)
        if self.props[attr] in ("ipv4", "ipv6"):
            self.container.clear_config_item(key)
        else:
            self.container.set_config_item(key, "")

    def __dir__(self) -> list[str]:
        return sorted(self.props)

    def __repr__(self) -> str:
        kind = self.container.get_config_item(f"lxc.net.{self.index}.type")
        return f"'{kind}' network at index '{self.index}'"


class ContainerNetworkList:
    def __init__(self, container: Any) -> None:
        self.container = container

    def __getitem__(self, index: int) -> ContainerNetwork:
        if index >= len(self):
            # python3-lxc 5.0: an index past the end adds a network first (of a type no one accepts).
            self.add("temp_type")
        return ContainerNetwork(self.container, index)

    def __len__(self) -> int:
        try:
            values = self.container.get_config_item("lxc.net")
        except KeyError:
            return 0
        return len(values) if values else 0

    def add(self, network_type: str) -> bool:
        return bool(self.container.set_config_item(f"lxc.net.{len(self)}.type", network_type))

    def remove(self, index: int) -> bool:
        if index >= len(self):
            raise IndexError("list index out of range")
        return bool(self.container.clear_config_item(f"lxc.net.{index}"))
