"""python3-lxc's ``lxc.Container`` over a native :class:`lxcframe.container.Container`.

Every call returns what python3-lxc returns (``True``/``False``, ``()``, ``-1``) instead of raising;
the reason of a refusal goes to lxcframe's log. The native object is ``self._native``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from lxcframe.compat._config import ConfigCalls
from lxcframe.compat._edits import PendingEdits
from lxcframe.compat._network import ContainerNetworkList
from lxcframe.compat._running import RunningCalls
from lxcframe.compat._shared import refused
from lxcframe.errors import ContainerError, LxcframeError

#: The ``bdevtype`` names of liblxc's overlay backing store (``overlayfs`` is its older spelling).
_OVERLAY = ("overlay", "overlayfs")

#: ``shutdown(-1)`` waits for as long as this (seconds): for ever, as far as a caller can tell.
_FOREVER = 10.0 * 365 * 24 * 3600


def _template_args(args: Any) -> tuple[str, ...]:
    """A dict becomes ``--key value`` pairs; any other iterable of str is taken as it is (python3-lxc
    makes a tuple of it; an item that is not a str is a ``ValueError``)."""
    if isinstance(args, Mapping):
        pairs: list[str] = []
        for key, value in args.items():
            pairs += [f"--{key}", f"{value}"]
        return tuple(pairs)
    words = tuple(args)
    if not all(isinstance(word, str) for word in words):
        raise ValueError("Expected a string")
    return words


class Container(ConfigCalls, RunningCalls):
    """A container, as python3-lxc's ``lxc.Container(name, config_path=None)``."""

    def __init__(self, name: str, config_path: str | os.PathLike[str] | None = None) -> None:
        from lxcframe.container import Container as Native

        if not isinstance(name, str):
            raise TypeError(f"argument 1 must be str, not {type(name).__name__}")
        try:
            self._native = Native(name, os.fspath(config_path) if config_path else None)
        except (LxcframeError, OSError) as err:
            raise RuntimeError(f"error during init for container '{name}': {err}") from None
        self._loaded = self._native.defined
        self._pending = PendingEdits(self._native)
        self.network = ContainerNetworkList(self)

    # --- properties ----------------------------------------------------------------------------

    @property
    def name(self) -> str:  # type: ignore[override]
        return str(self._native.name)

    @property
    def config_file_name(self) -> str:
        return str(self._native.config_file_name)

    @property
    def defined(self) -> bool:
        return bool(self._native.defined)

    @property
    def state(self) -> str:
        try:
            return str(self._native.state).upper()
        except LxcframeError as err:
            refused(self.name, "state", err)
            return "STOPPED"

    @property
    def running(self) -> bool:
        return self.state != "STOPPED"

    @property
    def init_pid(self) -> int:
        try:
            return int(self._native.init_pid)
        except LxcframeError:
            return -1

    @property
    def controllable(self) -> bool:
        return os.geteuid() == 0 or os.access(self._native.lxcpath, os.W_OK)

    # --- lifecycle -----------------------------------------------------------------------------

    def create(self, template: str | None = None, flags: int = 0, args: Any = (), bdevtype: str | None = None,
               fssize: int = 0) -> bool:
        template_args = _template_args(args)
        if bdevtype not in (None, "dir", "best"):
            return refused(self.name, "create", ContainerError(f"backing store {bdevtype!r}: only dir is supported"))
        if template is None:
            # No template: only the config in memory is saved (LXC adopts an existing rootfs path).
            return self.save_config()
        # Edits made before create() are its config (python3-lxc's create writes them first).
        was_defined = self._native.defined
        try:
            self._native.create(template, template_args, config=self._pending.lines())
        except LxcframeError as err:
            refused(self.name, "create", err)
            if not was_defined:
                # python3-lxc 5.0 saves the config in memory before it creates: a failed create leaves
                # the container defined by that config.
                self.save_config()
            return False
        self._pending.clear_all()
        self._loaded = True
        return True

    def start(self, useinit: Any = False, daemonize: Any = True, close_fds: Any = False,
              cmd: Sequence[str] = ()) -> bool:
        # As python3-lxc: only a tuple replaces the init command (a list is ignored), only True counts.
        argv = tuple(cmd) if isinstance(cmd, tuple) and cmd else None
        if argv is not None and not all(isinstance(word, str) for word in argv):
            raise ValueError("Expected a string")
        try:
            if useinit is True:
                if daemonize is not False:
                    raise ContainerError("useinit runs the command under lxcframe's init in the foreground only "
                                         "(start(useinit=True, daemonize=False))")
                self._native.execute(argv)
            elif daemonize is False:
                self._native.start(argv, foreground=True)
            else:
                self._native.start(argv)
        except LxcframeError as err:
            return refused(self.name, "start", err)
        return True

    def stop(self) -> bool:
        if not self.running:
            return True
        try:
            self._native.stop(kill=True)
        except LxcframeError as err:
            return refused(self.name, "stop", err)
        return True

    def shutdown(self, timeout: int = -1) -> bool:
        if not isinstance(timeout, int):
            raise TypeError(f"timeout must be an integer, not {type(timeout).__name__}")
        if not self.running:
            return True
        try:
            done = self._native.shutdown(timeout=_FOREVER if timeout < 0 else float(timeout))
        except LxcframeError as err:
            return refused(self.name, "shutdown", err)
        # timeout 0: the halt signal was sent, which is all python3-lxc asks of it.
        return bool(done) or timeout == 0

    def reboot(self) -> bool:
        """Send init ``lxc.signal.reboot`` (no waiting)."""
        return self._call("reboot", self._native.reboot)

    def reboot2(self, timeout: int = -1) -> bool:
        """LXC 3.1's reboot that waits up to ``timeout`` seconds (-1: for ever) for the new init."""
        try:
            return bool(self._native.reboot2(timeout))
        except LxcframeError as err:
            return refused(self.name, "reboot2", err)

    def freeze(self) -> bool:
        return self._call("freeze", self._native.freeze)

    def unfreeze(self) -> bool:
        return self._call("unfreeze", self._native.unfreeze)

    def wait(self, state: Any, timeout: int = -1) -> bool:
        if isinstance(state, str):
            state = state.upper()
        else:
            raise TypeError(f"argument 1 must be str, not {type(state).__name__}")
        try:
            return bool(self._native.wait(state, timeout))
        except LxcframeError:
            return False

    def destroy(self) -> bool:
        try:
            self._native.destroy()
        except LxcframeError as err:
            return refused(self.name, "destroy", err)
        self.clear_config()  # python3-lxc 5.0: the object holds no config once its container is gone
        return True

    def _call(self, what: str, call: Any, *args: Any, **kwargs: Any) -> bool:
        try:
            call(*args, **kwargs)
        except (LxcframeError, OSError) as err:
            return refused(self.name, what, err)
        return True

    # --- copies --------------------------------------------------------------------------------

    def clone(self, newname: str, config_path: str | None = None, flags: int = 0, bdevtype: str | None = None,
              bdevdata: str | None = None, newsize: int = 0, hookargs: Any = ()) -> Any:
        from lxcframe.compat import _constants as lxc

        if not isinstance(hookargs, tuple):
            raise ValueError("hookargs needs to be a tuple")
        snapshot = bool(flags & (lxc.LXC_CLONE_SNAPSHOT | lxc.LXC_CLONE_MAYBE_SNAPSHOT))
        # An overlay is a snapshot's backing store (the source's rootfs its lower layer), as in liblxc,
        # which refuses an overlay copy without the snapshot flag.
        if bdevtype not in (None, "dir", *(_OVERLAY if snapshot else ())) or hookargs or newsize:
            return refused(self.name, "clone", ContainerError("only dir copies and snapshots (bdevtype overlayfs with "
                                                              "LXC_CLONE_SNAPSHOT), without hook arguments or sizes"))
        try:
            self._native.clone(newname, lxcpath=os.fspath(config_path) if config_path else None, snapshot=snapshot,
                               keep_name=bool(flags & lxc.LXC_CLONE_KEEPNAME),
                               keep_mac=bool(flags & lxc.LXC_CLONE_KEEPMACADDR))
        except LxcframeError as err:
            return refused(self.name, "clone", err)
        # As python3-lxc: the new object looks in config_path, the default lxcpath when none was given.
        return Container(newname, config_path=config_path)

    def rename(self, new_name: str) -> Any:
        try:
            self._native.rename(new_name)
        except LxcframeError as err:
            return refused(self.name, "rename", err)
        return Container(new_name)  # as python3-lxc: in the default lxcpath

    def snapshot(self, comment_path: str | None = None) -> Any:
        try:
            return str(self._native.snapshot(comment_path))
        except LxcframeError as err:
            return refused(self.name, "snapshot", err)

    def snapshot_list(self) -> tuple[tuple[str, str, str, str], ...]:
        """``(name, comment_path, timestamp, lxcpath)`` of each snapshot; liblxc names the comment file
        whether or not one was written. ``KeyError`` when there is no such container."""
        try:
            if not self._native.defined:
                raise ContainerError(f"{self.name}: no such container")
            snaps = self._native.snapshot_list()
        except LxcframeError:
            raise KeyError("Unable to list snapshots") from None
        return tuple((s.name, s.comment_path or os.path.join(s.lxcpath, s.name, "comment"), s.timestamp, s.lxcpath)
                     for s in snaps)

    def snapshot_restore(self, name: str, newname: str | None = None) -> bool:
        return self._call("snapshot_restore", self._native.snapshot_restore, name, newname)

    def snapshot_destroy(self, name: str) -> bool:
        return self._call("snapshot_destroy", self._native.snapshot_destroy, name)

    # --- what lxcframe does not do (liblxc returns False as for any failure) --------------------

    def add_device_node(self, src_path: str, dest_path: str | None = None) -> bool:
        return self._call("add_device_node", self._native.add_device_node, src_path, dest_path)

    def remove_device_node(self, src_path: str, dest_path: str | None = None) -> bool:
        return self._call("remove_device_node", self._native.remove_device_node, src_path, dest_path)

    def attach_interface(self, src_ifname: str, dst_ifname: str | None = None) -> bool:
        return self._call("attach_interface", self._native.attach_interface, src_ifname, dst_ifname)

    def detach_interface(self, ifname: str) -> bool:
        # python3-lxc passes no destination name: the interface comes back under its own.
        return self._call("detach_interface", self._native.detach_interface, ifname)
