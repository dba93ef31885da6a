"""``lxc.idmap`` arithmetic (lxcframe.idmap): parsing, expansion of ``b``, overlaps, lookups, the root."""

from __future__ import annotations

import pytest

from lxcframe.config.keys import KeyRegistry, KeySpec, uint
from lxcframe.config.model import ContainerConfig, load_text
from lxcframe.idmap import (
    MAX_RANGES,
    IdMapEntry,
    config_entries,
    container_root,
    expand,
    host_id,
    overlaps,
    parse_idmap,
    too_many,
)


def registry() -> KeyRegistry:
    reg = KeyRegistry()
    for spec in (
        KeySpec("lxc.idmap", parse_idmap, multi=True, plugin="idmap"),
        KeySpec("lxc.init.uid", uint, plugin="core"),
        KeySpec("lxc.init.gid", uint, plugin="core"),
    ):
        reg.add(spec)
    return reg


def config(text: str) -> ContainerConfig:
    return load_text(text, registry())


# --- parse_idmap ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("u 0 100000 65536", IdMapEntry("u", 0, 100000, 65536)),
        ("g 0 100000 65536", IdMapEntry("g", 0, 100000, 65536)),
        ("b 1000 1000 1", IdMapEntry("b", 1000, 1000, 1)),
        ("  u\t0   5  1  ", IdMapEntry("u", 0, 5, 1)),
        ("u 0 0 1", IdMapEntry("u", 0, 0, 1)),
        ("u 007 010 01", IdMapEntry("u", 7, 10, 1)),  # decimal, never octal
        # The largest ranges the kernel takes: first + count stays below 2^32.
        ("u 0 0 4294967295", IdMapEntry("u", 0, 0, 2**32 - 1)),
        ("u 4294967294 0 1", IdMapEntry("u", 2**32 - 2, 0, 1)),
        ("u 0 4294967294 1", IdMapEntry("u", 0, 2**32 - 2, 1)),
    ],
)
def test_parse_idmap(text: str, expected: IdMapEntry) -> None:
    assert parse_idmap(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected 'u|g NSID HOSTID RANGE'"),
        ("u 0 100000", "expected 'u|g NSID HOSTID RANGE'"),
        ("u 0 100000 65536 1", "expected 'u|g NSID HOSTID RANGE'"),
        ("x 0 100000 65536", "expected 'u|g NSID HOSTID RANGE'"),
        ("U 0 100000 65536", "expected 'u|g NSID HOSTID RANGE'"),
        ("ug 0 100000 65536", "expected 'u|g NSID HOSTID RANGE'"),
        ("u zero 100000 65536", "NSID, HOSTID and RANGE must be decimal numbers"),
        ("u 0 0x10 1", "NSID, HOSTID and RANGE must be decimal numbers"),
        ("u 0 1 1.5", "NSID, HOSTID and RANGE must be decimal numbers"),
        ("u -1 100000 1", "ids must be >= 0 and RANGE > 0"),
        ("u 0 -1 1", "ids must be >= 0 and RANGE > 0"),
        ("u 0 100000 0", "ids must be >= 0 and RANGE > 0"),
        ("u 0 100000 -5", "ids must be >= 0 and RANGE > 0"),
        ("u 4294967295 0 1", "the range goes past 2^32 - 1"),
        ("u 0 4294967295 1", "the range goes past 2^32 - 1"),
        ("u 1 0 4294967295", "the range goes past 2^32 - 1"),
        ("u 0 1 4294967295", "the range goes past 2^32 - 1"),
        ("u 0 0 4294967296", "the range goes past 2^32 - 1"),
        ("u 4294967296 0 1", "the range goes past 2^32 - 1"),
    ],
)
def test_parse_idmap_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_idmap(text)
    assert str(caught.value) == message
    assert type(caught.value) is ValueError


# --- IdMapEntry ------------------------------------------------------------------------------------------


def test_line_is_what_the_kernel_reads() -> None:
    assert IdMapEntry("u", 0, 100000, 65536).line() == "0 100000 65536"


def test_to_host_inside_and_at_both_edges() -> None:
    entry = IdMapEntry("u", 10, 1000, 5)
    assert [entry.to_host(n) for n in range(8, 17)] == [None, None, 1000, 1001, 1002, 1003, 1004, None, None]


def test_to_host_single_id() -> None:
    entry = IdMapEntry("g", 0, 0, 1)
    assert entry.to_host(0) == 0
    assert entry.to_host(1) is None
    assert entry.to_host(-1) is None


# --- expand, overlaps, too_many -------------------------------------------------------------------------


def test_expand_splits_both_and_keeps_order() -> None:
    entries = [IdMapEntry("g", 5, 6, 7), IdMapEntry("b", 0, 100, 10), IdMapEntry("u", 1, 2, 3)]
    assert expand(entries) == [
        IdMapEntry("g", 5, 6, 7),
        IdMapEntry("u", 0, 100, 10),
        IdMapEntry("g", 0, 100, 10),
        IdMapEntry("u", 1, 2, 3),
    ]
    assert expand([]) == []
    assert expand(iter([IdMapEntry("u", 0, 1, 1)])) == [IdMapEntry("u", 0, 1, 1)]


def test_no_overlap_for_adjacent_ranges() -> None:
    entries = [
        IdMapEntry("u", 0, 100000, 10),
        IdMapEntry("u", 10, 100010, 10),
        IdMapEntry("g", 0, 100000, 10),
        IdMapEntry("g", 10, 100010, 10),
    ]
    assert overlaps(entries) == []
    assert overlaps(entries[::-1]) == []


def test_overlap_inside_the_container() -> None:
    entries = [IdMapEntry("u", 0, 100000, 10), IdMapEntry("u", 9, 200000, 5)]
    assert overlaps(entries) == ["u maps overlap inside the container: 0 100000 10 and 9 200000 5"]
    # The same in the other order: the check is symmetric.
    assert overlaps(entries[::-1]) == ["u maps overlap inside the container: 9 200000 5 and 0 100000 10"]


def test_overlap_on_the_host() -> None:
    entries = [IdMapEntry("g", 0, 100000, 10), IdMapEntry("g", 100, 100009, 1)]
    assert overlaps(entries) == ["g maps overlap on the host: 0 100000 10 and 100 100009 1"]
    assert overlaps(entries[::-1]) == ["g maps overlap on the host: 100 100009 1 and 0 100000 10"]


def test_overlap_on_both_sides_and_containment() -> None:
    entries = [IdMapEntry("u", 0, 1000, 100), IdMapEntry("u", 10, 1010, 1)]
    assert overlaps(entries) == [
        "u maps overlap inside the container: 0 1000 100 and 10 1010 1",
        "u maps overlap on the host: 0 1000 100 and 10 1010 1",
    ]


def test_uid_and_gid_ranges_never_overlap_each_other() -> None:
    entries = [IdMapEntry("u", 0, 1000, 100), IdMapEntry("g", 0, 1000, 100)]
    assert overlaps(entries) == []


def test_every_pair_is_checked_once() -> None:
    entries = [IdMapEntry("u", 0, 0, 10), IdMapEntry("u", 20, 20, 10), IdMapEntry("u", 5, 25, 1)]
    assert overlaps(entries) == [
        "u maps overlap inside the container: 0 0 10 and 5 25 1",
        "u maps overlap on the host: 20 20 10 and 5 25 1",
    ]


def test_too_many_ranges() -> None:
    assert MAX_RANGES == 340
    uids = [IdMapEntry("u", n, n, 1) for n in range(340)]
    gids = [IdMapEntry("g", n, n, 1) for n in range(341)]
    assert too_many(uids) == []
    assert too_many(uids + gids) == ["g maps: 341 ranges, the kernel takes at most 340"]
    assert too_many([*uids, IdMapEntry("u", 999, 999, 1), *gids]) == [
        "u maps: 341 ranges, the kernel takes at most 340",
        "g maps: 341 ranges, the kernel takes at most 340",
    ]


# --- host_id --------------------------------------------------------------------------------------------


def test_host_id_looks_in_ranges_of_its_kind_only() -> None:
    entries = [IdMapEntry("g", 0, 500, 10), IdMapEntry("u", 0, 100000, 10), IdMapEntry("u", 10, 7, 1)]
    assert host_id(entries, "u", 0) == 100000
    assert host_id(entries, "u", 9) == 100009
    assert host_id(entries, "u", 10) == 7
    assert host_id(entries, "u", 11) is None
    assert host_id(entries, "g", 3) == 503
    assert host_id(entries, "g", 10) is None
    assert host_id([], "u", 0) is None


def test_host_id_takes_the_first_matching_range() -> None:
    entries = [IdMapEntry("u", 0, 100, 10), IdMapEntry("u", 0, 200, 10)]
    assert host_id(entries, "u", 1) == 101
    assert host_id(iter(entries[::-1]), "u", 1) == 201


# --- config_entries, container_root ---------------------------------------------------------------------


def test_config_entries_expands_both() -> None:
    cfg = config("lxc.idmap = b 0 100000 65536\nlxc.idmap = u 65536 5000 1\n")
    assert config_entries(cfg) == [
        IdMapEntry("u", 0, 100000, 65536),
        IdMapEntry("g", 0, 100000, 65536),
        IdMapEntry("u", 65536, 5000, 1),
    ]


def test_privileged_container_root_is_host_root() -> None:
    cfg = config("lxc.init.uid = 5\nlxc.init.gid = 6\n")
    assert config_entries(cfg) == []
    assert container_root(cfg) == (0, 0)


def test_container_root_is_mapped_root() -> None:
    cfg = config("lxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 200000 65536\nlxc.init.uid = 5\n")
    assert container_root(cfg) == (100000, 200000)


def test_without_root_in_the_map_the_init_ids_stand_in() -> None:
    cfg = config(
        "lxc.idmap = u 1000 5000 1\nlxc.idmap = g 2000 6000 1\nlxc.init.uid = 1000\nlxc.init.gid = 2000\n"
    )
    assert container_root(cfg) == (5000, 6000)


def test_root_mapped_for_uid_only() -> None:
    cfg = config(
        "lxc.idmap = u 0 5000 10\nlxc.idmap = g 2000 6000 1\nlxc.init.uid = 3\nlxc.init.gid = 2000\n"
    )
    assert container_root(cfg) == (5000, 6000)
    cfg = config(
        "lxc.idmap = u 1000 5000 1\nlxc.idmap = g 0 6000 10\nlxc.init.uid = 1000\nlxc.init.gid = 4\n"
    )
    assert container_root(cfg) == (5000, 6000)


def test_unmapped_init_ids_fall_back_to_nobody() -> None:
    # No root in either map and no init ids set: container id 0 is looked up and is unmapped.
    cfg = config("lxc.idmap = u 1000 5000 1\nlxc.idmap = g 1000 6000 1\n")
    assert container_root(cfg) == (65534, 65534)
    cfg = config("lxc.idmap = u 1000 5000 1\nlxc.idmap = g 1000 6000 1\nlxc.init.uid = 1000\n")
    assert container_root(cfg) == (5000, 65534)
    cfg = config("lxc.idmap = u 1000 5000 1\nlxc.idmap = g 1000 6000 1\nlxc.init.gid = 1000\n")
    assert container_root(cfg) == (65534, 6000)


def test_init_ids_default_to_zero() -> None:
    # Root unmapped and no init ids: id 0 is looked up (unmapped), not a neighbour that is mapped.
    cfg = config("lxc.idmap = u 1 5000 1\nlxc.idmap = g 1 6000 1\n")
    assert container_root(cfg) == (65534, 65534)


def test_host_id_zero_is_not_unmapped() -> None:
    # Container root mapped onto host root: 0 is a mapped id, not "none".
    cfg = config("lxc.idmap = u 0 0 1\nlxc.idmap = g 0 0 1\nlxc.init.uid = 3\nlxc.init.gid = 3\n")
    assert container_root(cfg) == (0, 0)
    cfg = config("lxc.idmap = u 7 0 1\nlxc.idmap = g 8 0 1\nlxc.init.uid = 7\nlxc.init.gid = 8\n")
    assert container_root(cfg) == (0, 0)
