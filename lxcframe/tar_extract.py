"""Unpack a (possibly hostile) tar archive into a fresh rootfs without ever leaving it.

A rootfs archive is untrusted input unpacked as root. Path-based extraction (``os.path.join(root,
member)`` + open, as tarfile's ``extract`` does) follows whatever the archive planted before: a member
``etc -> /etc`` then ``etc/shadow`` writes the host's /etc/shadow; a symlink then a regular file of the
same name overwrites the link's target; a hard link through a planted symlink links a host file in.

Here every member is made relative to a descriptor of its parent directory, and that descriptor is
resolved with openat2 RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS: no symlink is followed anywhere in the
path, not even one pointing inside the rootfs (extraction never writes *through* a link; the links
themselves may point anywhere, they are read inside the container). The last component is created
with O_CREAT|O_EXCL|O_NOFOLLOW, mkdirat, mknodat, symlinkat or linkat, none of which follows it; an
entry already there is removed first (GNU tar's default), a symlink by unlinking the link itself.

Kept as GNU tar keeps them when run as root: numeric owners, modes with setuid/setgid/sticky (set after
the chown, which clears them), mtimes, device nodes, fifos, hard links (only to an entry already in the
rootfs). Directory modes and times are set at the end, once their entries are made. Leading slashes are
stripped from names and link targets; a ``..`` component is refused.

The archive is read once, as a stream. Decompression is done here rather than by tarfile's ``r|*``:
its stream reader stops silently at the end of a cut gzip/xz/bzip2 file, while these decoders report
the missing end marker and checksum. A corrupt or truncated archive is an :class:`ArchiveError` naming
the member where it broke.
"""

from __future__ import annotations

import bz2
import collections
import contextlib
import errno
import gzip
import io
import os
import shutil
import stat
import subprocess
import tarfile
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any, Protocol

from lxcframe import syscalls
from lxcframe.rootfs_paths import makedirs_in_root, open_in_root

try:
    import lzma
except ImportError:  # a Python built without liblzma: xz archives are then refused by name
    lzma = None  # type: ignore[assignment]

#: ``on_progress(bytes of the archive file read, its size)``; size 0 when unknown (a pipe).
Progress = Callable[[int, int], None]

_NO_SYMLINKS = syscalls.RESOLVE_NO_SYMLINKS
_CHUNK = 1 << 20
# What the decoders raise on bad input (bz2 and gzip use OSError, lzma its own error).
_DECODE_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, ValueError, zlib.error) + (
    (lzma.LZMAError,) if lzma is not None else ()
)


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class ArchiveError(ValueError):
    """The archive cannot be unpacked: it is corrupt, or a member would leave the rootfs."""


class _Corrupt(Exception):
    """The archive's bytes could not be read or decoded (raised by the read side only)."""


class _Refused(Exception):
    """A member that is not extracted, with the reason."""


# --- reading -----------------------------------------------------------------------------------------


class _CheckedReader:
    """The decompressed archive for tarfile: counts what was read, keeps the last chunks, and turns
    decoder errors into :class:`_Corrupt`, so they are told apart from errors writing the rootfs."""

    def __init__(self, source: _Readable) -> None:
        self.source = source
        self.total = 0
        # (offset, bytes) of the latest reads: where tarfile stopped is among them (it reads a
        # record at a time), so the block it stopped at can be looked at again.
        self._recent: collections.deque[tuple[int, bytes]] = collections.deque(maxlen=8)

    def read(self, size: int = -1) -> bytes:
        try:
            data = self.source.read(size)
        except _DECODE_ERRORS as err:
            raise _Corrupt(_reason(err)) from None
        if data:
            self._recent.append((self.total, data))
        self.total += len(data)
        return data

    def block_at(self, offset: int) -> bytes | None:
        """The (up to) 512 bytes read at ``offset``, or None if they are no longer kept."""
        if not self._recent or self._recent[0][0] > offset:
            return None
        start = self._recent[0][0]
        joined = b"".join(chunk for _, chunk in self._recent)
        return joined[offset - start : offset - start + tarfile.BLOCKSIZE]

    def drain(self) -> None:
        """Read to the end: the decoders check their end marker and checksum only there."""
        while self.read(_CHUNK):
            pass


def _reason(err: BaseException) -> str:
    text = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
    return text or type(err).__name__


_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x5d\x00\x00\x80", "xz"),  # the older .lzma format, which lzma's FORMAT_AUTO reads too
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


@contextlib.contextmanager
def _decompressed(raw: io.BufferedReader) -> Iterator[_Readable]:
    head = raw.peek(6)[:6]  # not read(): the archive may be a pipe
    kind = next((name for magic, name in _MAGIC if head.startswith(magic)), "tar")
    if kind == "gzip":
        with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
            yield stream
    elif kind == "bzip2":
        with bz2.BZ2File(raw) as stream:
            yield stream
    elif kind == "xz":
        if lzma is None:
            raise _Corrupt("xz-compressed, and this Python has no lzma module")
        with lzma.LZMAFile(raw) as stream:
            yield stream
    elif kind == "zstd":
        with _zstd(raw) as stream:
            yield stream
    else:
        yield raw


@contextlib.contextmanager
def _zstd(raw: io.BufferedReader) -> Iterator[_Readable]:
    # Python has no zstd decoder before 3.14; the zstd command reads the same open file (its stdin
    # shares our file offset, so progress still sees how far it got).
    command = shutil.which("zstd")
    if command is None:
        raise _Corrupt("zstd-compressed, and there is no zstd command on this host")
    # zstd reads the file itself, from its start (raw.seek would only move within peek's buffer).
    os.lseek(raw.fileno(), 0, os.SEEK_SET)
    process = subprocess.Popen([command, "-dcq"], stdin=raw, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    try:
        try:
            yield process.stdout
        except (_Corrupt, tarfile.TarError):
            # The tar data broke off ("empty file", "unexpected end of data"): if zstd's output
            # ended there, zstd's own error is the reason.
            if process.stdout.read(1) == b"":
                _zstd_verdict(process, process.stderr)
            raise
        _zstd_verdict(process, process.stderr)  # our reader drained stdout
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()
        process.stderr.close()


def _zstd_verdict(process: subprocess.Popen[bytes], stderr: IO[bytes]) -> None:
    """zstd's verdict on its input, its exit status, once its output has ended (it is exiting)."""
    message = stderr.read().decode(errors="replace").strip().splitlines()
    if process.wait() != 0:
        raise _Corrupt(f"zstd: {message[-1] if message else 'failed'}")


# --- writing -----------------------------------------------------------------------------------------


def _parts(name: str) -> list[str]:
    """Path components below the root; ``[]`` is the root itself. Leading "/" and "." are dropped."""
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise _Refused("path leaves the rootfs ('..')")
    return parts


class _Rootfs:
    """The rootfs being filled, reached only through descriptors resolved without following symlinks."""

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        self.chown = os.geteuid() == 0
        # Members come grouped by directory: keep the last parent's descriptor open.
        self._cached: tuple[str, int] | None = None
        #: Directories whose mode and mtime are set at the end (path -> member).
        self.directories: dict[str, tarfile.TarInfo] = {}

    def close(self) -> None:
        self._forget_parent()

    def _forget_parent(self) -> None:
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None

    def open_dir(self, path: str, create: bool) -> int:
        try:
            try:
                return open_in_root(self.root_fd, path, os.O_PATH | os.O_DIRECTORY, resolve=_NO_SYMLINKS)
            except FileNotFoundError:
                if not create:
                    raise
                # Directories the archive does not list get tar's default: 0755, root's.
                return makedirs_in_root(self.root_fd, path, 0o755, resolve=_NO_SYMLINKS)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise _Refused(f"{path!r} goes through a symlink: not extracting through it") from None
            raise

    def parent(self, parts: list[str]) -> int:
        """A borrowed O_PATH descriptor of the directory holding ``parts``, made if missing.

        The cached one stays right: only an empty directory is ever removed, and the cached one
        holds at least the entry made in it last."""
        path = "/".join(parts[:-1]) or "."
        if self._cached is not None and self._cached[0] == path:
            return self._cached[1]
        fd = self.open_dir(path, create=True)
        self._forget_parent()
        self._cached = (path, fd)
        return fd

    def remove(self, parent_fd: int, parts: list[str]) -> None:
        """Make room for a new entry: unlink what is there (a symlink itself, never its target)."""
        name = parts[-1]
        if stat.S_ISDIR(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode):
            os.rmdir(name, dir_fd=parent_fd)  # only an empty one, as GNU tar
            self.directories.pop("/".join(parts), None)
        else:
            os.unlink(name, dir_fd=parent_fd)

    def replacing(self, parts: list[str], make: Callable[[int, str], Any]) -> Any:
        """``make(parent_fd, name)``, removing an existing entry once if it is in the way."""
        parent_fd = self.parent(parts)
        try:
            return make(parent_fd, parts[-1])
        except FileExistsError:
            self.remove(parent_fd, parts)
            return make(parent_fd, parts[-1])

    def owner(self, parent_fd: int, name: str, member: tarfile.TarInfo) -> None:
        if self.chown:
            os.chown(name, member.uid, member.gid, dir_fd=parent_fd, follow_symlinks=False)

    def finish_directories(self) -> None:
        # Deepest first: a parent made unsearchable must not hide its children (as non-root).
        for path in sorted(self.directories, key=lambda item: item.count("/"), reverse=True):
            member = self.directories[path]
            parts = path.split("/") if path != "." else []
            parent_fd = self.parent(parts) if parts else self.root_fd
            name = parts[-1] if parts else "."
            _set_mode_and_time(parent_fd, name, member)


def _set_mode_and_time(parent_fd: int, name: str, member: tarfile.TarInfo) -> None:
    """The member's mode (after the chown, which clears setuid/setgid) and mtime on an entry made here."""
    os.chmod(name, member.mode & 0o7777, dir_fd=parent_fd, follow_symlinks=False)
    os.utime(name, (member.mtime, member.mtime), dir_fd=parent_fd, follow_symlinks=False)


def _extract_member(rootfs: _Rootfs, archive: tarfile.TarFile, member: tarfile.TarInfo,
                    report: Callable[[], None]) -> None:
    parts = _parts(member.name)
    if member.isdir():
        _make_directory(rootfs, parts, member)
    elif member.islnk():
        _make_hard_link(rootfs, parts, member)
    elif not parts:
        raise _Refused("only a directory can be the rootfs itself")
    elif member.issym():
        _make_symlink(rootfs, parts, member)
    elif member.ischr() or member.isblk() or member.isfifo():
        _make_node(rootfs, parts, member)
    else:
        # Regular, contiguous, sparse and (as tarfile does) unknown types are files.
        _make_file(rootfs, parts, member, archive, report)


def _make_directory(rootfs: _Rootfs, parts: list[str], member: tarfile.TarInfo) -> None:
    if parts:
        parent_fd, name = rootfs.parent(parts), parts[-1]
        try:
            # Private until its mode is set at the end.
            os.mkdir(name, 0o700, dir_fd=parent_fd)
        except FileExistsError:
            if not stat.S_ISDIR(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode):
                rootfs.remove(parent_fd, parts)
                os.mkdir(name, 0o700, dir_fd=parent_fd)
    else:
        parent_fd, name = rootfs.root_fd, "."
    rootfs.owner(parent_fd, name, member)
    rootfs.directories["/".join(parts) or "."] = member


def _make_file(rootfs: _Rootfs, parts: list[str], member: tarfile.TarInfo, archive: tarfile.TarFile,
               report: Callable[[], None]) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = rootfs.replacing(parts, lambda parent_fd, name: os.open(name, flags, 0o600, dir_fd=parent_fd))
    with open(fd, "wb", buffering=0) as out:
        data = archive.extractfile(member)
        assert data is not None  # a regular member always has data (possibly empty)
        while True:
            try:
                chunk = data.read(_CHUNK)
            except tarfile.ReadError as err:  # data cut short (the decoders' errors are _Corrupt)
                raise _Corrupt(str(err)) from None
            if not chunk:
                break
            view = memoryview(chunk)
            while view:
                view = view[out.write(view) or 0 :]
            report()
        if rootfs.chown:
            os.fchown(fd, member.uid, member.gid)
        os.fchmod(fd, member.mode & 0o7777)  # after chown, which clears setuid/setgid
        os.utime(fd, (member.mtime, member.mtime))


def _make_symlink(rootfs: _Rootfs, parts: list[str], member: tarfile.TarInfo) -> None:
    # The target is stored verbatim: it is resolved inside the container, never by us.
    rootfs.replacing(parts, lambda parent_fd, name: os.symlink(member.linkname, name, dir_fd=parent_fd))
    parent_fd = rootfs.parent(parts)
    rootfs.owner(parent_fd, parts[-1], member)
    os.utime(parts[-1], (member.mtime, member.mtime), dir_fd=parent_fd, follow_symlinks=False)


def _make_node(rootfs: _Rootfs, parts: list[str], member: tarfile.TarInfo) -> None:
    kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() else stat.S_IFIFO
    device = os.makedev(member.devmajor, member.devminor) if kind != stat.S_IFIFO else 0
    rootfs.replacing(parts, lambda parent_fd, name: os.mknod(name, kind | 0o600, device, dir_fd=parent_fd))
    parent_fd = rootfs.parent(parts)
    rootfs.owner(parent_fd, parts[-1], member)
    _set_mode_and_time(parent_fd, parts[-1], member)


def _make_hard_link(rootfs: _Rootfs, parts: list[str], member: tarfile.TarInfo) -> None:
    target = _parts(member.linkname)
    if not parts or not target:
        raise _Refused("a hard link to or at the rootfs itself")
    if target == parts:
        return  # a link to itself: the entry is already what it should be
    # The target's directory is resolved like any other: inside the root, through no symlink, and
    # never created: only an entry this archive already made can be linked.
    try:
        source_dir = rootfs.open_dir("/".join(target[:-1]) or ".", create=False)
    except FileNotFoundError:
        raise _Refused(f"hard link target {member.linkname!r} was not extracted before it") from None
    try:
        def link(parent_fd: int, name: str) -> None:
            # No AT_SYMLINK_FOLLOW: a symlink target is linked as the symlink itself.
            os.link(target[-1], name, src_dir_fd=source_dir, dst_dir_fd=parent_fd, follow_symlinks=False)

        rootfs.replacing(parts, link)
    except FileNotFoundError:
        raise _Refused(f"hard link target {member.linkname!r} was not extracted before it") from None
    finally:
        os.close(source_dir)


# --- the whole archive -------------------------------------------------------------------------------


def _check_end(reader: _CheckedReader, offset: int) -> None:
    """tarfile ends its member list quietly at a zero block, but also at the end of the data, at a
    header cut short and at a header whose checksum is wrong: only the first is a complete archive."""
    block = reader.block_at(offset)
    if block is None:
        raise _Corrupt("cannot check the end of the archive")
    if len(block) == 0:
        raise _Corrupt("truncated archive (no end-of-archive block)")
    if len(block) < tarfile.BLOCKSIZE:
        raise _Corrupt("truncated archive (it ends inside a header)")
    if block.count(0) != tarfile.BLOCKSIZE:
        raise _Corrupt("invalid header (bad checksum or field)")
    # The decoders check their own end marker and checksum only when read to the end.
    reader.drain()


def extract_archive(source: str, rootfs: str, on_progress: Progress | None = None) -> None:
    """Unpack ``source`` (tar, optionally gzip/bzip2/xz/zstd compressed) into the existing, empty
    directory ``rootfs``. Raises :class:`ArchiveError` (one line) if it is corrupt or hostile."""
    with open(source, "rb") as raw:
        size = os.fstat(raw.fileno()).st_size if stat.S_ISREG(os.fstat(raw.fileno()).st_mode) else 0

        def report() -> None:
            # The file offset is how much of the (compressed) archive was read; a pipe has none.
            if on_progress is not None and size:
                on_progress(os.lseek(raw.fileno(), 0, os.SEEK_CUR), size)

        root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        target = _Rootfs(root_fd)
        index = 1
        step = "reading the archive"
        try:
            with _decompressed(raw) as stream:
                reader = _CheckedReader(stream)
                archive = tarfile.open(fileobj=reader, mode="r|")  # type: ignore[call-overload]
                while (member := archive.next()) is not None:
                    step = f"member {index} {member.name!r}"
                    _extract_member(target, archive, member, report)
                    report()
                    index += 1
                step = "after the last member"
                _check_end(reader, archive.offset)
            step = "setting directory modes and times"
            target.finish_directories()
            report()
        except (_Corrupt, tarfile.TarError) as err:
            raise ArchiveError(f"tar: {source}: corrupt archive at member {index}: {err}") from None
        except (_Refused, OSError, ValueError, OverflowError) as err:  # OverflowError: an mtime or id too big
            raise ArchiveError(f"tar: {source}: {step}: {_reason(err)}") from None
        finally:
            target.close()
            os.close(root_fd)
