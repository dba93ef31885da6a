"""Copying a stopped container's directory: the work of clone, snapshot and snapshot_restore.

A copy is built whole in a hidden staging directory beside its target (``.NAME.copying``: no
container can have that name, see :mod:`lxcframe.names`), then renamed into place; any failure
removes the staging directory, so a failed copy leaves nothing behind and a half copy is never seen
under the target's name.

Files are copied by coreutils' ``cp -a -x --reflink=auto`` rather than by hand: it keeps owners,
modes, timestamps, device nodes, FIFOs, sockets, symlinks, hard links (within one run), sparse files,
xattrs and ACLs, copies extents by reference where the file system can (btrfs, XFS), and coreutils is
on every host, where rsync (LXC's own choice, ``-aHXS``) is an optional package; ``-x`` stays on the
source's file system, as LXC's ``--one-file-system`` does, so nothing a host process mounted inside
the rootfs is copied.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable

import attrs

from lxcframe import rootfs_overlay
from lxcframe.copying_config import ConfigRewrite, rewrite_config
from lxcframe.errors import ContainerError

#: Names in a container directory a copy does not take as they are: the config (rewritten), the
#: snapshots (a copy starts with none).
CONFIG, SNAPS = "config", "snaps"
#: The overlay snapshot's own layer and overlayfs's work directory beside it, as LXC names them.
DELTA, OLWORK = "delta0", "olwork"


@attrs.frozen
class CopyRequest:
    """Copy the container in ``source_dir`` (config at ``source_config``) to ``target_dir``."""

    name: str
    source_dir: str
    source_config: str
    #: The source's validated ``lxc.rootfs.path`` (a directory, or an ``overlay:`` value).
    source_rootfs: str
    target_dir: str
    #: ``lxc.uts.name`` of the copy; ``None`` keeps the source's.
    uts_name: str | None
    new_macs: bool
    #: An overlay snapshot (``lxc-copy -s``) instead of a whole copy of the rootfs.
    snapshot: bool
    #: Extra files of the copy, name → content (a snapshot's ``ts`` and ``comment``).
    extra_files: tuple[tuple[str, bytes], ...] = ()
    #: Names in the source directory that are not the container's (a snapshot's ``ts`` and ``comment``).
    skip: frozenset[str] = frozenset()
    #: Writes the source object's unsaved config edits into the copy of its config file given: the
    #: copy is of the config that object sees, as LXC's (which copies the config it holds in memory).
    save_edits: Callable[[str], None] | None = None


def staging_dir(target_dir: str) -> str:
    parent, name = os.path.split(target_dir)
    return os.path.join(parent, f".{name}.copying")


def copy_container(request: CopyRequest) -> None:
    """Make ``request.target_dir``, a copy of the source; all of it or nothing."""
    staging = build_copy(request)
    try:
        os.rename(staging, request.target_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def build_copy(request: CopyRequest) -> str:
    """The finished copy in its staging directory (the caller renames it into place)."""
    staging = staging_dir(request.target_dir)
    # The target's command lock is held: a staging directory found here was left by a killed copy.
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(os.path.dirname(staging), mode=0o755, exist_ok=True)
    os.mkdir(staging, 0o770)
    try:
        _fill(request, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def _fill(request: CopyRequest, staging: str) -> None:
    rootfs_value, skipped = _copy_rootfs(request, staging)
    for entry in sorted(os.listdir(request.source_dir)):
        path = os.path.normpath(os.path.join(request.source_dir, entry))
        if entry in (CONFIG, SNAPS) or entry in request.skip or path in skipped:
            continue
        copy_tree(request.name, os.path.join(request.source_dir, entry), os.path.join(staging, entry))
    rewrite = ConfigRewrite(old_dir=request.source_dir, new_dir=request.target_dir, rootfs=rootfs_value,
                            uts_name=request.uts_name, new_macs=request.new_macs)
    write_rewritten(request.source_config, os.path.join(staging, CONFIG), rewrite, request.save_edits)
    for name, content in request.extra_files:
        with open(os.path.join(staging, name), "wb") as handle:
            handle.write(content)


def _copy_rootfs(request: CopyRequest, staging: str) -> tuple[str, set[str]]:
    """Copy (or layer) the rootfs; the copy's ``lxc.rootfs.path`` and the source paths it covered."""
    source = request.source_rootfs
    if rootfs_overlay.is_overlay(source):
        # Only an overlay snapshot of an overlay container (the caller refuses a whole copy): the same
        # lower layer, a copy of the source's own delta.
        layers = rootfs_overlay.parse(source)
        copy_tree(request.name, layers.upper, os.path.join(staging, DELTA))
        os.mkdir(os.path.join(staging, OLWORK), 0o755)
        value = rootfs_overlay.OverlayRootfs(layers.lower, os.path.join(request.target_dir, DELTA)).value
        return value, {layers.upper, layers.workdir}
    if request.snapshot:
        os.mkdir(os.path.join(staging, DELTA), 0o755)
        os.mkdir(os.path.join(staging, OLWORK), 0o755)
        return rootfs_overlay.OverlayRootfs(source, os.path.join(request.target_dir, DELTA)).value, {
            os.path.normpath(source)}
    copy_tree(request.name, source, os.path.join(staging, "rootfs"))
    return "dir:" + os.path.join(request.target_dir, "rootfs"), {os.path.normpath(source)}


def write_rewritten(source: str, target: str, rewrite: ConfigRewrite,
                    save_edits: Callable[[str], None] | None) -> None:
    """Write the config file ``source`` (with the unsaved edits ``save_edits`` writes) to ``target``, rewritten."""
    shutil.copyfile(source, target)
    os.chmod(target, os.stat(source).st_mode & 0o7777)
    if save_edits is not None:
        save_edits(target)
    with open(target, encoding="utf-8") as handle:
        text = handle.read()
    with open(target, "w", encoding="utf-8") as handle:
        handle.write(rewrite_config(text, source, rewrite))


def copy_tree(name: str, source: str, target: str) -> None:
    """``cp -a`` of ``source`` to the new ``target``; :class:`ContainerError` with cp's first complaint."""
    done = subprocess.run(["cp", "-a", "-x", "--reflink=auto", "-T", "--", source, target],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace", check=False)
    if done.returncode != 0:
        complaints = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        more = f" (and {len(complaints) - 1} more)" if len(complaints) > 1 else ""
        raise ContainerError(f"{name}: copying {source} failed: {complaints[0]}{more}")


def replace_container(request: CopyRequest) -> None:
    """Put the copy in place of the container in ``request.target_dir``, which keeps its snapshots.

    The copy is finished before the container is touched; then three renames swap them, undone
    if one fails, so a failure leaves the container as it was.
    """
    staging = build_copy(request)
    target = request.target_dir
    aside = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.replaced")
    shutil.rmtree(aside, ignore_errors=True)  # left by a killed restore (the lock is held)
    steps = [(target, aside)]
    if os.path.isdir(os.path.join(target, SNAPS)):
        steps.append((os.path.join(aside, SNAPS), os.path.join(staging, SNAPS)))
    steps.append((staging, target))
    moves: list[tuple[str, str]] = []
    try:
        for source, destination in steps:
            os.rename(source, destination)
            moves.append((source, destination))
    except BaseException:
        for source, destination in reversed(moves):
            os.rename(destination, source)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(aside)


def move_container(old_dir: str, new_dir: str, uts_name: str, save_edits: Callable[[str], None] | None) -> None:
    """Rename the container in ``old_dir`` to ``new_dir``, its config's (and its snapshots') paths with it.

    The rewritten configs are written beside the old ones first, so a config that cannot be read or
    rewritten stops the rename before anything moved; they replace the old ones after the move.
    """
    from lxcframe.copying_snapshots import snapshot_names

    rewrites = [(CONFIG, ConfigRewrite(old_dir, new_dir, rootfs=None, uts_name=uts_name, new_macs=False),
                 save_edits)]
    rewrites += [(os.path.join(SNAPS, name, CONFIG), ConfigRewrite(old_dir, new_dir, None, None, False), None)
                 for name in snapshot_names(old_dir)]
    written: list[str] = []
    try:
        for relative, rewrite, edits in rewrites:
            path = os.path.join(old_dir, relative)
            written.append(path + _RENAMED)
            write_rewritten(path, path + _RENAMED, rewrite, edits)
        os.rename(old_dir, new_dir)
    except BaseException:
        for path in written:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        raise
    for relative, _, _ in rewrites:
        os.replace(os.path.join(new_dir, relative + _RENAMED), os.path.join(new_dir, relative))


#: The suffix of a rewritten config waiting for its container's rename.
_RENAMED = ".renamed"
