"""Properties of ``lxc.idmap`` arithmetic (lxcframe.idmap).

- a line ``parse_idmap`` accepts stays below 2^32 on both sides, and reads back from ``line()``;
- ``to_host`` maps an entry's range one to one onto the host range and nothing outside it;
- ``host_id`` agrees with the first entry of the kind that maps the id;
- ``overlaps`` reports a pair exactly when the id sets of the same kind intersect on either side.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from lxcframe.idmap import MAX_ID, IdMapEntry, expand, host_id, overlaps, parse_idmap, too_many

LIMIT = 2**32 - 1  # the largest id; first + count must stay at or below it

ids = st.one_of(st.integers(0, 70000), st.integers(LIMIT - 70000, LIMIT + 2), st.integers(0, 2**33))
counts = st.one_of(st.integers(-2, 70000), st.integers(LIMIT - 2, LIMIT + 2))


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from("ugbx"), nsid=ids, hostid=ids, count=counts)
@example(kind="u", nsid=0, hostid=0, count=LIMIT)
@example(kind="u", nsid=1, hostid=0, count=LIMIT)
@example(kind="g", nsid=0, hostid=LIMIT, count=1)
@example(kind="b", nsid=LIMIT - 1, hostid=0, count=1)
def test_parse_accepts_exactly_the_ranges_below_2_32(kind: str, nsid: int, hostid: int, count: int) -> None:
    valid = kind in "ugb" and nsid >= 0 and hostid >= 0 and count > 0 and max(nsid, hostid) + count <= LIMIT
    try:
        entry = parse_idmap(f"{kind} {nsid} {hostid} {count}")
    except ValueError:
        assert not valid
        return
    assert valid
    assert entry == IdMapEntry(kind, nsid, hostid, count)
    assert entry.nsid + entry.count < MAX_ID and entry.hostid + entry.count < MAX_ID
    assert parse_idmap(f"{kind} {entry.line()}") == entry


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=40))
@example(text="u 0 0 ١")
@example(text="u 0 0 1_0")
def test_parse_refuses_only_with_value_error(text: str) -> None:
    try:
        entry = parse_idmap(text)
    except ValueError as err:
        assert type(err) is ValueError
        return
    assert entry.kind in ("u", "g", "b")
    assert min(entry.nsid, entry.hostid) >= 0 and entry.count > 0
    assert max(entry.nsid, entry.hostid) + entry.count < MAX_ID


entries = st.builds(
    IdMapEntry, st.sampled_from("ug"), st.integers(0, 5000), st.integers(0, 5000), st.integers(1, 300),
)


@settings(max_examples=200, deadline=None)
@given(entry=entries, probe=st.integers(-10, 6000))
def test_to_host_is_a_shift_within_the_range(entry: IdMapEntry, probe: int) -> None:
    mapped = entry.to_host(probe)
    if entry.nsid <= probe < entry.nsid + entry.count:
        assert mapped == probe - entry.nsid + entry.hostid
        assert entry.hostid <= mapped < entry.hostid + entry.count
    else:
        assert mapped is None


@settings(max_examples=100, deadline=None)
@given(entry=entries)
def test_to_host_is_one_to_one_onto_the_host_range(entry: IdMapEntry) -> None:
    inside = range(entry.nsid, entry.nsid + entry.count)
    image = [entry.to_host(n) for n in inside]
    assert image == list(range(entry.hostid, entry.hostid + entry.count))
    assert entry.to_host(entry.nsid - 1) is None and entry.to_host(entry.nsid + entry.count) is None


@settings(max_examples=200, deadline=None)
@given(mapping=st.lists(entries, max_size=6), kind=st.sampled_from("ug"), probe=st.integers(0, 5400))
def test_host_id_is_the_first_entry_that_maps(mapping: list[IdMapEntry], kind: str, probe: int) -> None:
    first = next((e for e in mapping if e.kind == kind and e.nsid <= probe < e.nsid + e.count), None)
    expected = None if first is None else first.hostid + probe - first.nsid
    assert host_id(mapping, kind, probe) == expected


def _ids(entry: IdMapEntry, side: str) -> set[int]:
    start = entry.nsid if side == "ns" else entry.hostid
    return set(range(start, start + entry.count))


small = st.builds(IdMapEntry, st.sampled_from("ug"), st.integers(0, 60), st.integers(0, 60), st.integers(1, 20))


@settings(max_examples=200, deadline=None)
@given(mapping=st.lists(small, max_size=5))
@example(mapping=[IdMapEntry("u", 0, 0, 10), IdMapEntry("u", 10, 10, 10)])
@example(mapping=[IdMapEntry("u", 10, 10, 10), IdMapEntry("u", 0, 0, 10)])
def test_overlaps_reports_exactly_the_intersecting_pairs(mapping: list[IdMapEntry]) -> None:
    expected = []
    for kind in ("u", "g"):
        mine = [e for e in mapping if e.kind == kind]
        for i, a in enumerate(mine):
            for b in mine[i + 1:]:
                if _ids(a, "ns") & _ids(b, "ns"):
                    expected.append(f"{kind} maps overlap inside the container: {a.line()} and {b.line()}")
                if _ids(a, "host") & _ids(b, "host"):
                    expected.append(f"{kind} maps overlap on the host: {a.line()} and {b.line()}")
    assert overlaps(mapping) == expected


@settings(max_examples=100, deadline=None)
@given(mapping=st.lists(small, max_size=5))
def test_a_map_without_overlaps_is_invertible(mapping: list[IdMapEntry]) -> None:
    """No overlap means each kind's map is one to one: no two container ids share a host id."""
    if overlaps(mapping):
        return
    for kind in ("u", "g"):
        seen: dict[int, int] = {}
        for nsid in range(0, 81):
            host = host_id(mapping, kind, nsid)
            if host is not None:
                assert seen.setdefault(host, nsid) == nsid


@settings(max_examples=100, deadline=None)
@given(mapping=st.lists(st.builds(IdMapEntry, st.sampled_from("ugb"), st.integers(0, 9), st.integers(0, 9),
                                  st.integers(1, 9)), max_size=8))
def test_expand_splits_both_into_a_uid_and_a_gid_range(mapping: list[IdMapEntry]) -> None:
    out = expand(mapping)
    assert all(e.kind in ("u", "g") for e in out)
    for kind in ("u", "g"):
        assert [e.line() for e in out if e.kind == kind] == [e.line() for e in mapping if e.kind in (kind, "b")]
    counts = {kind: sum(e.kind == kind for e in out) for kind in ("u", "g")}
    assert too_many(out) == [f"{kind} maps: {n} ranges, the kernel takes at most 340"
                             for kind, n in counts.items() if n > 340]
