"""What a container name may be.

A name ends up in places that each have their own syntax: a directory below the lxcpath, LXC-format
config lines (``# Container NAME``, ``lxc.uts.name = NAME`` written by the templates), the default host
name, cgroup and AppArmor profile names, the argument list of hook scripts, log lines. Rather than
escape it for each, the name is limited to characters that mean nothing special in any of them:

- 1 to 64 bytes: the kernel's host name limit (``__NEW_UTS_LEN``), since the name is the default
  ``lxc.uts.name`` (as in LXC);
- ASCII letters, digits, ``-``, ``_`` and ``.`` only: no whitespace, no control character (a newline
  would start a new config line), no ``/`` (LXC's lxc-create refuses it too), nothing non-ASCII;
- starting with a letter or digit: not ``.``/``..`` or a hidden directory, and not ``-``, which a hook
  script or a command given the name would read as an option.

Every name LXC's own templates accept as a host name fits, and so does every name lxcframe could create
before (its templates always wrote the name as ``lxc.uts.name``, whose validator allowed the same set).
"""

from __future__ import annotations

MAX_NAME_BYTES = 64

_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_REST = _FIRST | frozenset("-_.")

RULE = f"1 to {MAX_NAME_BYTES} ASCII letters, digits, '-', '_' or '.', starting with a letter or digit"


def why_invalid(name: str) -> str | None:
    """``None`` for a valid container name, else what is wrong with it."""
    if not name:
        return "empty"
    if len(name) > MAX_NAME_BYTES:
        return f"longer than {MAX_NAME_BYTES} bytes"
    if name[0] not in _FIRST:
        return f"starts with {name[0]!r}"
    bad = next((char for char in name if char not in _REST), None)
    if bad is not None:
        return f"contains {bad!r}"
    return None
