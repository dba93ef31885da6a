"""Writing keys back (lxcframe.config.writer): comments, order and mode kept; one line per entry."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from lxcframe.config.parser import read_entries
from lxcframe.config.writer import format_line, set_item
from lxcframe.errors import ConfigError

ORIGINAL = """\
# Template comment
lxc.uts.name = web01

# network
lxc.net.0.type = veth
lxc.mount.entry = proc proc proc nodev 0 0
lxc.mount.entry = sysfs sys sysfs ro 0 0
lxc.net.0.link = br0
"""


def config(tmp_path: Path, text: str = ORIGINAL) -> Path:
    path = tmp_path / "config"
    path.write_text(text, encoding="utf-8")
    return path


def test_single_key_replaced_in_place(tmp_path: Path) -> None:
    path = config(tmp_path)
    set_item(str(path), "lxc.uts.name", "web02", multi=False)
    assert path.read_text() == ORIGINAL.replace("web01", "web02")


def test_single_key_later_duplicates_dropped(tmp_path: Path) -> None:
    path = config(tmp_path, "lxc.a = 1\n# keep\nlxc.a = 2\nlxc.b = x\n  lxc.a=3\n")
    set_item(str(path), "lxc.a", "new", multi=False)
    assert path.read_text() == "lxc.a = new\n# keep\nlxc.b = x\n"


def test_single_key_missing_is_appended(tmp_path: Path) -> None:
    path = config(tmp_path)
    set_item(str(path), "lxc.pty.max", "5", multi=False)
    assert path.read_text() == ORIGINAL + "lxc.pty.max = 5\n"


def test_keys_below_are_not_the_key(tmp_path: Path) -> None:
    path = config(tmp_path, "lxc.net.0.type = veth\nlxc.net.0 = \nlxc.net.0x = y\n")
    set_item(str(path), "lxc.net", "z", multi=False)
    assert path.read_text() == "lxc.net.0.type = veth\nlxc.net.0 = \nlxc.net.0x = y\nlxc.net = z\n"
    path = config(tmp_path, "lxc.a.b = 1\nlxc.a = 2\nlxc.a.c = 3\n")
    set_item(str(path), "lxc.a", "4", multi=False)
    assert path.read_text() == "lxc.a.b = 1\nlxc.a = 4\nlxc.a.c = 3\n"


def test_multi_key_added_after_its_last_line(tmp_path: Path) -> None:
    path = config(tmp_path)
    set_item(str(path), "lxc.mount.entry", "tmpfs tmp tmpfs defaults 0 0", multi=True)
    assert path.read_text() == ORIGINAL.replace(
        "sysfs sys sysfs ro 0 0\n", "sysfs sys sysfs ro 0 0\nlxc.mount.entry = tmpfs tmp tmpfs defaults 0 0\n"
    )


def test_multi_key_ignores_keys_below_it(tmp_path: Path) -> None:
    path = config(tmp_path, "lxc.a = 1\nlxc.a.b = 2\n# end\n")
    set_item(str(path), "lxc.a", "3", multi=True)
    assert path.read_text() == "lxc.a = 1\nlxc.a = 3\nlxc.a.b = 2\n# end\n"


def test_multi_key_missing_is_appended(tmp_path: Path) -> None:
    path = config(tmp_path, "# only a comment\nlxc.a.b = 1\n")
    set_item(str(path), "lxc.a", "1", multi=True)
    assert path.read_text() == "# only a comment\nlxc.a.b = 1\nlxc.a = 1\n"


@pytest.mark.parametrize("multi", [False, True])
def test_empty_value_removes_the_key_and_everything_below(tmp_path: Path, multi: bool) -> None:
    path = config(tmp_path, "# c\nlxc.net.0.type = veth\nlxc.net.1.type = veth\nlxc.net = \nlxc.netx = 1\n"
                            "lxc.net.0.ipv4.address = 192.0.2.1/24\n")
    set_item(str(path), "lxc.net", "", multi=multi)
    assert path.read_text() == "# c\nlxc.netx = 1\n"


def test_empty_value_of_a_key_not_present_changes_nothing(tmp_path: Path) -> None:
    path = config(tmp_path)
    set_item(str(path), "lxc.cap.drop", "", multi=True)
    assert path.read_text() == ORIGINAL


def test_missing_file_is_created_with_mode_0640(tmp_path: Path) -> None:
    path = tmp_path / "config"
    set_item(str(path), "lxc.uts.name", "new", multi=False)
    assert path.read_text() == "lxc.uts.name = new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    empty = tmp_path / "empty"
    set_item(str(empty), "lxc.uts.name", "", multi=False)
    assert empty.read_text() == ""


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o400, 0o2640])
def test_mode_is_kept_and_no_temporary_file_is_left(tmp_path: Path, mode: int) -> None:
    path = config(tmp_path)
    path.chmod(mode)
    set_item(str(path), "lxc.uts.name", "web02", multi=False)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert os.listdir(tmp_path) == ["config"]


def test_relative_path_is_written_next_to_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    set_item("config", "lxc.a", "1", multi=False)
    assert (tmp_path / "sub" / "config").read_text() == "lxc.a = 1\n"
    assert os.listdir(tmp_path / "sub") == ["config"]


def test_symlinked_config_is_replaced_by_a_file(tmp_path: Path) -> None:
    target = config(tmp_path)
    link = tmp_path / "link"
    os.symlink(target, link)
    set_item(str(link), "lxc.uts.name", "web02", multi=False)
    assert not link.is_symlink()
    assert link.read_text() == ORIGINAL.replace("web01", "web02")
    assert target.read_text() == ORIGINAL


def test_missing_final_newline_is_added(tmp_path: Path) -> None:
    path = config(tmp_path, "# x\nlxc.a = 1")
    set_item(str(path), "lxc.b", "2", multi=False)
    assert path.read_text() == "# x\nlxc.a = 1\nlxc.b = 2\n"


def test_crlf_lines_are_written_back_as_lf(tmp_path: Path) -> None:
    path = config(tmp_path, "lxc.a = 1\r\nlxc.b = 2\r\n")
    set_item(str(path), "lxc.b", "3", multi=False)
    assert path.read_bytes() == b"lxc.a = 1\nlxc.b = 3\n"


def test_written_lines_read_back(tmp_path: Path) -> None:
    path = config(tmp_path, "")
    set_item(str(path), "lxc.environment", "PATH=/bin # x", multi=True)
    set_item(str(path), "lxc.environment", "B=", multi=True)
    assert [(e.key, e.value) for e in read_entries(str(path))] == [
        ("lxc.environment", "PATH=/bin # x"), ("lxc.environment", "B="),
    ]


@pytest.mark.parametrize("value", ["a\nlxc.hook.start = /evil", "a\rb", "a\u2028b", "a\n", "a\x00b"])
def test_value_spanning_lines_is_refused_and_nothing_written(tmp_path: Path, value: str) -> None:
    path = config(tmp_path)
    with pytest.raises(ConfigError) as caught:
        set_item(str(path), "lxc.init.cmd", value, multi=False)
    assert str(caught.value) == (f"{path}: lxc.init.cmd = {value!r}: "
                                 "a config value must fit on one line (no line break or NUL)")
    assert path.read_text() == ORIGINAL
    assert os.listdir(tmp_path) == ["config"]


def test_malformed_key_is_refused(tmp_path: Path) -> None:
    path = config(tmp_path)
    with pytest.raises(ConfigError) as caught:
        set_item(str(path), "lxc.a\nlxc.hook.start", "x", multi=False)
    assert str(caught.value) == f"{path}: malformed key 'lxc.a\\nlxc.hook.start'"
    assert path.read_text() == ORIGINAL


def test_a_broken_line_in_the_file_is_reported_with_its_number(tmp_path: Path) -> None:
    path = config(tmp_path, "lxc.a = 1\n# c\nbroken\n")
    with pytest.raises(ConfigError) as caught:
        set_item(str(path), "lxc.a", "2", multi=False)
    assert str(caught.value) == f"{path}:3: broken: expected 'key = value'"
    assert path.read_text() == "lxc.a = 1\n# c\nbroken\n"


@pytest.mark.parametrize(
    ("value", "line"),
    [
        (" padded ", '" padded "'),
        ("\tlead", '"\tlead"'),
        ("trail\u3000", '"trail\u3000"'),
        ('"quoted"', '""quoted""'),
        ("'single'", "\"'single'\""),
        ('""', '""""'),
        ("'", "'"),
        ('"a\'', '"a\''),
        ('a "b" c', 'a "b" c'),
        ("x = y # z", "x = y # z"),
    ],
)
def test_a_value_the_reader_would_change_is_quoted(tmp_path: Path, value: str, line: str) -> None:
    assert format_line("lxc.uts.name", value, path="/c/config") == f"lxc.uts.name = {line}"
    path = config(tmp_path, "lxc.uts.name = old\n")
    set_item(str(path), "lxc.uts.name", value, multi=False)
    assert path.read_text() == f"lxc.uts.name = {line}\n"
    assert [(e.key, e.value) for e in read_entries(str(path))] == [("lxc.uts.name", value)]


def test_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_bytes(b"# caf\xe9\nlxc.a = 1\n")
    with pytest.raises(ConfigError) as caught:
        set_item(str(path), "lxc.a", "2", multi=False)
    assert str(caught.value) == f"{path}: not UTF-8 text (invalid continuation byte at byte 5)"
    assert path.read_bytes() == b"# caf\xe9\nlxc.a = 1\n"


def test_non_ascii_is_written_as_utf8(tmp_path: Path) -> None:
    path = config(tmp_path, "# café\n")
    set_item(str(path), "lxc.uts.name", "☃", multi=False)
    assert path.read_bytes() == "# café\nlxc.uts.name = ☃\n".encode()


def test_lone_surrogate_is_refused_and_nothing_written(tmp_path: Path) -> None:
    path = config(tmp_path)
    with pytest.raises(ConfigError) as caught:
        set_item(str(path), "lxc.uts.name", "web\udcff", multi=False)
    assert str(caught.value) == f"{path}: lxc.uts.name = 'web\\udcff': a config value must be UTF-8 text"
    assert path.read_text() == ORIGINAL
    assert os.listdir(tmp_path) == ["config"]


def test_temporary_file_is_made_next_to_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Not in TMPDIR: the rename over the config must stay on the config's own filesystem.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-tmpdir"))
    path = config(tmp_path)
    set_item(str(path), "lxc.uts.name", "web02", multi=False)
    assert path.read_text() == ORIGINAL.replace("web01", "web02")


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    # The rename onto "config/" fails (a file is not a directory) after the temporary file is written.
    with pytest.raises(NotADirectoryError):
        set_item(str(tmp_path / "config") + "/", "lxc.a", "1", multi=False)
    assert os.listdir(tmp_path) == []


def test_format_line() -> None:
    assert format_line("lxc.uts.name", "web", path="/c/config") == "lxc.uts.name = web"
    assert format_line("lxc.a", "", path="/c/config") == "lxc.a = "
    with pytest.raises(ConfigError) as caught:
        format_line("lxc.a", "x\ny", path="/c/config")
    assert str(caught.value) == "/c/config: lxc.a = 'x\\ny': a config value must fit on one line (no line break or NUL)"
