"""The tar template unpacks a hostile archive: every member lands inside the new rootfs, never through a
symlink the archive planted, and a broken archive is a one-line error that leaves nothing behind.

Each archive is built with Python's tarfile in the test's tmp_path; a directory or file next to it plays
the host's (``/etc`` in a real attack). The create runs as root, as it does on a real host.
"""

from __future__ import annotations

import errno
import io
import os
import pty
import stat
import subprocess
import tarfile
from collections.abc import Callable, Iterator

import pytest

from lxcframe.container import Container
from lxcframe.errors import ContainerError

from ..conftest import run_cli

pytestmark = pytest.mark.container


def _info(name: str, kind: bytes = tarfile.REGTYPE, **fields: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = 1_600_000_000
    for key, value in fields.items():
        setattr(info, key, value)
    return info


class ArchiveBuilder:
    """Members in the order given, as an attacker would write them."""

    def __init__(self) -> None:
        self.members: list[tuple[tarfile.TarInfo, bytes | None]] = []

    def directory(self, name: str, **fields: object) -> ArchiveBuilder:
        self.members.append((_info(name, tarfile.DIRTYPE, **fields), None))
        return self

    def file(self, name: str, data: bytes = b"", **fields: object) -> ArchiveBuilder:
        self.members.append((_info(name, size=len(data), **fields), data))
        return self

    def symlink(self, name: str, target: str) -> ArchiveBuilder:
        self.members.append((_info(name, tarfile.SYMTYPE, linkname=target, mode=0o777), None))
        return self

    def hardlink(self, name: str, target: str, **fields: object) -> ArchiveBuilder:
        self.members.append((_info(name, tarfile.LNKTYPE, linkname=target, **fields), None))
        return self

    def node(self, name: str, kind: bytes, **fields: object) -> ArchiveBuilder:
        self.members.append((_info(name, kind, **fields), None))
        return self

    def write(self, path: os.PathLike[str] | str, mode: str = "w") -> str:
        with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as archive:
            for info, data in self.members:
                archive.addfile(info, io.BytesIO(data) if data is not None else None)
        return str(path)


@pytest.fixture
def create_tar(lxcpath: str, host) -> Iterator[Callable[[str], Container]]:
    """``create_tar(archive)`` makes container "img" from it; whatever got made is destroyed at teardown."""
    made: list[Container] = []

    def create(archive: str) -> Container:
        container = Container("img", lxcpath)
        made.append(container)
        container.create("tar", rootfs=archive)
        return container

    yield create
    for container in made:
        if container.defined:
            container.destroy(force=True)
    host.assert_clean()


@pytest.fixture
def host_dir(tmp_path) -> str:
    """A directory standing for a host directory such as /etc."""
    path = tmp_path / "host-etc"
    path.mkdir()
    return str(path)


@pytest.fixture
def host_file(tmp_path) -> str:
    path = tmp_path / "host-shadow"
    path.write_text("root:secret\n")
    return str(path)


def _rootfs(container: Container) -> str:
    return container.load_config().get("lxc.rootfs.path").removeprefix("dir:")


def _refused(create_tar: Callable[[str], Container], archive: str, lxcpath: str, match: str) -> None:
    with pytest.raises(ContainerError, match=match):
        create_tar(archive)
    assert os.listdir(lxcpath) == [], "a refused archive leaves no container directory"


# --- writing through a symlink the archive planted --------------------------------------------------


@pytest.mark.parametrize("target", ["absolute", "relative"])
def test_member_below_a_symlink_to_a_host_directory_is_refused(create_tar, lxcpath, tmp_path, host_dir, target):
    link = host_dir if target == "absolute" else "../" * 40 + host_dir.lstrip("/")
    archive = ArchiveBuilder().symlink("etc", link).file("etc/pwned", b"owned\n").write(tmp_path / "a.tar")
    _refused(create_tar, archive, lxcpath, "symlink")
    assert os.listdir(host_dir) == []


def test_symlink_chain_through_directory_symlinks_is_refused(create_tar, lxcpath, tmp_path, host_dir):
    # a -> b -> (host dir): each hop alone looks harmless to a name-based check.
    archive = (ArchiveBuilder().directory("d").symlink("d/b", host_dir).symlink("a", "d/b")
               .file("a/pwned", b"owned\n").write(tmp_path / "a.tar"))
    _refused(create_tar, archive, lxcpath, "symlink")
    assert os.listdir(host_dir) == []


def test_symlink_to_a_directory_inside_is_not_written_through_either(create_tar, lxcpath, tmp_path):
    archive = (ArchiveBuilder().directory("usr").directory("usr/lib").symlink("lib", "usr/lib")
               .file("lib/libc.so", b"x").write(tmp_path / "a.tar"))
    _refused(create_tar, archive, lxcpath, r"member 4 'lib/libc.so'.*symlink")


@pytest.mark.parametrize("target", ["absolute", "relative"])
def test_regular_member_replaces_a_symlink_of_the_same_name(create_tar, tmp_path, host_file, target):
    link = host_file if target == "absolute" else "../" * 40 + host_file.lstrip("/")
    archive = ArchiveBuilder().symlink("victim", link).file("victim", b"from the archive\n").write(tmp_path / "a.tar")
    container = create_tar(archive)
    with open(host_file) as handle:
        assert handle.read() == "root:secret\n"
    victim = os.path.join(_rootfs(container), "victim")
    assert stat.S_ISREG(os.lstat(victim).st_mode)
    with open(victim, "rb") as handle:
        assert handle.read() == b"from the archive\n"


def test_directory_member_replaces_a_symlink_instead_of_changing_its_target(create_tar, tmp_path, host_dir):
    before = os.stat(host_dir)
    archive = ArchiveBuilder().symlink("d", host_dir).directory("d", mode=0o700, uid=1234).write(tmp_path / "a.tar")
    rootfs = _rootfs(create_tar(archive))
    after = os.stat(host_dir)
    assert (after.st_mode, after.st_uid, after.st_gid) == (before.st_mode, before.st_uid, before.st_gid)
    made = os.lstat(os.path.join(rootfs, "d"))
    assert stat.S_ISDIR(made.st_mode) and (stat.S_IMODE(made.st_mode), made.st_uid) == (0o700, 1234)


def test_nodes_replace_a_symlink_without_following_it(create_tar, tmp_path, host_dir):
    archive = (ArchiveBuilder()
               .symlink("fifo", host_dir + "/fifo").node("fifo", tarfile.FIFOTYPE)
               .symlink("null", host_dir + "/null").node("null", tarfile.CHRTYPE, devmajor=1, devminor=3)
               .write(tmp_path / "a.tar"))
    rootfs = _rootfs(create_tar(archive))
    assert stat.S_ISFIFO(os.lstat(os.path.join(rootfs, "fifo")).st_mode)
    assert stat.S_ISCHR(os.lstat(os.path.join(rootfs, "null")).st_mode)
    assert os.listdir(host_dir) == []


# --- hard links -------------------------------------------------------------------------------------


def test_hard_link_through_a_planted_symlink_cannot_reach_a_host_file(create_tar, lxcpath, tmp_path, host_file):
    archive = (ArchiveBuilder().symlink("h", os.path.dirname(host_file))
               .hardlink("stolen", "h/" + os.path.basename(host_file)).write(tmp_path / "a.tar"))
    _refused(create_tar, archive, lxcpath, "symlink")
    assert os.stat(host_file).st_nlink == 1


def test_hard_link_to_an_absolute_host_path_is_resolved_inside_the_rootfs(create_tar, lxcpath, tmp_path, host_file):
    archive = ArchiveBuilder().hardlink("stolen", host_file).write(tmp_path / "a.tar")
    _refused(create_tar, archive, lxcpath, "hard link target .* not extracted")
    assert os.stat(host_file).st_nlink == 1


def test_hard_link_to_a_member_behind_a_symlink_is_refused(create_tar, lxcpath, tmp_path):
    archive = (ArchiveBuilder().directory("real").file("real/f", b"data").symlink("alias", "real")
               .hardlink("h", "alias/f").write(tmp_path / "a.tar"))
    _refused(create_tar, archive, lxcpath, "symlink")


def test_hard_link_with_dot_dot_is_refused(create_tar, lxcpath, tmp_path, host_file):
    archive = ArchiveBuilder().hardlink("stolen", "../" * 40 + host_file.lstrip("/")).write(tmp_path / "a.tar")
    _refused(create_tar, archive, lxcpath, "leaves the rootfs")
    assert os.stat(host_file).st_nlink == 1


# --- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../escaped", "a/../../escaped", "./../escaped"])
def test_dot_dot_member_is_refused(create_tar, lxcpath, tmp_path, name):
    archive = ArchiveBuilder().directory("a").file(name, b"x").write(tmp_path / "a.tar")
    _refused(create_tar, archive, lxcpath, "leaves the rootfs")
    assert not (tmp_path / "escaped").exists()


def test_absolute_member_lands_inside_the_rootfs(create_tar, tmp_path):
    target = tmp_path / "written-by-absolute-member"
    archive = ArchiveBuilder().file(str(target), b"x").write(tmp_path / "a.tar")
    container = create_tar(archive)
    assert not target.exists()
    with open(os.path.join(_rootfs(container), str(target).lstrip("/")), "rb") as handle:
        assert handle.read() == b"x"


# --- broken archives --------------------------------------------------------------------------------


def _valid_archive(tmp_path, mode: str) -> bytes:
    builder = ArchiveBuilder().directory("bin")
    for index in range(40):
        builder.file(f"bin/f{index}", os.urandom(4096))
    with open(builder.write(tmp_path / "valid", mode), "rb") as handle:
        return handle.read()


@pytest.mark.parametrize(("mode", "keep"), [("w", 0.5), ("w:gz", 0.5), ("w:gz", -12), ("w:xz", 0.5), ("w:bz2", 0.5)])
def test_truncated_archive_is_a_one_line_error_and_leaves_nothing(create_tar, lxcpath, tmp_path, mode, keep):
    data = _valid_archive(tmp_path, mode)
    cut = int(len(data) * keep) if isinstance(keep, float) else len(data) + keep
    archive = tmp_path / "cut"
    archive.write_bytes(data[:cut])
    with pytest.raises(ContainerError, match=r"tar: .*cut: corrupt archive at member \d+: ") as raised:
        create_tar(str(archive))
    assert "\n" not in str(raised.value)
    assert os.listdir(lxcpath) == []


@pytest.mark.parametrize(("where", "reason"), [(100, "it ends inside a header"), (0, "no end-of-archive block")])
def test_archive_cut_at_a_header_is_corrupt(create_tar, lxcpath, tmp_path, where, reason):
    data = _valid_archive(tmp_path, "w")
    with tarfile.open(tmp_path / "valid") as valid:
        third = valid.getmembers()[2].offset
    archive = tmp_path / "cut"
    archive.write_bytes(data[: third + where])
    with pytest.raises(ContainerError, match=f"corrupt archive at member 3: truncated archive .{reason}"):
        create_tar(str(archive))
    assert os.listdir(lxcpath) == []


def test_archive_with_a_damaged_header_is_corrupt(create_tar, lxcpath, tmp_path):
    # tarfile alone would take a header with a wrong checksum for the end and report success.
    data = bytearray(_valid_archive(tmp_path, "w"))
    with tarfile.open(tmp_path / "valid") as valid:
        third = valid.getmembers()[2].offset
    data[third] ^= 0xFF
    archive = tmp_path / "damaged"
    archive.write_bytes(bytes(data))
    with pytest.raises(ContainerError, match="corrupt archive at member 3: invalid header"):
        create_tar(str(archive))
    assert os.listdir(lxcpath) == []


def test_zstd_archive_is_read_and_a_cut_one_is_corrupt(create_tar, lxcpath, tmp_path):
    plain = tmp_path / "valid"
    plain.write_bytes(_valid_archive(tmp_path, "w"))
    subprocess.run(["zstd", "-q", str(plain), "-o", str(tmp_path / "a.tar.zst")], check=True)
    data = (tmp_path / "a.tar.zst").read_bytes()
    (tmp_path / "cut.tar.zst").write_bytes(data[: len(data) // 2])
    with pytest.raises(ContainerError, match=r"cut\.tar\.zst: corrupt archive at member"):
        create_tar(str(tmp_path / "cut.tar.zst"))
    assert os.listdir(lxcpath) == []
    rootfs = _rootfs(create_tar(str(tmp_path / "a.tar.zst")))
    assert len(os.listdir(os.path.join(rootfs, "bin"))) == 40


def test_garbage_is_a_one_line_error(create_tar, lxcpath, tmp_path):
    archive = tmp_path / "garbage"
    archive.write_bytes(os.urandom(20000))
    with pytest.raises(ContainerError, match="corrupt archive at member 1: "):
        create_tar(str(archive))
    assert os.listdir(lxcpath) == []


def test_cli_reports_a_corrupt_archive_in_one_line_with_exit_1(lxcpath, tmp_path, host):
    data = _valid_archive(tmp_path, "w:gz")
    archive = tmp_path / "cut.tar.gz"
    archive.write_bytes(data[: len(data) // 2])
    result = run_cli("-P", lxcpath, "create", "img", "-t", "tar", "--rootfs", str(archive))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if not line.startswith("extracting")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("lxcframe: error: ") and "corrupt archive at member" in errors[0]
    assert os.listdir(lxcpath) == []
    host.assert_clean()


# --- what a rootfs needs is kept --------------------------------------------------------------------


def test_nodes_modes_owners_times_and_links_are_kept(create_tar, tmp_path):
    builder = (ArchiveBuilder()
               .directory(".", mode=0o755, mtime=1_500_000_000)
               .directory("dev", mode=0o755, mtime=1_400_000_000)
               .directory("bin", mode=0o751, uid=0, gid=0)
               .file("bin/su", b"#!/bin/sh\n", mode=0o4755, uid=0, gid=0)
               .file("bin/wall", b"#!/bin/sh\n", mode=0o2755, uid=0, gid=5)
               .file("home/user/.profile", b"x", mode=0o600, uid=1000, gid=1000, mtime=1_234_567_890)
               .symlink("bin/sh", "/bin/busybox")
               .symlink("escape", "../../../../etc/passwd")
               .hardlink("bin/su2", "bin/su", mode=0o4755)
               .directory("tmp", mode=0o1777))
    builder.node("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3)
    builder.node("dev/loop0", tarfile.BLKTYPE, mode=0o660, devmajor=7, devminor=0, gid=6)
    builder.node("dev/initctl", tarfile.FIFOTYPE, mode=0o600)
    container = create_tar(builder.write(tmp_path / "a.tar.gz", "w:gz"))
    root = _rootfs(container)

    def st(path: str) -> os.stat_result:
        return os.lstat(os.path.join(root, path))

    assert stat.S_IMODE(st("bin").st_mode) == 0o751
    assert stat.S_IMODE(st("bin/su").st_mode) == 0o4755
    assert (stat.S_IMODE(st("bin/wall").st_mode), st("bin/wall").st_gid) == (0o2755, 5)
    profile = st("home/user/.profile")
    assert (profile.st_uid, profile.st_gid, stat.S_IMODE(profile.st_mode)) == (1000, 1000, 0o600)
    assert profile.st_mtime == 1_234_567_890
    assert os.readlink(os.path.join(root, "bin/sh")) == "/bin/busybox"
    assert os.readlink(os.path.join(root, "escape")) == "../../../../etc/passwd"
    assert st("bin/su2").st_ino == st("bin/su").st_ino
    assert stat.S_IMODE(st("tmp").st_mode) == 0o1777
    null = st("dev/null")
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1 and os.minor(null.st_rdev) == 3
    loop = st("dev/loop0")
    assert stat.S_ISBLK(loop.st_mode) and loop.st_rdev == os.makedev(7, 0) and loop.st_gid == 6
    assert stat.S_ISFIFO(st("dev/initctl").st_mode)
    # Directory times are set last, after their entries were made.
    assert st("dev").st_mtime == 1_400_000_000
    assert st(".").st_mtime == 1_500_000_000


def test_progress_without_a_terminal_is_one_line_per_ten_percent(lxcpath, tmp_path, host):
    builder = ArchiveBuilder()
    for index in range(200):
        builder.file(f"f{index}", os.urandom(8192))
    archive = builder.write(tmp_path / "a.tar.gz", "w:gz")
    result = run_cli("-P", lxcpath, "create", "img", "-t", "tar", "--rootfs", archive)
    try:
        assert result.returncode == 0, result.stderr
        progress = [line for line in result.stderr.splitlines() if line.startswith("extracting")]
        assert "\r" not in result.stderr
        assert 2 <= len(progress) <= 11, progress
        assert progress[-1].startswith("extracting: 100%")
    finally:
        if Container("img", lxcpath).defined:
            Container("img", lxcpath).destroy()
    host.assert_clean()


def _read_until_closed(main: int) -> bytes:
    """Everything written to the terminal's other side: a pty hands it over in as many reads as it likes,
    and reports the closed side as EIO."""
    chunks = []
    try:
        while chunk := os.read(main, 4096):
            chunks.append(chunk)
    except OSError as error:
        if error.errno != errno.EIO:
            raise
    finally:
        os.close(main)
    return b"".join(chunks)


def test_progress_on_a_terminal_is_a_bar_redrawn_by_bytes():
    from lxcframe.plugins.templates import ExtractProgress

    main, side = pty.openpty()
    with os.fdopen(side, "w") as terminal:
        progress = ExtractProgress(terminal)
        for done in (0, 5 << 20, 5 << 20, 10 << 20):
            progress(done, 10 << 20)
        progress.finish()
    shown = _read_until_closed(main).decode()
    assert shown.count("\rextracting") == 3, shown  # the repeated position is not redrawn
    assert "\rextracting [###############...............] 5.0/10.0 MiB" in shown
    assert shown.endswith("extracting [##############################] 10.0/10.0 MiB\r\n")
