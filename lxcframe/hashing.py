"""SHA-256 without hashlib's import: hashlib loads OpenSSL's libcrypto first (~3 ms for every command that
names a run directory or fingerprints its installation), which CPython's own implementation does not need."""

from __future__ import annotations

try:
    from _sha256 import sha256
except ImportError:  # another interpreter, or a later CPython (its _sha2)
    from hashlib import sha256

__all__ = ["sha256"]
