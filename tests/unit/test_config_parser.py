"""LXC config syntax (lxcframe.config.parser): lines, quoting, checks, includes and their bounds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lxcframe.config.parser import RawEntry, check_entry, parse_line, read_entries, read_text
from lxcframe.errors import ConfigError
from lxcframe.input_limits import MAX_BYTES_PER_LOAD, MAX_FILE_BYTES, MAX_FILES_PER_LOAD, MAX_INCLUDE_DEPTH


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def pairs(entries: object) -> list[tuple[str, str]]:
    return [(e.key, e.value) for e in entries]  # type: ignore[attr-defined]


def error_of(path: Path | str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        list(read_entries(str(path)))
    assert type(caught.value) is ConfigError
    return caught.value


# --- parse_line ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("lxc.uts.name = web01", "lxc.uts.name", "web01"),
        ("lxc.uts.name=web01", "lxc.uts.name", "web01"),
        ("  lxc.uts.name \t=\t web01 \t", "lxc.uts.name", "web01"),
        ("lxc.uts.name =", "lxc.uts.name", ""),
        ("lxc.environment = A=b=c", "lxc.environment", "A=b=c"),
        ("lxc.uts.name = web # not a comment", "lxc.uts.name", "web # not a comment"),
        ('lxc.uts.name = "a b"', "lxc.uts.name", "a b"),
        ("lxc.uts.name = 'a b'", "lxc.uts.name", "a b"),
        ('lxc.uts.name = ""', "lxc.uts.name", ""),
        ("lxc.uts.name = ''", "lxc.uts.name", ""),
        ('lxc.uts.name = " padded "', "lxc.uts.name", " padded "),
        ('lxc.uts.name = "a\'', "lxc.uts.name", "\"a'"),
        ('lxc.uts.name = "', "lxc.uts.name", '"'),
        ("lxc.uts.name = '", "lxc.uts.name", "'"),
        ('lxc.uts.name = a"b"', "lxc.uts.name", 'a"b"'),
        ('lxc.uts.name = "a"b', "lxc.uts.name", '"a"b'),
        ('lxc.uts.name = ""x""', "lxc.uts.name", '"x"'),
        ("lxc.uts.name = XaX", "lxc.uts.name", "XaX"),
        ("lxc.uts.name = aa", "lxc.uts.name", "aa"),
        ("_ = x", "_", "x"),
        ("0 = x", "0", "x"),
        ("a-b.c_d.E9 = x", "a-b.c_d.E9", "x"),
        ("a..b- = x", "a..b-", "x"),
    ],
)
def test_parse_line(text: str, key: str, value: str) -> None:
    entry = parse_line(text, "/c/config", 12)
    assert entry == RawEntry(key=key, value=value, path="/c/config", line=12)


@pytest.mark.parametrize("text", ["", "   ", "\t", "# comment", "   # indented comment", "#lxc.uts.name = x", "#"])
def test_blank_lines_and_comments(text: str) -> None:
    assert parse_line(text, "/c/config", 1) is None


@pytest.mark.parametrize(("text", "key"), [("lxc.uts.name", "lxc.uts.name"), ("  just words  ", "just words")])
def test_line_without_equals(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_line(text, "/c/config", 3)
    err = caught.value
    assert str(err) == f"/c/config:3: {key}: expected 'key = value'"
    assert (err.path, err.line, err.key, err.value, err.reason) == ("/c/config", 3, key, None,
                                                                     "expected 'key = value'")


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("= value", "", "value"),
        (".lxc = x", ".lxc", "x"),
        ("-a = x", "-a", "x"),
        ("lxc uts = x", "lxc uts", "x"),
        ("lxc/uts = x ", "lxc/uts", "x"),
        ("lxç = x", "lxç", "x"),
        ("lxc.a\x00 = x", "lxc.a\x00", "x"),
    ],
)
def test_malformed_key(text: str, key: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_line(text, "/c/config", 4)
    err = caught.value
    assert err.reason == "malformed key"
    assert (err.path, err.line, err.key, err.value) == ("/c/config", 4, key, value)


# --- check_entry / RawEntry ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "x", "a b\tc", " lead", "trail ", "#", "=", "é ☃ \U0001f600", "\x7f"])
def test_check_entry_accepts_one_line_values(value: str) -> None:
    check_entry("lxc.uts.name", value)
    assert RawEntry("lxc.uts.name", value, "<override>", 1).value == value


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\r\n", "\n", "a\x0bb", "a\x0cb", "a\x1cb", "a\x1db", "a\x1eb",
                                   "a\x85b", "a\u2028b", "a\u2029b", "a\x00b", "\x00"])
def test_check_entry_refuses_line_breaks_and_nul(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_entry("lxc.init.cmd", value, path="/c/config", line=5)
    err = caught.value
    assert err.reason == "a config value must fit on one line (no line break or NUL)"
    assert (err.path, err.line, err.key, err.value) == ("/c/config", 5, "lxc.init.cmd", value)
    with pytest.raises(ConfigError) as caught:
        RawEntry("lxc.init.cmd", value, "<override>", 3)
    assert str(caught.value) == f"<override>:3: lxc.init.cmd = {value!r}: " + err.reason


@pytest.mark.parametrize("value", ["\udcff", "a\ud800b", "\udfff"])
def test_check_entry_refuses_lone_surrogates(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_entry("lxc.uts.name", value, path="/c/config", line=5)
    err = caught.value
    assert str(err) == f"/c/config:5: lxc.uts.name = {value!r}: a config value must be UTF-8 text"
    assert (err.path, err.line, err.key, err.value) == ("/c/config", 5, "lxc.uts.name", value)
    with pytest.raises(ConfigError) as caught:
        list(read_text(f"lxc.uts.name = {value}\n", "/c/config"))
    assert str(caught.value) == f"/c/config:1: lxc.uts.name = {value!r}: a config value must be UTF-8 text"


@pytest.mark.parametrize("key", ["", "lxc.a\n", "lxc.a\nlxc.hook.start", " lxc.a", "lxc.a ", "a=b", ".a", "-a",
                                 "lxc.\u00e9", "lxc.a\x00"])
def test_check_entry_refuses_malformed_keys(key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_entry(key, "v", path="/c/config", line=2)
    err = caught.value
    assert err.reason == f"malformed key {key!r}"
    assert (err.path, err.line, err.key, err.value) == ("/c/config", 2, None, None)
    assert "\n" not in str(err)
    with pytest.raises(ConfigError) as caught:
        RawEntry(key, "v", "/c/inc.conf", 8)
    assert str(caught.value) == f"/c/inc.conf:8: malformed key {key!r}"


def test_check_entry_without_location() -> None:
    with pytest.raises(ConfigError) as caught:
        check_entry("lxc.a", "x\ny")
    assert str(caught.value) == "lxc.a = 'x\\ny': a config value must fit on one line (no line break or NUL)"


# --- reading files ---------------------------------------------------------------------------------------


def test_read_entries_locates_each_entry(tmp_path: Path) -> None:
    config = write(tmp_path / "config", "# head\n\nlxc.uts.name = a\n  \nlxc.mount.entry = x y z w\r\nlxc.a=\n")
    assert list(read_entries(str(config))) == [
        RawEntry("lxc.uts.name", "a", str(config), 3),
        RawEntry("lxc.mount.entry", "x y z w", str(config), 5),
        RawEntry("lxc.a", "", str(config), 6),
    ]


def test_relative_config_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "config", "lxc.uts.name = a\n")
    monkeypatch.chdir(tmp_path)
    assert [e.path for e in read_entries("config")] == [str(tmp_path / "config")]
    err = error_of("missing")
    assert str(err) == f"{tmp_path / 'missing'}: no such file"
    assert (err.path, err.line, err.key) == (str(tmp_path / "missing"), None, None)


def test_read_text(tmp_path: Path) -> None:
    assert list(read_text("a = 1\n# c\nb = 2")) == [
        RawEntry("a", "1", "<string>", 1), RawEntry("b", "2", "<string>", 3),
    ]
    assert list(read_text("")) == []
    with pytest.raises(ConfigError) as caught:
        list(read_text("ok = 1\nbad line\n", "/c/config"))
    assert str(caught.value) == "/c/config:2: bad line: expected 'key = value'"


def test_read_text_includes_relative_to_its_path(tmp_path: Path) -> None:
    write(tmp_path / "inc.conf", "lxc.uts.name = inc\n")
    assert pairs(read_text("lxc.include = inc.conf\n", str(tmp_path / "config"))) == [("lxc.uts.name", "inc")]


def test_read_text_under_a_file_name_cannot_include_that_file(tmp_path: Path) -> None:
    path = write(tmp_path / "config", "lxc.uts.name = from-disk\n")
    with pytest.raises(ConfigError) as caught:
        list(read_text("lxc.include = config\n", str(path)))
    assert str(caught.value) == (f"{path}:1: lxc.include = 'config': cannot include {path}: "
                                 f"include loop: {path} -> {path}")


def test_include_file_expands_in_place(tmp_path: Path) -> None:
    inc = write(tmp_path / "common.conf", "lxc.b = 2\nlxc.c = 3\n")
    main = write(tmp_path / "config", f"lxc.a = 1\nlxc.include = {inc}\nlxc.d = 4\n")
    assert [(e.key, e.value, e.path, e.line) for e in read_entries(str(main))] == [
        ("lxc.a", "1", str(main), 1),
        ("lxc.b", "2", str(inc), 1),
        ("lxc.c", "3", str(inc), 2),
        ("lxc.d", "4", str(main), 3),
    ]


def test_include_is_relative_to_the_including_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "sub" / "inc.conf", "lxc.a = sub\n")
    write(tmp_path / "inc.conf", "lxc.a = top\n")
    main = write(tmp_path / "sub" / "config", "lxc.include = inc.conf\n")
    monkeypatch.chdir(tmp_path)
    assert pairs(read_entries(str(main))) == [("lxc.a", "sub")]
    assert pairs(read_entries("sub/config")) == [("lxc.a", "sub")]


def test_include_directory_reads_conf_files_sorted(tmp_path: Path) -> None:
    write(tmp_path / "d" / "20-b.conf", "lxc.b = 2\n")
    write(tmp_path / "d" / "10-a.conf", "lxc.a = 1\n")
    write(tmp_path / "d" / "30-c.conf.bak", "lxc.c = 3\n")
    write(tmp_path / "d" / "README", "not a config\n")
    for target in ("d", "d/", str(tmp_path / "d")):
        main = write(tmp_path / "config", f"lxc.include = {target}\nlxc.z = 9\n")
        assert pairs(read_entries(str(main))) == [("lxc.a", "1"), ("lxc.b", "2"), ("lxc.z", "9")]


def test_include_of_a_missing_directory_with_slash_adds_nothing(tmp_path: Path) -> None:
    main = write(tmp_path / "config", "lxc.include = missing.d/\nlxc.include = /nonexistent-dir-x/\nlxc.a = 1\n")
    assert pairs(read_entries(str(main))) == [("lxc.a", "1")]


def test_include_of_a_file_with_trailing_slash_is_an_error(tmp_path: Path) -> None:
    inc = write(tmp_path / "inc.conf", "lxc.a = 1\n")
    main = write(tmp_path / "config", "lxc.include = inc.conf/\n")
    err = error_of(main)
    assert str(err) == f"{main}:1: lxc.include = 'inc.conf/': cannot include {inc}/: Not a directory"


def test_include_of_a_dangling_link_with_trailing_slash_is_an_error(tmp_path: Path) -> None:
    os.symlink(tmp_path / "nowhere", tmp_path / "link")
    main = write(tmp_path / "config", "lxc.include = link/\n")
    err = error_of(main)
    assert str(err) == f"{main}:1: lxc.include = 'link/': cannot include {tmp_path}/link/: no such file"


def test_include_needs_a_path(tmp_path: Path) -> None:
    main = write(tmp_path / "config", "lxc.a = 1\nlxc.include =\n")
    err = error_of(main)
    assert str(err) == f"{main}:2: lxc.include = '': include needs a path"
    assert (err.path, err.line, err.key, err.value) == (str(main), 2, "lxc.include", "")


def test_missing_include_names_the_including_line(tmp_path: Path) -> None:
    main = write(tmp_path / "config", "\nlxc.include = nope.conf\n")
    err = error_of(main)
    assert str(err) == f"{main}:2: lxc.include = 'nope.conf': cannot include {tmp_path}/nope.conf: no such file"
    assert (err.path, err.line, err.key, err.value) == (str(main), 2, "lxc.include", "nope.conf")
    assert err.reason == f"cannot include {tmp_path}/nope.conf: no such file"


def test_nested_include_error_names_the_innermost_include(tmp_path: Path) -> None:
    inner = write(tmp_path / "a.conf", "lxc.x = 1\nlxc.include = b.conf\n")
    main = write(tmp_path / "config", "lxc.include = a.conf\n")
    err = error_of(main)
    assert str(err) == f"{inner}:2: lxc.include = 'b.conf': cannot include {tmp_path}/b.conf: no such file"


def test_include_loop_names_the_chain(tmp_path: Path) -> None:
    a = write(tmp_path / "a.conf", "lxc.include = b.conf\n")
    b = write(tmp_path / "b.conf", "lxc.x = 1\nlxc.include = a.conf\n")
    main = write(tmp_path / "config", "lxc.include = a.conf\n")
    err = error_of(main)
    assert str(err) == (f"{b}:2: lxc.include = 'a.conf': cannot include {a}: "
                        f"include loop: {main} -> {a} -> {b} -> {a}")


def test_include_loop_through_a_symlink(tmp_path: Path) -> None:
    main = write(tmp_path / "config", "lxc.include = alias.conf\n")
    os.symlink(main, tmp_path / "alias.conf")
    err = error_of(main)
    assert err.reason == f"cannot include {tmp_path}/alias.conf: include loop: {main} -> {main}"


def test_same_file_twice_is_not_a_loop(tmp_path: Path) -> None:
    write(tmp_path / "inc.conf", "lxc.a = 1\n")
    main = write(tmp_path / "config", "lxc.include = inc.conf\nlxc.include = inc.conf\n")
    assert pairs(read_entries(str(main))) == [("lxc.a", "1"), ("lxc.a", "1")]


def chain(tmp_path: Path, levels: int) -> Path:
    """config -> l1.conf -> ... -> l<levels>.conf, the last one holding ``lxc.deep = <levels>``."""
    for level in range(1, levels + 1):
        last = level == levels
        write(tmp_path / f"l{level}.conf", f"lxc.deep = {level}\n" if last else f"lxc.include = l{level + 1}.conf\n")
    return write(tmp_path / "config", "lxc.include = l1.conf\n")


def test_include_depth_limit(tmp_path: Path) -> None:
    assert MAX_INCLUDE_DEPTH == 64
    main = chain(tmp_path, 64)
    assert pairs(read_entries(str(main))) == [("lxc.deep", "64")]
    main = chain(tmp_path, 65)
    err = error_of(main)
    assert str(err) == (f"{tmp_path}/l64.conf:1: lxc.include = 'l65.conf': cannot include {tmp_path}/l65.conf: "
                        "includes nested deeper than 64 levels")


def test_files_per_load_limit(tmp_path: Path) -> None:
    assert MAX_FILES_PER_LOAD == 1000
    write(tmp_path / "one.conf", "lxc.a = 1\n")
    # The config itself counts: with 999 includes it is 1,000 files.
    main = write(tmp_path / "config", "lxc.include = one.conf\n" * 999)
    assert len(list(read_entries(str(main)))) == 999
    main = write(tmp_path / "config", "lxc.include = one.conf\n" * 1000)
    err = error_of(main)
    assert str(err) == (f"{main}:1000: lxc.include = 'one.conf': cannot include {tmp_path}/one.conf: "
                        "more than 1000 files in one config load")


def test_bytes_per_load_limit(tmp_path: Path) -> None:
    assert (MAX_BYTES_PER_LOAD, MAX_FILE_BYTES) == (16 << 20, 1 << 20)
    # 16 includes of a 1 MiB file plus the config's own bytes: exactly the cap, then one byte over.
    head = "lxc.include = big.conf\n" * 16
    filler = "#" * 199 + "\n"
    big = ("lxc.a = 1\n" + filler * ((MAX_FILE_BYTES - 10) // 200)).ljust(MAX_FILE_BYTES - len(head) // 16, "#")
    write(tmp_path / "big.conf", big)
    assert len(big) * 16 + len(head) == MAX_BYTES_PER_LOAD
    main = write(tmp_path / "config", head)
    assert len(list(read_entries(str(main)))) == 16
    main = write(tmp_path / "config", head + "#")
    err = error_of(main)
    assert str(err) == (f"{main}:16: lxc.include = 'big.conf': cannot include {tmp_path}/big.conf: "
                        f"more than {16 << 20} bytes in one config load")


def test_top_level_file_over_the_file_cap(tmp_path: Path) -> None:
    main = write(tmp_path / "config", b"#" * (MAX_FILE_BYTES + 1))
    assert str(error_of(main)) == f"{main}: larger than 1048576 bytes"


def test_included_file_with_too_many_lines(tmp_path: Path) -> None:
    write(tmp_path / "inc.conf", "\n" * 10_001)
    main = write(tmp_path / "config", "lxc.include = inc.conf\n")
    assert error_of(main).reason == f"cannot include {tmp_path}/inc.conf: more than 10000 lines"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"lxc.a = \xff\n", "not UTF-8 text (invalid start byte at byte 8)"),
        (b"lxc.a = \xc3\n", "not UTF-8 text (invalid continuation byte at byte 8)"),
        (b"lxc.a = \xed\xa0\x80\n", "not UTF-8 text (invalid continuation byte at byte 8)"),
        (b"lxc.a = x\xe2\x82", "not UTF-8 text (unexpected end of data at byte 9)"),
    ],
)
def test_not_utf8(tmp_path: Path, data: bytes, message: str) -> None:
    main = write(tmp_path / "config", data)
    assert str(error_of(main)) == f"{main}: {message}"
    write(tmp_path / "inc.conf", data)
    main = write(tmp_path / "config", "lxc.include = inc.conf\n")
    assert error_of(main).reason == f"cannot include {tmp_path}/inc.conf: {message}"


def test_an_unreadable_file(tmp_path: Path) -> None:
    # A write-only sysctl: procfs refuses to open it for reading, even to root (reading does nothing).
    unreadable = "/proc/sys/vm/drop_caches"
    assert str(error_of(unreadable)) == f"{unreadable}: permission denied"
    main = write(tmp_path / "config", f"# x\nlxc.include = {unreadable}\n")
    err = error_of(main)
    assert str(err) == f"{main}:2: lxc.include = '{unreadable}': cannot include {unreadable}: permission denied"


def test_error_in_a_directory_member_names_the_including_line(tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.conf", b"\xff")
    main = write(tmp_path / "config", "lxc.include = d\n")
    err = error_of(main)
    assert str(err) == (f"{main}:1: lxc.include = 'd': cannot include {tmp_path}/d/a.conf: "
                        "not UTF-8 text (invalid start byte at byte 0)")


def test_directory_or_fifo_instead_of_a_file(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    assert str(error_of(tmp_path / "dir")) == f"{tmp_path}/dir: is a directory, not a regular file"
    os.mkfifo(tmp_path / "fifo")
    main = write(tmp_path / "config", "lxc.include = fifo\n")
    assert error_of(main).reason == f"cannot include {tmp_path}/fifo: is a FIFO, not a regular file"


def test_path_through_a_file(tmp_path: Path) -> None:
    write(tmp_path / "file", "")
    main = write(tmp_path / "config", "lxc.include = file/x.conf\n")
    assert error_of(main).reason == f"cannot include {tmp_path}/file/x.conf: Not a directory"
    assert str(error_of(tmp_path / "file" / "config")) == f"{tmp_path}/file/config: Not a directory"


def test_errors_in_an_included_file_name_that_file(tmp_path: Path) -> None:
    inc = write(tmp_path / "inc.conf", "lxc.a = 1\n\nno equals here\n")
    main = write(tmp_path / "config", "lxc.include = inc.conf\n")
    err = error_of(main)
    assert str(err) == f"{inc}:3: no equals here: expected 'key = value'"
