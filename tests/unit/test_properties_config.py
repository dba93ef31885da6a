"""Properties of the LXC config reader and writer.

- what the writer writes reads back as written, for every key of the real registry and any value it
  accepts (odd whitespace, ``=``, ``#``, quotes, non-ASCII, empty values, repeated keys);
- no input whatever (text, bytes, includes) gives any exception but :class:`ConfigError`;
- ``lxc.include`` is bounded: loops, depth, file count and bytes are refused with their message.
"""

from __future__ import annotations

import functools
import os
import tempfile

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lxcframe.config.keys import KeyRegistry
from lxcframe.config.model import load_config, load_text
from lxcframe.config.parser import parse_line, read_entries, read_text
from lxcframe.config.writer import format_line, set_item
from lxcframe.errors import ConfigError
from lxcframe.input_limits import MAX_FILES_PER_LOAD, MAX_INCLUDE_DEPTH
from lxcframe.plugin_manager import Plugins


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A directory for the examples' own temporary directories (a function-scoped tmp_path would be
    shared by every example of a test)."""
    return str(tmp_path_factory.mktemp("examples"))


# What str.splitlines splits on: none of these may end up inside a written value.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


@functools.cache
def real_registry() -> KeyRegistry:
    return Plugins(environ={}).key_registry()


@functools.cache
def real_keys() -> tuple[tuple[str, bool], ...]:
    return tuple(sorted((spec.name, spec.multi) for spec in real_registry().specs()))


@st.composite
def registry_keys(draw: st.DrawFn) -> tuple[str, bool]:
    """A key of the real registry (patterns filled in) and whether it is repeatable."""
    name, multi = draw(st.sampled_from(real_keys()))
    name = name.replace("<N>", str(draw(st.integers(0, 12))))
    if name.endswith(".*"):
        rest = draw(st.lists(st.from_regex(r"[a-z0-9_-]{1,8}", fullmatch=True), min_size=1, max_size=3))
        name = name[:-1] + ".".join(rest)
    return name, multi


odd = st.sampled_from([" ", "  ", "\t", "=", "#", '"', "'", "\u00a0", "\u3000", "\u200b", "é", "☃", "\U0001f600",
                       "\x7f", "\x1f", "\\", "lxc.include = x", "key = value"])
# Anything a value may hold: every character but line breaks and NUL (surrogates cannot be written as UTF-8).
one_line_char = st.characters(blacklist_categories=("Cs",), blacklist_characters=LINE_BREAKS + "\0")
values = st.lists(st.one_of(odd, st.text(one_line_char, max_size=6)), max_size=5).map("".join)


# --- the writer's output reads back --------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(key=registry_keys(), value=values)
@example(key=("lxc.uts.name", False), value=" padded ")
@example(key=("lxc.uts.name", False), value='"quoted"')
@example(key=("lxc.uts.name", False), value="'")
@example(key=("lxc.environment", True), value="'A=1'")
@example(key=("lxc.uts.name", False), value='""')
@example(key=("lxc.uts.name", False), value="\u3000")
def test_a_formatted_line_parses_back(key: tuple[str, bool], value: str) -> None:
    name, _ = key
    line = format_line(name, value, path="/c/config")
    entry = parse_line(line, "/c/config", 1)
    assert entry is not None
    assert (entry.key, entry.value) == (name, value)


def apply(model: list[tuple[str, str]], key: str, value: str, multi: bool) -> list[tuple[str, str]]:
    """What ``set_item`` promises, on the file's (key, value) lines."""
    if value == "":
        return [(k, v) for k, v in model if k != key and not k.startswith(key + ".")]
    positions = [i for i, (k, _) in enumerate(model) if k == key]
    if multi:
        at = positions[-1] + 1 if positions else len(model)
        return [*model[:at], (key, value), *model[at:]]
    if positions:
        return [(key, value) if i == positions[0] else item for i, item in enumerate(model)
                if i not in positions[1:]]
    return [*model, (key, value)]


HEADER = "# Container c1\n\n  # indented comment\n"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.tuples(registry_keys(), st.one_of(st.just(""), values)), max_size=12))
def test_set_item_sequences_read_back(scratch: str, ops: list[tuple[tuple[str, bool], str]]) -> None:
    model: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        path = os.path.join(tmp, "config")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(HEADER)
        for (key, multi), value in ops:
            set_item(path, key, value, multi=multi)
            model = apply(model, key, value, multi)
        assert [(e.key, e.value) for e in read_entries(path)] == model
        with open(path, encoding="utf-8") as handle:
            assert handle.read().startswith(HEADER)


@settings(max_examples=200, deadline=None)
@given(key=st.text(max_size=12), value=st.text(max_size=12))
@example(key="lxc.uts.name", value="\ud800")
@example(key="lxc.uts.name", value="a\x00")
@example(key="lxc.uts.name\n", value="a")
def test_format_line_refuses_only_with_config_error(key: str, value: str) -> None:
    try:
        line = format_line(key, value, path="/c/config")
    except ConfigError as err:
        assert type(err) is ConfigError
        assert "\n" not in str(err)
        return
    entry = parse_line(line, "/c/config", 1)
    assert entry is not None
    assert (entry.key, entry.value) == (key, value)
    line.encode("utf-8")


@settings(max_examples=60, deadline=None)
@given(value=st.text(max_size=10), data=st.binary(max_size=40))
@example(value="\udcff", data=b"lxc.uts.name = a\n")
@example(value="x", data=b"lxc.uts.name = \xff\n")
@example(value="x", data=b"\x00")
def test_set_item_fails_only_with_config_error_and_leaves_the_file(scratch: str, value: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        path = os.path.join(tmp, "config")
        with open(path, "wb") as handle:
            handle.write(data)
        try:
            set_item(path, "lxc.uts.name", value, multi=False)
        except ConfigError:
            with open(path, "rb") as handle:
                assert handle.read() == data
        assert os.listdir(tmp) == ["config"]


# --- no input gives another exception ----------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
@example(text="lxc.uts.name = a\x00b")
@example(text="\ud800 = 1")
@example(text="lxc.uts.name = \udcff")
@example(text="lxc.net.0.type\r= veth")
@example(text="lxc.include =")
@example(text="lxc.include = /nonexistent-dir-x/")
@example(text="lxc.cgroup2.a b = 1")
@example(text="lxc.net.99999999999999999999.type = veth")
@example(text="lxc.idmap = u 0 99999999999999999999999 1")
@example(text="=" * 5000)
def test_any_text_gives_entries_or_a_config_error(text: str) -> None:
    try:
        entries = list(read_text(text, "/nonexistent/config"))
    except ConfigError:
        pass
    else:
        for entry in entries:
            assert entry.key == entry.key.strip()
            assert "\0" not in entry.value
    try:
        load_text(text, real_registry(), "/nonexistent/config")
    except ConfigError:
        pass


lines_of_bytes = st.lists(
    st.one_of(
        st.binary(max_size=30),
        st.sampled_from([b"lxc.uts.name = web", b"lxc.mount.entry = a b c d", b"lxc.net.0.type = veth",
                         b"lxc.idmap = u 0 100000 65536", b"# comment", b"", b"=", b"lxc.net =",
                         b"lxc.uts.name = \xff", b"\xef\xbb\xbflxc.uts.name = bom", b"lxc.a\x00 = 1",
                         b"lxc.include = loop.conf", b"lxc.include = missing.conf", b"lxc.include = d",
                         b"lxc.include = d/", b"lxc.include = config", b"x" * 3000]),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(lines=lines_of_bytes, separator=st.sampled_from([b"\n", b"\r\n", b"\r", b"\x00", b"\x85", b"\n\n"]))
@example(lines=[b"lxc.include = config"], separator=b"\n")
@example(lines=[b"lxc.uts.name = a", b"\x80"], separator=b"\r")
def test_any_file_gives_entries_or_a_config_error(scratch: str, lines: list[bytes], separator: bytes) -> None:
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        os.mkdir(os.path.join(tmp, "d"))
        with open(os.path.join(tmp, "d", "a.conf"), "wb") as handle:
            handle.write(b"lxc.include = ../loop.conf\n")
        with open(os.path.join(tmp, "loop.conf"), "wb") as handle:
            handle.write(b"lxc.include = d/a.conf\n")
        path = os.path.join(tmp, "config")
        with open(path, "wb") as handle:
            handle.write(separator.join(lines))
        try:
            list(read_entries(path))
        except ConfigError as err:
            assert type(err) is ConfigError
            assert "\n" not in str(err)
        try:
            load_config(path, real_registry())
        except ConfigError:
            pass


# --- lxc.include is bounded ----------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(graph=st.lists(st.lists(st.integers(0, 4), max_size=3), min_size=1, max_size=5))
@example(graph=[[0]])
@example(graph=[[1], [2], [1]])
@example(graph=[[1, 1], []])
def test_include_graphs_expand_or_stop_at_the_first_loop(scratch: str, graph: list[list[int]]) -> None:
    """File i holds ``lxc.file = i`` and includes the files ``graph[i]`` names (a missing one is empty)."""
    size = len(graph)
    graph = [[t % size for t in targets] for targets in graph]

    def expand(node: int, stack: tuple[int, ...]) -> list[str]:
        out = [str(node)]
        for target in graph[node]:
            if target in (*stack, node):
                raise LookupError((*stack, node, target))
            out += expand(target, (*stack, node))
        return out

    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        name = [os.path.join(tmp, f"f{i}.conf") for i in range(size)]
        for i, targets in enumerate(graph):
            with open(name[i], "w", encoding="utf-8") as handle:
                handle.write(f"lxc.file = {i}\n" + "".join(f"lxc.include = f{t}.conf\n" for t in targets))
        try:
            expected = expand(0, ())
        except LookupError as loop:
            chain = loop.args[0]
            try:
                list(read_entries(name[0]))
            except ConfigError as err:
                assert err.reason.endswith("include loop: " + " -> ".join(name[i] for i in chain))
            else:
                raise AssertionError("an include loop was read") from None
        else:
            assert [e.value for e in read_entries(name[0])] == expected


@settings(max_examples=12, deadline=None)
@given(depth=st.integers(MAX_INCLUDE_DEPTH - 3, MAX_INCLUDE_DEPTH + 3))
@example(depth=MAX_INCLUDE_DEPTH)
@example(depth=MAX_INCLUDE_DEPTH + 1)
def test_include_depth_is_bounded(scratch: str, depth: int) -> None:
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        for level in range(1, depth + 1):
            with open(os.path.join(tmp, f"l{level}.conf"), "w", encoding="utf-8") as handle:
                handle.write(f"lxc.include = l{level + 1}.conf\n" if level < depth else "lxc.deep = 1\n")
        main = os.path.join(tmp, "config")
        with open(main, "w", encoding="utf-8") as handle:
            handle.write("lxc.include = l1.conf\n")
        try:
            entries = list(read_entries(main))
        except ConfigError as err:
            assert depth > MAX_INCLUDE_DEPTH
            assert err.reason == (f"cannot include {tmp}/l{MAX_INCLUDE_DEPTH + 1}.conf: "
                                  f"includes nested deeper than {MAX_INCLUDE_DEPTH} levels")
        else:
            assert depth <= MAX_INCLUDE_DEPTH
            assert [(e.key, e.value) for e in entries] == [("lxc.deep", "1")]


@settings(max_examples=10, deadline=None)
@given(levels=st.integers(1, 10), fanout=st.integers(1, 4))
@example(levels=9, fanout=2)  # 1,023 files: just over
@example(levels=4, fanout=4)  # 341 files
def test_include_fan_out_is_bounded(scratch: str, levels: int, fanout: int) -> None:
    """Level i includes level i+1 ``fanout`` times: no loop, but ``fanout**levels`` files to read."""
    files = sum(fanout**i for i in range(levels + 1))
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        for level in range(levels + 1):
            with open(os.path.join(tmp, f"l{level}.conf"), "w", encoding="utf-8") as handle:
                handle.write(f"lxc.include = l{level + 1}.conf\n" * fanout if level < levels else "lxc.leaf = 1\n")
        try:
            entries = list(read_entries(os.path.join(tmp, "l0.conf")))
        except ConfigError as err:
            assert files > MAX_FILES_PER_LOAD
            assert err.reason.endswith(f": more than {MAX_FILES_PER_LOAD} files in one config load")
        else:
            assert files <= MAX_FILES_PER_LOAD
            assert len(entries) == fanout**levels
