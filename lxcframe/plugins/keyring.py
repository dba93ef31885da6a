"""A new anonymous session keyring for every container, so it cannot read the caller's keys.

``lxc.keyring.session = 0`` keeps the caller's session keyring, as LXC documents it (LXC's own code
stores the value inverted; lxcframe follows the documentation). A keyctl that is missing or
blocked (ENOSYS, EACCES, EPERM: e.g. a seccomp policy) never fails the start; it is logged.
"""

from __future__ import annotations

import errno

import attrs

from lxcframe import syscalls
from lxcframe.config.keys import KeySpec, boolean01
from lxcframe.config.model import ContainerConfig
from lxcframe.context import ChildContext
from lxcframe.hooks import hookimpl
from lxcframe.probe import Probe, never_raises

#: Joining a keyring by this name gives the container its own, recognisable in /proc/keys.
SESSION_NAME = "_ses"


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    return [KeySpec("lxc.keyring.session", boolean01, doc="0: keep the caller's session keyring (default 1)")]


@hookimpl
def lxcframe_check() -> list[Probe]:
    return [probe_session_keyring()]


@never_raises("keyring:session")
def probe_session_keyring() -> Probe:
    """keyctl answers for the caller's session keyring, so a container can be given one of its own."""
    serial = syscalls.session_keyring_id()
    return Probe("keyring:session", True, f"keyctl works (this process's session keyring: {serial})")


@attrs.frozen
class KeyringPart:
    """Whether init joins a session keyring of its own (``lxc.keyring.session``, default 1)."""

    new_session: bool


@hookimpl
def lxcframe_plan(config: ContainerConfig) -> KeyringPart:
    return KeyringPart(new_session=config.get("lxc.keyring.session", True) is not False)


@hookimpl
def lxcframe_child_pre_pivot(ctx: ChildContext) -> None:
    # Joined once the child has the container's ids (after the rootfs stage), so that the keyring
    # belongs to the container's root; first (lxcframe.stages.PLUGIN_ORDER), so that mount and
    # autodev hooks already have it.
    if not ctx.plan.part(KeyringPart).new_session:
        ctx.log.debug("keeping the caller's session keyring (lxc.keyring.session = 0)")
        return
    try:
        serial = syscalls.join_session_keyring(SESSION_NAME)
    except OSError as err:
        quiet = err.errno in (errno.ENOSYS, errno.EACCES, errno.EPERM)
        (ctx.log.debug if quiet else ctx.log.error)("no new session keyring", error=str(err))
        return
    ctx.log.debug("new session keyring", serial=serial)
