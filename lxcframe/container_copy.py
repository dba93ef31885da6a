"""The copy methods of :class:`lxcframe.container.Container`: clone, rename and snapshots, as LXC's.

All of them work on a stopped container only and hold the command lock of every container they
read or make (always taken in one order). The copying itself is :mod:`lxcframe.copying`; where
snapshots are kept, :mod:`lxcframe.copying_snapshots`.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Self

from lxcframe import rootfs_overlay
from lxcframe import state as st
from lxcframe.errors import ContainerError
from lxcframe.log import bound_container

if TYPE_CHECKING:
    from lxcframe.config.model import ContainerConfig
    from lxcframe.copying import CopyRequest
    from lxcframe.copying_snapshots import Snapshot


class CopyMethods:
    """Copies of a stopped container: ``clone``, ``rename``, ``snapshot`` and its kin."""

    # What the Container class this is mixed into provides.
    name: str
    lxcpath: str
    server: bool | None
    _plugins: Any
    _disable: tuple[str, ...]
    if TYPE_CHECKING:
        def __init__(self, name: str, lxcpath: str | None = None, *, plugins: Any = None,
                     disable: tuple[str, ...] = (), server: bool | None = None) -> None: ...
        @property
        def plugins(self) -> Any: ...
        @property
        def container_dir(self) -> str: ...
        @property
        def defined(self) -> bool: ...
        @property
        def has_unsaved_config(self) -> bool: ...
        _edits: Any
        @property
        def config_file_name(self) -> str: ...
        def load_config(self) -> ContainerConfig: ...
        def append_config_item(self, key: str, value: str) -> None: ...
        def current_state(self) -> st.ContainerState | None: ...
        def _clean_stale(self) -> bool: ...

    # --- clone and rename ----------------------------------------------------------------------

    def clone(self, newname: str, *, lxcpath: str | None = None, snapshot: bool = False,
              keep_name: bool = False, keep_mac: bool = False) -> Self:
        """Copy this stopped container to ``newname`` (in ``lxcpath``, by default this one's).

        ``snapshot`` makes an overlay snapshot (``lxc-copy -s``): the copy writes to a ``delta0``
        layer of its own over this container's rootfs. Unless kept, ``lxc.uts.name`` becomes the new
        name and every ``lxc.net.N.hwaddr`` a new address.
        """
        target = self._sibling(newname, lxcpath or self.lxcpath)
        with bound_container(self.name), _locks((self.lxcpath, self.name), (target.lxcpath, newname)):
            rootfs = self._rootfs_to_copy(whole=not snapshot)
            self._refuse_unless_stopped("copying it")
            _refuse_existing(target)
            _copy(self._request(target.container_dir, rootfs, snapshot=snapshot,
                                uts_name=None if keep_name else newname, new_macs=not keep_mac))
        return target

    def ephemeral_copy(self, newname: str | None = None, *, lxcpath: str | None = None, keep_data: bool = False,
                       keep_name: bool = False, keep_mac: bool = False) -> Self:
        """An overlay snapshot of this stopped container for ``lxc-copy -e`` to start: its config says
        ``lxc.ephemeral = 1`` (unless ``keep_data``), so it is destroyed when it stops.

        ``newname`` by default is this name, ``_`` and six random letters and digits (LXC's
        ``NAME_XXXXXX``). The copy is not started; returns its object.
        """
        target = lxcpath or self.lxcpath
        if newname is None:
            newname = _free_name(self.name, target)
        source = self
        if not keep_data:
            # Written into the copy's config with the copy, not after it: no moment where it exists
            # without the key. This object's own unsaved edits come along, as in any copy.
            source = self._sibling(self.name, self.lxcpath)
            source._edits = self._edits
            source.append_config_item("lxc.ephemeral", "1")
        return source.clone(newname, lxcpath=target, snapshot=True, keep_name=keep_name, keep_mac=keep_mac)

    def rename(self, newname: str) -> Self:
        """Move this stopped container (its directory, snapshots included) to ``newname``.

        As LXC's rename: paths below the old directory in its config (and its snapshots') name the
        new one, and ``lxc.uts.name`` becomes the new name. This object names nothing afterwards.
        """
        from lxcframe import copying

        target = self._sibling(newname, self.lxcpath)
        with bound_container(self.name), _locks((self.lxcpath, self.name), (target.lxcpath, newname)):
            self.load_config()  # it exists, and its config reads
            self._refuse_unless_stopped("renaming it")
            _refuse_existing(target)
            copying.move_container(self.container_dir, target.container_dir, newname, self._edits_writer())
        return target

    # --- snapshots -----------------------------------------------------------------------------

    def snapshot(self, comment_path: str | None = None) -> str:
        """Keep a copy of this stopped container as ``snapN``; returns that name.

        ``comment_path``: a file whose content is kept with it as its comment.
        """
        from lxcframe import copying_snapshots as snaps

        with bound_container(self.name), _locks((self.lxcpath, self.name)):
            rootfs = self._rootfs_to_copy(whole=False)
            self._refuse_unless_stopped("taking a snapshot")
            extra = [(snaps.TS, snaps.timestamp_now())]
            if comment_path is not None:
                try:
                    with open(comment_path, "rb") as handle:
                        extra.append((snaps.COMMENT, handle.read()))
                except OSError as err:
                    raise ContainerError(f"{self.name}: cannot read the comment file {comment_path}: "
                                         f"{err.strerror}") from None
            name = snaps.next_name(self.container_dir)
            directory = snaps.snaps_dir(self.container_dir)
            had_snaps = os.path.isdir(directory)
            # An overlay container's snapshot is an overlay snapshot (LXC's too): its delta is copied.
            request = self._request(os.path.join(directory, name), rootfs,
                                    snapshot=rootfs_overlay.is_overlay(rootfs), uts_name=None, new_macs=False)
            try:
                _copy(_with_files(request, tuple(extra)))
            except BaseException:
                if not had_snaps:
                    with contextlib.suppress(OSError):
                        os.rmdir(directory)
                raise
        return name

    def snapshot_list(self) -> list[Snapshot]:
        from lxcframe import copying_snapshots as snaps

        return [snaps.read_snapshot(self.container_dir, name) for name in snaps.snapshot_names(self.container_dir)]

    def snapshot_restore(self, name: str, newname: str | None = None) -> Self:
        """Make the container of snapshot ``name`` again: over this one (stopped) when ``newname`` is
        ``None`` or this name, else as a new container ``newname`` beside it.

        Over this one, its snapshots stay and the snapshot's config is taken as it was (its host
        name and MAC addresses). A new container gets its name as host name and new MAC addresses,
        as a clone does.
        """
        from lxcframe import copying
        from lxcframe import copying_snapshots as snaps

        newname = newname or self.name
        target = self._sibling(newname, self.lxcpath)
        with bound_container(self.name), _locks((self.lxcpath, self.name), (self.lxcpath, newname)):
            snap = self._snapshot(name)
            rootfs = snap._rootfs_to_copy(whole=False)
            in_place = newname == self.name
            request = snap._request(target.container_dir, rootfs, snapshot=rootfs_overlay.is_overlay(rootfs),
                                    uts_name=None if in_place else newname, new_macs=not in_place)
            request = _with_skip(request, snaps.SNAPSHOT_ONLY)
            if in_place:
                self._refuse_unless_stopped("restoring a snapshot over it")
                copying.replace_container(request)
            else:
                _refuse_existing(target)
                _copy(request)
        return target

    def snapshot_destroy(self, name: str) -> None:
        import shutil

        from lxcframe import copying_snapshots as snaps

        with bound_container(self.name), _locks((self.lxcpath, self.name)):
            snap = self._snapshot(name)
            shutil.rmtree(snap.container_dir)
            with contextlib.suppress(OSError):  # the last one: no empty snaps directory is left
                os.rmdir(snaps.snaps_dir(self.container_dir))

    def _refuse_if_snapshots(self) -> None:
        """For ``destroy``: a container with snapshots is refused, as LXC's ``destroy`` does."""
        from lxcframe.copying_snapshots import snapshot_names

        names = snapshot_names(self.container_dir)
        if names:
            raise ContainerError(f"{self.name}: has snapshots ({', '.join(names)}); destroy them first")

    # --- helpers -------------------------------------------------------------------------------

    def _sibling(self, name: str, lxcpath: str) -> Self:
        return type(self)(name, lxcpath, plugins=self._plugins, disable=self._disable, server=self.server)

    def _snapshot(self, name: str) -> Self:
        from lxcframe import copying_snapshots as snaps

        known = snaps.snapshot_names(self.container_dir)
        if name not in known:
            raise ContainerError(f"{self.name}: no snapshot {name!r} (it has {', '.join(known) or 'none'})")
        return self._sibling(name, snaps.snaps_dir(self.container_dir))

    def _rootfs_to_copy(self, *, whole: bool) -> str:
        """The validated ``lxc.rootfs.path``; refused when missing or not copyable as asked."""
        if not self.defined:  # unsaved edits alone are no container to copy
            raise ContainerError(f"{self.name}: no such container (no {self.config_file_name})")
        config = self.load_config()
        rootfs: str | None = config.get("lxc.rootfs.path")
        if not rootfs:
            raise ContainerError(f"{self.name}: {self.config_file_name} sets no lxc.rootfs.path: no rootfs to copy")
        if rootfs_overlay.is_overlay(rootfs):
            if whole:
                # LXC mounts the layers and copies what they show; whiteouts and opaque directories
                # make a copy of the layers themselves something else. The snapshot keeps the layers.
                raise ContainerError(f"{self.name}: its rootfs is an overlay ({rootfs}): only an overlay "
                                     "snapshot of it can be made (snapshot=True)")
        elif not os.path.isdir(rootfs):
            raise ContainerError(f"{config.where('lxc.rootfs.path')}lxc.rootfs.path: {rootfs} is not a directory")
        return rootfs

    def _refuse_unless_stopped(self, doing: str) -> None:
        self._clean_stale()
        current = self.current_state()
        if current is not None:
            raise ContainerError(f"{self.name}: is {current.state.lower()}: stop it before {doing}")

    def _request(self, target_dir: str, rootfs: str, *, snapshot: bool, uts_name: str | None,
                 new_macs: bool) -> CopyRequest:
        from lxcframe.copying import CopyRequest

        return CopyRequest(name=self.name, source_dir=self.container_dir, source_config=self.config_file_name,
                           source_rootfs=rootfs, target_dir=target_dir, uts_name=uts_name, new_macs=new_macs,
                           snapshot=snapshot, save_edits=self._edits_writer())

    def _edits_writer(self) -> Callable[[str], None] | None:
        """What writes this object's unsaved config edits into a copy of its config file, if it has any."""
        if not self.has_unsaved_config:
            return None
        from lxcframe.config.edits import save_edits

        return functools.partial(save_edits, registry=self.plugins.key_registry(), edits=self._edits)


def _free_name(name: str, lxcpath: str) -> str:
    """``NAME_`` and six random letters and digits, no container of ``lxcpath`` has yet."""
    import secrets
    import string

    alphabet = string.ascii_letters + string.digits
    while True:
        candidate = f"{name}_{''.join(secrets.choice(alphabet) for _ in range(6))}"
        if not os.path.lexists(os.path.join(lxcpath, candidate)):
            return candidate


def _refuse_existing(target: CopyMethods) -> None:
    if os.path.lexists(target.container_dir):
        raise ContainerError(f"{target.name}: already exists ({target.container_dir})")


def _copy(request: CopyRequest) -> None:
    from lxcframe import copying

    copying.copy_container(request)


def _with_files(request: CopyRequest, files: tuple[tuple[str, bytes], ...]) -> CopyRequest:
    import attrs

    return attrs.evolve(request, extra_files=files)


def _with_skip(request: CopyRequest, names: frozenset[str]) -> CopyRequest:
    import attrs

    return attrs.evolve(request, skip=names)


@contextlib.contextmanager
def _locks(*containers: tuple[str, str]) -> Iterator[None]:
    """The command locks of ``containers`` (lxcpath, name), taken in sorted order: two copies
    between the same containers in opposite directions cannot each hold one and wait for the other."""
    with contextlib.ExitStack() as stack:
        for lxcpath, name in sorted(set(containers)):
            stack.enter_context(st.command_lock(lxcpath, name))
        yield
