"""The one fact lxcframe needs from an ELF header: is the program static (no loader, no library)?"""

from __future__ import annotations

_PT_INTERP = 3


def is_static_elf(path: str) -> bool:
    """A 64-bit little-endian ELF without a PT_INTERP program header.

    Read from the file itself: ldd would need the very loader a static program does without.
    """
    with open(path, "rb") as handle:
        header = handle.read(64)
        if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2:
            return False
        phoff = int.from_bytes(header[32:40], "little")
        phentsize = int.from_bytes(header[54:56], "little")
        phnum = int.from_bytes(header[56:58], "little")
        handle.seek(phoff)
        table = handle.read(phentsize * phnum)
    return all(int.from_bytes(table[i * phentsize : i * phentsize + 4], "little") != _PT_INTERP
               for i in range(phnum))
