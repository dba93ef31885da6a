"""bpf(2): loading an eBPF program, attaching it to a cgroup, and finding and detaching it again.

Only what a cgroup device program needs: ``BPF_PROG_LOAD`` (with a verifier log, so a refused
program says why), ``BPF_PROG_ATTACH``/``BPF_PROG_DETACH``, ``BPF_PROG_QUERY`` (the ids attached to a
cgroup), ``BPF_PROG_GET_FD_BY_ID``, and the loaded programs with their type and name
(``BPF_PROG_GET_NEXT_ID``, ``BPF_OBJ_GET_INFO_BY_FD``). The ``union bpf_attr`` layouts are packed by hand; each
command gets only the leading fields it uses, and the kernel takes a shorter attr as zero-filled.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from lxcframe.syscalls.libc import _raw

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_NEXT_ID = 11
BPF_PROG_GET_FD_BY_ID = 13
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_PROG_QUERY = 16

BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2

#: The verifier log a failed load reports (its last lines: where the verifier stopped).
LOG_SIZE = 1 << 16
BPF_OBJ_NAME_LEN = 16
#: How many attached program ids one query asks for.
MAX_QUERY_IDS = 64


def _bpf(command: int, attr: ctypes.Array[ctypes.c_char], name: str) -> int:
    result = _raw("bpf", command, attr, len(attr))
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({name}): {os.strerror(err)}")
    return result


def _attr(data: bytes) -> ctypes.Array[ctypes.c_char]:
    # create_string_buffer(bytes) adds a NUL: the exact size keeps the kernel's tail check simple.
    return ctypes.create_string_buffer(data, len(data))


def prog_load(prog_type: int, instructions: bytes, name: str = "", license: str = "GPL") -> int:
    """Load a program; returns its fd (close-on-exec). A refusal raises :class:`OSError` whose
    message ends with the last lines of the verifier's log."""
    if len(instructions) % 8:
        raise ValueError("eBPF instructions are 8 bytes each")
    insns = ctypes.create_string_buffer(instructions, len(instructions))
    lic = ctypes.create_string_buffer(license.encode())
    raw_name = name.encode()[:BPF_OBJ_NAME_LEN - 1].ljust(BPF_OBJ_NAME_LEN, b"\0")

    def load(log: ctypes.Array[ctypes.c_char] | None) -> int:
        # prog_type, insn_cnt, insns, license, log_level, log_size, log_buf, kern_version, prog_flags, prog_name
        attr = _attr(struct.pack("=IIQQIIQII16s", prog_type, len(instructions) // 8, ctypes.addressof(insns),
                                 ctypes.addressof(lic), 1 if log is not None else 0, len(log) if log is not None else 0,
                                 ctypes.addressof(log) if log is not None else 0, 0, 0, raw_name))
        return _raw("bpf", BPF_PROG_LOAD, attr, len(attr))

    # Without a log first: a verbose verifier may fail a load whose log does not fit (ENOSPC).
    result = load(None)
    if result >= 0:
        return result
    err = ctypes.get_errno()
    log = ctypes.create_string_buffer(LOG_SIZE)
    again = load(log)
    if again >= 0:  # pragma: no cover - refused once, accepted the second time
        os.close(again)
        raise OSError(err, f"bpf(BPF_PROG_LOAD): {os.strerror(err)}")
    text = log.value.decode(errors="replace").strip()
    tail = "; ".join(text.splitlines()[-3:])
    raise OSError(err, f"bpf(BPF_PROG_LOAD): {os.strerror(err)}" + (f" (verifier: {tail})" if tail else ""))


def prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int = 0) -> None:
    """Attach program ``prog_fd`` to the cgroup open at ``target_fd``."""
    # target_fd, attach_bpf_fd, attach_type, attach_flags, replace_bpf_fd
    _bpf(BPF_PROG_ATTACH, _attr(struct.pack("=IIIII", target_fd, prog_fd, attach_type, flags, 0)),
         "BPF_PROG_ATTACH")


def prog_detach(target_fd: int, prog_fd: int, attach_type: int) -> None:
    """Detach program ``prog_fd`` from the cgroup open at ``target_fd``."""
    _bpf(BPF_PROG_DETACH, _attr(struct.pack("=IIIII", target_fd, prog_fd, attach_type, 0, 0)),
         "BPF_PROG_DETACH")


def prog_query(target_fd: int, attach_type: int) -> list[int]:
    """The ids of the programs attached to the cgroup open at ``target_fd`` itself (not inherited)."""
    ids = (ctypes.c_uint32 * MAX_QUERY_IDS)()
    # target_fd, attach_type, query_flags, attach_flags (out), prog_ids, prog_cnt (in: room, out: count)
    attr = _attr(struct.pack("=IIIIQI4x", target_fd, attach_type, 0, 0, ctypes.addressof(ids), MAX_QUERY_IDS))
    _bpf(BPF_PROG_QUERY, attr, "BPF_PROG_QUERY")
    count = struct.unpack_from("=I", attr.raw, 24)[0]
    return list(ids[:min(count, MAX_QUERY_IDS)])


def prog_fd_by_id(prog_id: int) -> int:
    """An fd of the loaded program with id ``prog_id`` (``FileNotFoundError`` once it is freed)."""
    # prog_id, next_id, open_flags
    return _bpf(BPF_PROG_GET_FD_BY_ID, _attr(struct.pack("=III", prog_id, 0, 0)), "BPF_PROG_GET_FD_BY_ID")


def prog_ids() -> list[int]:
    """The ids of every program loaded in the kernel, in increasing order."""
    found: list[int] = []
    current = 0
    while True:
        attr = _attr(struct.pack("=III", current, 0, 0))  # start_id, next_id (out), open_flags
        if _raw("bpf", BPF_PROG_GET_NEXT_ID, attr, len(attr)) < 0:
            err = ctypes.get_errno()
            if err == errno.ENOENT:
                return found
            raise OSError(err, f"bpf(BPF_PROG_GET_NEXT_ID): {os.strerror(err)}")
        current = struct.unpack_from("=I", attr.raw, 4)[0]
        found.append(current)


def prog_info(prog_fd: int) -> tuple[int, int, str]:
    """``(type, id, name)`` of the program open at ``prog_fd``."""
    # struct bpf_prog_info up to its name: type, id, tag[8], jited/xlated lengths and pointers,
    # load_time, created_by_uid, nr_map_ids, map_ids, name[16].
    info = ctypes.create_string_buffer(80)
    _bpf(BPF_OBJ_GET_INFO_BY_FD, _attr(struct.pack("=IIQ", prog_fd, len(info), ctypes.addressof(info))),
         "BPF_OBJ_GET_INFO_BY_FD")
    prog_type, prog_id = struct.unpack_from("=II", info.raw, 0)
    name = info.raw[64:80].split(b"\0", 1)[0].decode(errors="replace")
    return prog_type, prog_id, name


def bpf_supported() -> bool:
    """Whether the kernel has bpf(2) at all (an empty attr is refused, by a kernel with it, as EINVAL)."""
    if _raw("bpf", BPF_PROG_LOAD, None, 0) >= 0:
        return True  # pragma: no cover - no kernel loads an empty program
    return ctypes.get_errno() != errno.ENOSYS
