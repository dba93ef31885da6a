"""``lxc.idmap`` entries and the questions other plugins ask of them (who is root, whose files)."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

MAX_ID = 2**32
#: The most ranges the kernel takes in one uid_map or gid_map.
MAX_RANGES = 340


@attrs.frozen
class IdMapEntry:
    kind: str  # "u" or "g"
    nsid: int
    hostid: int
    count: int

    def line(self) -> str:
        return f"{self.nsid} {self.hostid} {self.count}"

    def to_host(self, nsid: int) -> int | None:
        if self.nsid <= nsid < self.nsid + self.count:
            return self.hostid + nsid - self.nsid
        return None


def parse_idmap(value: str) -> IdMapEntry:
    """``u|g|b NSID HOSTID RANGE``; ``b`` (both) is split by the caller through :func:`expand`."""
    fields = value.split()
    if len(fields) != 4 or fields[0] not in ("u", "g", "b"):
        raise ValueError("expected 'u|g NSID HOSTID RANGE'")
    try:
        nsid, hostid, count = (int(f) for f in fields[1:])
    except ValueError:
        raise ValueError("NSID, HOSTID and RANGE must be decimal numbers") from None
    if min(nsid, hostid) < 0 or count <= 0:
        raise ValueError("ids must be >= 0 and RANGE > 0")
    # The kernel computes first + count in 32 bits and refuses a wrap, so 2^32 itself is out too.
    if nsid + count >= MAX_ID or hostid + count >= MAX_ID:
        raise ValueError("the range goes past 2^32 - 1")
    return IdMapEntry(fields[0], nsid, hostid, count)


def expand(entries: Iterable[IdMapEntry]) -> list[IdMapEntry]:
    out = []
    for entry in entries:
        if entry.kind == "b":
            out += [attrs.evolve(entry, kind="u"), attrs.evolve(entry, kind="g")]
        else:
            out.append(entry)
    return out


def overlaps(entries: list[IdMapEntry]) -> list[str]:
    """Problems the kernel would refuse: ranges of one kind overlapping on either side."""
    problems = []
    for kind in ("u", "g"):
        mine = [e for e in entries if e.kind == kind]
        for i, a in enumerate(mine):
            for b in mine[i + 1:]:
                if a.nsid < b.nsid + b.count and b.nsid < a.nsid + a.count:
                    problems.append(f"{kind} maps overlap inside the container: {a.line()} and {b.line()}")
                if a.hostid < b.hostid + b.count and b.hostid < a.hostid + a.count:
                    problems.append(f"{kind} maps overlap on the host: {a.line()} and {b.line()}")
    return problems


def too_many(entries: list[IdMapEntry]) -> list[str]:
    return [f"{kind} maps: {count} ranges, the kernel takes at most {MAX_RANGES}"
            for kind in ("u", "g") if (count := sum(e.kind == kind for e in entries)) > MAX_RANGES]


def host_id(entries: Iterable[IdMapEntry], kind: str, nsid: int) -> int | None:
    """The host id that container id ``nsid`` maps to, or ``None`` when unmapped."""
    for entry in entries:
        if entry.kind == kind:
            mapped = entry.to_host(nsid)
            if mapped is not None:
                return mapped
    return None


def config_entries(config: object) -> list[IdMapEntry]:
    """The expanded idmap of a ContainerConfig (empty when the container is privileged)."""
    get_all = getattr(config, "get_all")  # noqa: B009 – typed loosely to avoid an import cycle
    return expand(get_all("lxc.idmap"))


def container_root(config: object) -> tuple[int, int]:
    """Host (uid, gid) that own the container's files and cgroups: its root, else its init uid/gid.

    Without an idmap this is (0, 0). With maps lacking container uid 0 (an application container
    running as ``lxc.init.uid``), the init ids stand in for root, as LXC does.
    """
    entries = config_entries(config)
    if not entries:
        return 0, 0
    get = getattr(config, "get")  # noqa: B009
    uid_ns = 0 if host_id(entries, "u", 0) is not None else get("lxc.init.uid", 0)
    gid_ns = 0 if host_id(entries, "g", 0) is not None else get("lxc.init.gid", 0)
    uid = host_id(entries, "u", uid_ns)
    gid = host_id(entries, "g", gid_ns)
    return (uid if uid is not None else 65534, gid if gid is not None else 65534)
