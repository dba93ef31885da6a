"""Keyrings: raw keyctl(2) (no libkeyutils needed) and the session keyring."""

from __future__ import annotations

from lxcframe.syscalls.constants import KEY_SPEC_SESSION_KEYRING, KEYCTL_GET_KEYRING_ID, KEYCTL_JOIN_SESSION_KEYRING
from lxcframe.syscalls.libc import _checked, _raw


def keyctl(operation: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """Raw keyctl(2) with integer arguments (no libkeyutils needed)."""
    return _checked("keyctl", _raw("keyctl", operation, arg2, arg3, arg4, arg5))


def join_session_keyring(name: str | None = None) -> int:
    """Join (or create) a session keyring; ``None`` makes an anonymous one.

    Containers get their own session keyring so they cannot see the host's
    keys. Returns the serial of the keyring now in use.
    """
    raw_name = name.encode() if name is not None else None
    result = _raw("keyctl", KEYCTL_JOIN_SESSION_KEYRING, raw_name)
    return _checked("keyctl", result)


def session_keyring_id() -> int:
    """Serial of the current session keyring (without creating one)."""
    return keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)
