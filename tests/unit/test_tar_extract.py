"""Unpacking rootfs archives: small archives built in memory, unpacked into tmp_path, and exactly what
lands there (content, type, mode, owner, mtime) and what is refused, with the one-line error.

Every symlink or hard link a test plants points into tmp_path, so even a broken extractor that followed
it would write nowhere else.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import subprocess
import tarfile
import threading
from collections.abc import Iterable
from pathlib import Path

import pytest

from lxcframe.tar_extract import ArchiveError, extract_archive

ROOT = os.geteuid() == 0
MTIME = 1_500_000_000

Member = tuple[tarfile.TarInfo, bytes | None]


def info(name: str, kind: bytes = tarfile.REGTYPE, *, mode: int = 0o644, uid: int = 1234, gid: int = 2345,
         mtime: int = MTIME, linkname: str = "", size: int = 0) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.mode = mode
    member.uid, member.gid = uid, gid
    member.mtime = mtime
    member.linkname = linkname
    member.size = size
    return member


def reg(name: str, data: bytes = b"", **kwargs: int) -> Member:
    return info(name, size=len(data), **kwargs), data


def dir_(name: str, mode: int = 0o755, **kwargs: int) -> Member:
    return info(name, tarfile.DIRTYPE, mode=mode, **kwargs), None


def sym(name: str, target: str, **kwargs: int) -> Member:
    return info(name, tarfile.SYMTYPE, mode=0o777, linkname=target, **kwargs), None


def hard(name: str, target: str) -> Member:
    return info(name, tarfile.LNKTYPE, linkname=target), None


def tar_bytes(members: Iterable[Member], fmt: int = tarfile.GNU_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
        for member, data in members:
            archive.addfile(member, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the rootfs that no extraction may touch."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret").write_bytes(b"host data")
    return path


def extract(tmp_path: Path, root: Path, payload: bytes, name: str = "a.tar") -> str:
    source = tmp_path / name
    source.write_bytes(payload)
    extract_archive(str(source), str(root))
    return str(source)


def refused(tmp_path: Path, root: Path, payload: bytes, name: str = "a.tar") -> str:
    source = tmp_path / name
    source.write_bytes(payload)
    with pytest.raises(ArchiveError) as caught:
        extract_archive(str(source), str(root))
    return str(caught.value).replace(str(source), "SRC")


def tree(root: Path) -> dict[str, str]:
    """Every entry below ``root``: a directory as "dir", a symlink as "-> target", a file by its content."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                found[rel] = "-> " + os.readlink(path)
            elif os.path.isdir(path):
                found[rel] = "dir"
            elif stat.S_ISREG(os.lstat(path).st_mode):
                found[rel] = Path(path).read_bytes().decode()
            else:
                found[rel] = "special"
    return found


def owner(path: Path, uid: int = 1234, gid: int = 2345) -> tuple[int, int]:
    """The owner an extracted entry must have: the member's as root, the caller's otherwise."""
    return (uid, gid) if ROOT else (os.getuid(), os.getgid())


def lowner(path: Path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid


def assert_outside_untouched(outside: Path) -> None:
    assert sorted(os.listdir(outside)) == ["secret"]
    assert (outside / "secret").read_bytes() == b"host data"
    assert not (outside / "secret").is_symlink()


# --- what lands --------------------------------------------------------------------------------------


def test_files_directories_and_links_with_their_metadata(tmp_path: Path, root: Path) -> None:
    extract(tmp_path, root, tar_bytes([
        dir_("etc", 0o750, mtime=MTIME + 1),
        reg("etc/hostname", b"box\n", mode=0o640),
        reg("bin/su", b"#!", mode=0o4755, uid=0, gid=0),
        reg("usr/bin/wall", b"w", mode=0o2755),
        dir_("tmp", 0o1777),
        sym("bin/sh", "busybox", mtime=MTIME + 2),
        hard("etc/hosts", "etc/hostname"),
        reg("empty"),
    ]))
    assert tree(root) == {"etc": "dir", "etc/hostname": "box\n", "etc/hosts": "box\n", "bin": "dir",
                          "bin/su": "#!", "bin/sh": "-> busybox", "usr": "dir", "usr/bin": "dir",
                          "usr/bin/wall": "w", "tmp": "dir", "empty": ""}
    modes = {name: stat.S_IMODE(os.lstat(root / name).st_mode)
             for name in ("etc", "etc/hostname", "bin/su", "usr/bin/wall", "tmp", "empty")}
    assert modes == {"etc": 0o750, "etc/hostname": 0o640, "bin/su": 0o4755,
                     "usr/bin/wall": 0o2755, "tmp": 0o1777, "empty": 0o644}
    # Directories the archive does not list: 0755 (and the extractor's).
    for implicit in ("bin", "usr", "usr/bin"):
        assert stat.S_IMODE(os.lstat(root / implicit).st_mode) == 0o755
    assert os.lstat(root / "etc").st_mtime == MTIME + 1  # set after its entries were made
    assert os.lstat(root / "etc/hostname").st_mtime == MTIME
    assert os.lstat(root / "bin/sh").st_mtime == MTIME + 2  # the link's own time
    assert os.lstat(root / "etc/hosts").st_ino == os.lstat(root / "etc/hostname").st_ino
    assert os.lstat(root / "etc/hostname").st_nlink == 2
    assert lowner(root / "etc/hostname") == owner(root)
    assert lowner(root / "etc") == owner(root)
    assert lowner(root / "bin/sh") == owner(root)
    assert lowner(root / "bin/su") == owner(root, 0, 0)


def test_the_root_directory_member_sets_the_rootfs_mode_owner_and_time(tmp_path: Path, root: Path) -> None:
    extract(tmp_path, root, tar_bytes([dir_("./", 0o711, uid=77, gid=88, mtime=MTIME + 5), reg("./a", b"x")]))
    st = os.lstat(root)
    assert stat.S_IMODE(st.st_mode) == 0o711
    assert st.st_mtime == MTIME + 5
    assert (st.st_uid, st.st_gid) == owner(root, 77, 88)
    assert tree(root) == {"a": "x"}


def test_directory_modes_are_set_last(tmp_path: Path, root: Path) -> None:
    extract(tmp_path, root, tar_bytes([dir_("ro", 0o555), dir_("ro/sub", 0o500), reg("ro/sub/f", b"1"),
                                       reg("ro/g", b"2")]))
    assert tree(root) == {"ro": "dir", "ro/sub": "dir", "ro/sub/f": "1", "ro/g": "2"}
    assert stat.S_IMODE(os.lstat(root / "ro").st_mode) == 0o555
    assert stat.S_IMODE(os.lstat(root / "ro/sub").st_mode) == 0o500
    assert os.lstat(root / "ro").st_mtime == MTIME
    assert os.lstat(root / "ro/sub").st_mtime == MTIME
    os.chmod(root / "ro", 0o755)
    os.chmod(root / "ro/sub", 0o755)


def test_leading_slashes_and_dots_are_dropped(tmp_path: Path, root: Path) -> None:
    # Absolute names that, taken as host paths, would still be inside tmp_path.
    host = f"{tmp_path}/host"
    extract(tmp_path, root, tar_bytes([reg(f"{host}/etc/passwd", b"p"), reg("./a/./b", b"b"),
                                       reg(f"/{host}//c//d", b"d"), sym(f"{host}/link", f"{host}/etc/passwd")]))
    inside = root / host.lstrip("/")
    assert tree(inside) == {"etc": "dir", "etc/passwd": "p", "c": "dir", "c/d": "d",
                            "link": f"-> {host}/etc/passwd"}  # a symlink's target is kept verbatim
    assert (root / "a/b").read_bytes() == b"b"
    assert sorted(os.listdir(root)) == ["a", tmp_path.parts[1]]
    assert not os.path.lexists(host)


def test_a_hard_link_target_with_a_leading_slash_is_inside_the_rootfs(tmp_path: Path, root: Path) -> None:
    shadow = f"{tmp_path}/host/etc/shadow"
    extract(tmp_path, root, tar_bytes([reg(shadow.lstrip("/"), b"s"), hard("shadow2", shadow)]))
    assert os.lstat(root / "shadow2").st_ino == os.lstat(root / shadow.lstrip("/")).st_ino
    assert not os.path.lexists(shadow)


def test_special_files(tmp_path: Path, root: Path) -> None:
    null = info("dev/null", tarfile.CHRTYPE, mode=0o666)
    null.devmajor, null.devminor = 1, 3
    loop = info("dev/loop9", tarfile.BLKTYPE, mode=0o660, uid=0, gid=6)
    loop.devmajor, loop.devminor = 7, 9
    fifo = info("run/fifo", tarfile.FIFOTYPE, mode=0o620)
    extract(tmp_path, root, tar_bytes([(null, None), (loop, None), (fifo, None)]))
    st = os.lstat(root / "dev/null")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3) and stat.S_IMODE(st.st_mode) == 0o666
    assert st.st_mtime == MTIME and (st.st_uid, st.st_gid) == owner(root)
    st = os.lstat(root / "dev/loop9")
    assert stat.S_ISBLK(st.st_mode) and st.st_rdev == os.makedev(7, 9) and stat.S_IMODE(st.st_mode) == 0o660
    assert (st.st_uid, st.st_gid) == owner(root, 0, 6)
    st = os.lstat(root / "run/fifo")
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o620 and st.st_rdev == 0
    assert st.st_mtime == MTIME


def test_unknown_and_contiguous_types_are_files(tmp_path: Path, root: Path) -> None:
    odd = info("odd", b"Z", size=3)
    contiguous = info("contig", tarfile.CONTTYPE, size=2)
    extract(tmp_path, root, tar_bytes([(odd, b"abc"), (contiguous, b"de")]))
    assert tree(root) == {"odd": "abc", "contig": "de"}


def test_a_file_larger_than_one_read(tmp_path: Path, root: Path) -> None:
    data = bytes(range(256)) * 4500  # > 1 MiB: several reads
    extract(tmp_path, root, tar_bytes([reg("big", data)]))
    assert (root / "big").read_bytes() == data


def test_pax_names_and_ids(tmp_path: Path, root: Path) -> None:
    long = "d/" + "n" * 200
    extract(tmp_path, root, tar_bytes([reg(long, b"l", uid=3_000_000, gid=3_000_001)], fmt=tarfile.PAX_FORMAT))
    assert (root / long).read_bytes() == b"l"
    assert lowner(root / long) == owner(root, 3_000_000, 3_000_001)


# --- duplicates: the later member wins, as GNU tar --------------------------------------------------


def test_a_later_file_replaces_an_earlier_one_entirely(tmp_path: Path, root: Path) -> None:
    extract(tmp_path, root, tar_bytes([reg("f", b"a much longer first version", mode=0o600),
                                       reg("f", b"short", mode=0o644)]))
    assert tree(root) == {"f": "short"}
    assert stat.S_IMODE(os.lstat(root / "f").st_mode) == 0o644


def test_a_file_replaces_a_symlink_not_its_target(tmp_path: Path, root: Path, outside: Path) -> None:
    extract(tmp_path, root, tar_bytes([sym("f", str(outside / "secret")), reg("f", b"mine")]))
    assert tree(root) == {"f": "mine"}
    assert_outside_untouched(outside)


def test_a_symlink_to_a_directory_then_a_file_below_it_is_refused(tmp_path: Path, root: Path,
                                                                  outside: Path) -> None:
    message = refused(tmp_path, root, tar_bytes([sym("etc", str(outside)), reg("etc/secret", b"owned")]))
    assert message == "tar: SRC: member 2 'etc/secret': 'etc' goes through a symlink: not extracting through it"
    assert_outside_untouched(outside)
    assert tree(root) == {"etc": f"-> {outside}"}


def test_even_a_symlink_pointing_inside_is_not_extracted_through(tmp_path: Path, root: Path) -> None:
    message = refused(tmp_path, root, tar_bytes([dir_("real"), sym("alias", "real"), reg("alias/x/f", b"x")]))
    assert message == ("tar: SRC: member 3 'alias/x/f': 'alias/x' goes through a symlink: "
                       "not extracting through it")
    assert tree(root) == {"real": "dir", "alias": "-> real"}


def test_a_symlink_replaces_a_file_and_the_link_itself_is_replaced(tmp_path: Path, root: Path,
                                                                   outside: Path) -> None:
    extract(tmp_path, root, tar_bytes([reg("a", b"1"), sym("a", str(outside / "secret")),
                                       sym("a", "elsewhere")]))
    assert tree(root) == {"a": "-> elsewhere"}
    assert_outside_untouched(outside)


def test_a_node_replaces_a_symlink(tmp_path: Path, root: Path, outside: Path) -> None:
    fifo = info("p", tarfile.FIFOTYPE, mode=0o600)
    extract(tmp_path, root, tar_bytes([sym("p", str(outside / "secret")), (fifo, None)]))
    assert stat.S_ISFIFO(os.lstat(root / "p").st_mode)
    assert_outside_untouched(outside)


def test_a_directory_replaces_a_file_and_a_symlink(tmp_path: Path, root: Path, outside: Path) -> None:
    extract(tmp_path, root, tar_bytes([reg("d", b"x"), dir_("d", 0o701), sym("e", str(outside)),
                                       dir_("e", 0o710), reg("e/f", b"in")]))
    assert tree(root) == {"d": "dir", "e": "dir", "e/f": "in"}
    assert stat.S_IMODE(os.lstat(root / "d").st_mode) == 0o701
    assert stat.S_IMODE(os.lstat(root / "e").st_mode) == 0o710
    assert_outside_untouched(outside)


def test_a_directory_listed_twice_keeps_its_entries_and_takes_the_later_mode(tmp_path: Path, root: Path) -> None:
    extract(tmp_path, root, tar_bytes([dir_("d", 0o700), reg("d/f", b"f"),
                                       dir_("d", 0o751, mtime=MTIME + 9, uid=5, gid=6)]))
    assert tree(root) == {"d": "dir", "d/f": "f"}
    st = os.lstat(root / "d")
    assert stat.S_IMODE(st.st_mode) == 0o751 and st.st_mtime == MTIME + 9
    assert (st.st_uid, st.st_gid) == owner(root, 5, 6)


def test_a_file_replaces_an_empty_directory(tmp_path: Path, root: Path) -> None:
    extract(tmp_path, root, tar_bytes([dir_("x", 0o700), reg("x", b"now a file", mode=0o640)]))
    assert tree(root) == {"x": "now a file"}
    assert stat.S_IMODE(os.lstat(root / "x").st_mode) == 0o640


def test_a_file_replacing_a_nested_directory_keeps_its_own_mode_and_time(tmp_path: Path, root: Path) -> None:
    extract(tmp_path, root, tar_bytes([dir_("a/x", 0o711, mtime=MTIME + 7), reg("a/x", b"f", mode=0o604)]))
    assert tree(root) == {"a": "dir", "a/x": "f"}
    st = os.lstat(root / "a/x")
    assert stat.S_IMODE(st.st_mode) == 0o604 and st.st_mtime == MTIME


def test_a_non_empty_directory_is_not_replaced(tmp_path: Path, root: Path) -> None:
    message = refused(tmp_path, root, tar_bytes([dir_("x"), reg("x/f", b"1"), reg("x", b"2")]))
    assert message == "tar: SRC: member 3 'x': Directory not empty"
    assert tree(root) == {"x": "dir", "x/f": "1"}


# --- refused members ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../escape", "a/../../escape", "a/..", ".."])
def test_dot_dot_is_refused(tmp_path: Path, root: Path, name: str) -> None:
    message = refused(tmp_path, root, tar_bytes([reg("ok", b"1"), reg(name, b"x")]))
    assert message == f"tar: SRC: member 2 {name!r}: path leaves the rootfs ('..')"
    assert tree(root) == {"ok": "1"}
    assert sorted(os.listdir(tmp_path)) == ["a.tar", "root"]


def test_dot_dot_in_a_symlink_name_is_refused_but_not_in_its_target(tmp_path: Path, root: Path) -> None:
    # Resolved, the target is the rootfs itself (nothing a test plants points outside tmp_path).
    extract(tmp_path, root, tar_bytes([sym("a/b/up", "../..")]))
    assert tree(root) == {"a": "dir", "a/b": "dir", "a/b/up": "-> ../.."}
    root2 = tmp_path / "root2"
    root2.mkdir()
    assert refused(tmp_path, root2, tar_bytes([sym("a/../b", "x")]), "b.tar") == (
        "tar: SRC: member 1 'a/../b': path leaves the rootfs ('..')")


@pytest.mark.parametrize("member", [reg("./", b"x"), sym(".", "x"), sym("./", "x")])
def test_only_a_directory_can_be_the_rootfs_itself(tmp_path: Path, root: Path, member: Member) -> None:
    message = refused(tmp_path, root, tar_bytes([member]))
    assert message == f"tar: SRC: member 1 {member[0].name!r}: only a directory can be the rootfs itself"
    assert tree(root) == {}


def test_a_hard_link_to_a_file_outside_is_refused(tmp_path: Path, root: Path, outside: Path) -> None:
    target = str(outside / "secret")
    message = refused(tmp_path, root, tar_bytes([hard("stolen", target)]))
    assert message == f"tar: SRC: member 1 'stolen': hard link target {target!r} was not extracted before it"
    assert tree(root) == {}
    assert os.lstat(outside / "secret").st_nlink == 1


def test_a_hard_link_to_a_missing_entry_of_an_existing_directory_is_refused(tmp_path: Path, root: Path) -> None:
    message = refused(tmp_path, root, tar_bytes([dir_("etc"), hard("x", "etc/missing")]))
    assert message == "tar: SRC: member 2 'x': hard link target 'etc/missing' was not extracted before it"
    assert tree(root) == {"etc": "dir"}


def test_a_hard_link_with_dot_dot_is_refused(tmp_path: Path, root: Path, outside: Path) -> None:
    message = refused(tmp_path, root, tar_bytes([hard("x", "../outside/secret")]))
    assert message == "tar: SRC: member 1 'x': path leaves the rootfs ('..')"
    assert tree(root) == {}
    assert os.lstat(outside / "secret").st_nlink == 1


def test_a_hard_link_through_a_planted_symlink_is_refused(tmp_path: Path, root: Path, outside: Path) -> None:
    message = refused(tmp_path, root, tar_bytes([sym("host", str(outside)), hard("x", "host/secret")]))
    assert message == "tar: SRC: member 2 'x': 'host' goes through a symlink: not extracting through it"
    assert tree(root) == {"host": f"-> {outside}"}
    assert os.lstat(outside / "secret").st_nlink == 1


def test_a_hard_link_to_a_symlink_links_the_symlink_itself(tmp_path: Path, root: Path, outside: Path) -> None:
    extract(tmp_path, root, tar_bytes([sym("l", str(outside / "secret")), hard("h", "l")]))
    assert tree(root) == {"l": f"-> {outside / 'secret'}", "h": f"-> {outside / 'secret'}"}
    assert os.lstat(root / "h").st_ino == os.lstat(root / "l").st_ino
    assert os.lstat(outside / "secret").st_nlink == 1


def test_a_hard_link_replaces_an_existing_entry_and_a_link_to_itself_is_kept(tmp_path: Path, root: Path) -> None:
    extract(tmp_path, root, tar_bytes([reg("a", b"A"), reg("b", b"B"), hard("b", "a"), hard("a", "a"),
                                       hard("./a", "a//")]))
    assert tree(root) == {"a": "A", "b": "A"}
    assert os.lstat(root / "a").st_ino == os.lstat(root / "b").st_ino


def test_a_hard_link_to_an_entry_deep_in_the_rootfs(tmp_path: Path, root: Path) -> None:
    extract(tmp_path, root, tar_bytes([reg("usr/lib/x/libc.so", b"elf"), hard("lib/libc.so", "usr/lib/x/libc.so")]))
    assert tree(root) == {"usr": "dir", "usr/lib": "dir", "usr/lib/x": "dir", "usr/lib/x/libc.so": "elf",
                          "lib": "dir", "lib/libc.so": "elf"}
    assert os.lstat(root / "lib/libc.so").st_ino == os.lstat(root / "usr/lib/x/libc.so").st_ino


@pytest.mark.parametrize(("name", "target"), [("x", "./"), ("x", "."), ("./", "a")])
def test_a_hard_link_to_or_at_the_rootfs_is_refused(tmp_path: Path, root: Path, name: str, target: str) -> None:
    message = refused(tmp_path, root, tar_bytes([reg("a", b"1"), hard(name, target)]))
    assert message == f"tar: SRC: member 2 {name!r}: a hard link to or at the rootfs itself"


def test_a_too_large_mtime_is_an_error_naming_the_member(tmp_path: Path, root: Path) -> None:
    member, data = reg("f", b"x")
    member.pax_headers = {"mtime": "1e30"}
    message = refused(tmp_path, root, tar_bytes([(member, data)], fmt=tarfile.PAX_FORMAT))
    assert message == "tar: SRC: member 1 'f': timestamp out of range for platform time_t"


def test_a_too_large_directory_mtime_fails_when_directory_times_are_set(tmp_path: Path, root: Path) -> None:
    member, _ = dir_("d")
    member.pax_headers = {"mtime": "1e30"}
    message = refused(tmp_path, root, tar_bytes([(member, None)], fmt=tarfile.PAX_FORMAT))
    assert message == "tar: SRC: setting directory modes and times: timestamp out of range for platform time_t"


def test_the_rootfs_must_be_a_directory_itself_not_a_symlink(tmp_path: Path) -> None:
    source = tmp_path / "a.tar"
    source.write_bytes(tar_bytes([reg("f", b"1")]))
    with pytest.raises(FileNotFoundError):
        extract_archive(str(source), str(tmp_path / "missing"))
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("real")
    (tmp_path / "file").write_bytes(b"")
    for rootfs in ("link", "file"):
        with pytest.raises(NotADirectoryError):
            extract_archive(str(source), str(tmp_path / rootfs))
    assert os.listdir(tmp_path / "real") == []
    assert (tmp_path / "file").read_bytes() == b""


def _open_fds() -> list[str]:
    return sorted(os.listdir("/proc/self/fd"))


def test_no_descriptor_is_left_open(tmp_path: Path, root: Path) -> None:
    before = _open_fds()
    extract(tmp_path, root, tar_bytes([dir_("a"), reg("a/1", b"1"), dir_("a/b"), reg("a/b/2", b"2"), reg("c/3"),
                                       hard("a/b/4", "a/1"), sym("a/5", "1"), dir_("a/b/c", 0o700)]))
    assert tree(root) == {"a": "dir", "a/1": "1", "a/b": "dir", "a/b/2": "2", "c": "dir", "c/3": "",
                          "a/b/4": "1", "a/5": "-> 1", "a/b/c": "dir"}
    assert _open_fds() == before
    root2 = tmp_path / "root2"
    root2.mkdir()
    refused(tmp_path, root2, tar_bytes([reg("a/1", b"1"), reg("b/2", b"2"), reg("../x")]), "b.tar")
    assert _open_fds() == before


# --- what an extraction that stops half-way leaves: nothing more open than the archive's own modes ---


def test_directories_stay_private_when_extraction_stops(tmp_path: Path, root: Path) -> None:
    message = refused(tmp_path, root, tar_bytes([dir_("pub", 0o755), reg("f"), dir_("f", 0o755),
                                                 reg("../x")]))
    assert message == "tar: SRC: member 4 '../x': path leaves the rootfs ('..')"
    assert tree(root) == {"pub": "dir", "f": "dir"}
    # Their modes are applied only once every member is in: until then only their owner enters them.
    assert stat.S_IMODE(os.lstat(root / "pub").st_mode) == 0o700
    assert stat.S_IMODE(os.lstat(root / "f").st_mode) == 0o700


def test_a_file_cut_short_stays_private(tmp_path: Path, root: Path) -> None:
    payload = tar_bytes([reg("f", b"x" * 5000, mode=0o4755)])
    message = refused(tmp_path, root, payload[:512 + 1000])
    assert message == "tar: SRC: corrupt archive at member 1: unexpected end of data"
    assert stat.S_IMODE(os.lstat(root / "f").st_mode) == 0o600


@pytest.mark.parametrize("kind", [tarfile.REGTYPE, tarfile.FIFOTYPE, tarfile.DIRTYPE])
def test_an_owner_out_of_range_leaves_the_entry_private(tmp_path: Path, root: Path, kind: bytes) -> None:
    # Only root sets owners; a uid beyond 32 bits fails there, before the member's mode is applied.
    member = info("e", kind, mode=0o755, uid=2**33)
    message = refused(tmp_path, root, tar_bytes([reg("e", b"before"), (member, None)], fmt=tarfile.PAX_FORMAT))
    assert message == "tar: SRC: member 2 'e': uid is less than minimum"
    assert stat.S_IMODE(os.lstat(root / "e").st_mode) == (0o700 if kind == tarfile.DIRTYPE else 0o600)


# --- as an unprivileged user -------------------------------------------------------------------------

NOBODY = 65534


def extract_unprivileged(work: Path, payload: bytes, monkeypatch: pytest.MonkeyPatch) -> str:
    """Extract ``work/a.tar`` into ``work/root`` as an unprivileged user; the error, or "" on success.

    Run as root, the effective ids are nobody's for the extraction only (the saved ids stay root's, so
    they come back), and the paths are relative to ``work``: the directories above it are root's."""
    (work / "a.tar").write_bytes(payload)
    (work / "root").mkdir()
    monkeypatch.chdir(work)
    if ROOT:
        os.chown(work, NOBODY, NOBODY)
        os.chown(work / "root", NOBODY, NOBODY)
        os.setegid(NOBODY)
        os.seteuid(NOBODY)
    try:
        extract_archive("a.tar", "root")
    except ArchiveError as err:
        return str(err)
    finally:
        if ROOT:
            os.seteuid(0)
            os.setegid(0)
    return ""


def test_unprivileged_a_directory_closed_to_its_owner_still_gets_its_children_modes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Deepest first: once "locked" is 0600 its owner cannot reach "locked/sub" any more.
    error = extract_unprivileged(tmp_path, tar_bytes([dir_("locked", 0o600), dir_("locked/sub", 0o751),
                                                      reg("locked/sub/f", b"f"), dir_("open", 0o755)]),
                                 monkeypatch)
    assert error == ""
    root = tmp_path / "root"
    assert stat.S_IMODE(os.lstat(root / "locked").st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(root / "locked/sub").st_mode) == 0o751
    assert (root / "locked/sub/f").read_bytes() == b"f"
    own = (NOBODY, NOBODY) if ROOT else (os.getuid(), os.getgid())
    assert lowner(root / "locked/sub/f") == own  # no chown without privilege: the extractor's own


# --- corrupt and truncated archives ------------------------------------------------------------------


def test_an_empty_file(tmp_path: Path, root: Path) -> None:
    assert refused(tmp_path, root, b"") == "tar: SRC: corrupt archive at member 1: empty file"


def test_garbage(tmp_path: Path, root: Path) -> None:
    assert refused(tmp_path, root, b"this is not a tar archive\n" * 40) == (
        "tar: SRC: corrupt archive at member 1: invalid header")


def test_cut_inside_the_data_of_a_member(tmp_path: Path, root: Path) -> None:
    payload = tar_bytes([reg("a", b"1"), reg("b", b"x" * 3000)])
    message = refused(tmp_path, root, payload[:512 * 3 + 1000])
    assert message == "tar: SRC: corrupt archive at member 2: unexpected end of data"
    assert (root / "a").read_bytes() == b"1"


def test_cut_after_a_member_without_the_end_blocks(tmp_path: Path, root: Path) -> None:
    payload = tar_bytes([reg("a", b"1"), reg("b", b"2")])
    message = refused(tmp_path, root, payload[:512 * 4])
    assert message == "tar: SRC: corrupt archive at member 3: truncated archive (no end-of-archive block)"
    assert tree(root) == {"a": "1", "b": "2"}


def test_cut_inside_a_header(tmp_path: Path, root: Path) -> None:
    payload = tar_bytes([reg("a", b"1"), reg("b", b"2")])
    message = refused(tmp_path, root, payload[:512 * 2 + 100])
    assert message == "tar: SRC: corrupt archive at member 2: truncated archive (it ends inside a header)"
    assert tree(root) == {"a": "1"}


def test_a_header_with_a_bad_checksum(tmp_path: Path, root: Path) -> None:
    payload = bytearray(tar_bytes([reg("a", b"1"), reg("b", b"2")]))
    payload[1024 + 100] ^= 0x01  # the second header's mode field
    message = refused(tmp_path, root, bytes(payload))
    assert message == "tar: SRC: corrupt archive at member 2: invalid header (bad checksum or field)"
    assert tree(root) == {"a": "1"}


def test_only_the_end_blocks_is_an_empty_archive(tmp_path: Path, root: Path) -> None:
    extract(tmp_path, root, tar_bytes([]))
    assert tree(root) == {}
    # One zero block ends it already; what follows the end is not read as members.
    extract(tmp_path, root, tar_bytes([reg("a", b"1")])[:1024] + bytes(512) + b"trailing junk")
    assert tree(root) == {"a": "1"}


COMPRESSORS = {
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "lzma": lambda data: lzma.compress(data, format=lzma.FORMAT_ALONE),
    "zst": lambda data: subprocess.run(["zstd", "-q", "-c"], input=data, stdout=subprocess.PIPE,
                                       check=True).stdout,
}


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_compressed_archives(tmp_path: Path, root: Path, kind: str) -> None:
    payload = COMPRESSORS[kind](tar_bytes([dir_("etc", 0o700), reg("etc/os-release", b"ID=test\n")]))
    seen: list[tuple[int, int]] = []
    source = tmp_path / f"a.tar.{kind}"
    source.write_bytes(payload)
    extract_archive(str(source), str(root), on_progress=lambda done, size: seen.append((done, size)))
    assert tree(root) == {"etc": "dir", "etc/os-release": "ID=test\n"}
    assert stat.S_IMODE(os.lstat(root / "etc").st_mode) == 0o700
    assert seen and seen[-1] == (len(payload), len(payload))


@pytest.mark.parametrize(("kind", "reason"), [
    ("gz", "Compressed file ended before the end-of-stream marker was reached"),
    ("bz2", "Compressed file ended before the end-of-stream marker was reached"),
    ("xz", "Compressed file ended before the end-of-stream marker was reached"),
    ("zst", "zstd: /*stdin*\\ : Read error (39) : premature end"),
])
def test_a_cut_compressed_archive(tmp_path: Path, root: Path, kind: str, reason: str) -> None:
    data = os.urandom(20000)
    payload = COMPRESSORS[kind](tar_bytes([reg("a", b"1"), reg("noise", data)]))
    message = refused(tmp_path, root, payload[:-12], f"a.tar.{kind}")
    assert message.startswith("tar: SRC: corrupt archive at member ")
    assert message.endswith(f": {reason}")


def test_a_cut_gzip_archive_whose_tar_is_complete(tmp_path: Path, root: Path) -> None:
    # The tar data ends properly; only the gzip trailer (CRC and size) is missing: found by draining.
    payload = gzip.compress(tar_bytes([reg("a", b"1")]))
    message = refused(tmp_path, root, payload[:-8], "a.tar.gz")
    assert message == ("tar: SRC: corrupt archive at member 2: Compressed file ended before the "
                       "end-of-stream marker was reached")
    assert tree(root) == {"a": "1"}


def test_a_gzip_archive_with_a_bad_checksum(tmp_path: Path, root: Path) -> None:
    payload = bytearray(gzip.compress(tar_bytes([reg("a", b"1")])))
    payload[-8] ^= 0xFF  # the CRC32 of the trailer
    message = refused(tmp_path, root, bytes(payload), "a.tar.gz")
    assert message == "tar: SRC: corrupt archive at member 2: CRC check failed 0x" + message.split("0x", 1)[1]
    assert "!= 0x" in message


def test_a_corrupt_xz_archive(tmp_path: Path, root: Path) -> None:
    payload = bytearray(lzma.compress(tar_bytes([reg("a", b"1")])))
    payload[len(payload) // 2] ^= 0xFF
    message = refused(tmp_path, root, bytes(payload), "a.tar.xz")
    assert message.startswith("tar: SRC: corrupt archive at member 1: ")
    assert message == "tar: SRC: corrupt archive at member 1: Corrupt input data"


def test_a_corrupt_zstd_archive(tmp_path: Path, root: Path) -> None:
    payload = bytearray(COMPRESSORS["zst"](tar_bytes([reg("a", b"1")])))
    payload[-6] ^= 0xFF
    message = refused(tmp_path, root, bytes(payload), "a.tar.zst")
    # zstd's own reason, not what the tar reader made of its missing output ("empty file").
    assert message == ("tar: SRC: corrupt archive at member 1: zstd: /*stdin*\\ : Decoding error (36) : "
                       "Data corruption detected")


def test_progress_is_reported_up_to_the_whole_file(tmp_path: Path, root: Path) -> None:
    payload = tar_bytes([reg("a", b"1" * 5000), reg("b", b"2"), dir_("c")])
    source = tmp_path / "a.tar"
    source.write_bytes(payload)
    seen: list[tuple[int, int]] = []
    extract_archive(str(source), str(root), on_progress=lambda done, size: seen.append((done, size)))
    assert {size for _, size in seen} == {len(payload)}
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == len(payload)
    assert len(seen) >= 5  # per chunk of data, per member, and at the end


def test_a_pipe_has_no_progress(tmp_path: Path, root: Path) -> None:
    payload = tar_bytes([reg("a", b"1"), reg("b", b"2")])
    read_end, write_end = os.pipe()

    def feed() -> None:
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(payload)

    writer = threading.Thread(target=feed)
    writer.start()
    seen: list[tuple[int, int]] = []
    try:
        extract_archive(f"/proc/self/fd/{read_end}", str(root), on_progress=lambda d, s: seen.append((d, s)))
    finally:
        writer.join()
        os.close(read_end)
    assert tree(root) == {"a": "1", "b": "2"}
    assert seen == []


def test_a_zstd_archive_whose_tar_is_cut_keeps_the_tar_reason(tmp_path: Path, root: Path) -> None:
    payload = COMPRESSORS["zst"](tar_bytes([reg("a", b"1")])[:1024])  # zstd's frame is whole
    message = refused(tmp_path, root, payload, "a.tar.zst")
    assert message == "tar: SRC: corrupt archive at member 2: truncated archive (no end-of-archive block)"
    assert tree(root) == {"a": "1"}


def test_a_refused_member_of_a_zstd_archive(tmp_path: Path, root: Path) -> None:
    payload = COMPRESSORS["zst"](tar_bytes([reg("a", b"1"), reg("../b", b"2"), reg("c", os.urandom(300_000))]))
    message = refused(tmp_path, root, payload, "a.tar.zst")
    assert message == "tar: SRC: member 2 '../b': path leaves the rootfs ('..')"
    assert tree(root) == {"a": "1"}


# --- the zstd command: its absence and its failures --------------------------------------------------


def fake_zstd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str | None) -> None:
    """PATH holds only a directory with this ``zstd`` script (none when ``script`` is None)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if script is not None:
        (bin_dir / "zstd").write_text(script)
        (bin_dir / "zstd").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))


def zstd_payload() -> bytes:
    return COMPRESSORS["zst"](tar_bytes([reg("a", b"1")]))


def test_zstd_archive_without_a_zstd_command(tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = zstd_payload()
    fake_zstd(tmp_path, monkeypatch, None)
    assert refused(tmp_path, root, payload, "a.tar.zst") == (
        "tar: SRC: corrupt archive at member 1: zstd-compressed, and there is no zstd command on this host")


def test_zstd_command_that_cannot_run(tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = zstd_payload()
    fake_zstd(tmp_path, monkeypatch, "#!/nonexistent/interpreter\n")
    assert refused(tmp_path, root, payload, "a.tar.zst") == (
        "tar: SRC: reading the archive: No such file or directory")


def test_zstd_failing_without_a_word(tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = zstd_payload()
    fake_zstd(tmp_path, monkeypatch, "#!/bin/sh\nexit 1\n")
    assert refused(tmp_path, root, payload, "a.tar.zst") == "tar: SRC: corrupt archive at member 1: zstd: failed"


def test_zstd_message_that_is_not_utf8(tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = zstd_payload()
    fake_zstd(tmp_path, monkeypatch, "#!/bin/sh\nprintf 'first\\nbad \\377 name  \\n' >&2\nexit 2\n")
    assert refused(tmp_path, root, payload, "a.tar.zst") == (
        "tar: SRC: corrupt archive at member 1: zstd: bad \ufffd name")
