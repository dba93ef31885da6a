"""The cgroup2 device program: a :class:`.DevicePolicy` assembled into eBPF, attached to a cgroup.

A ``BPF_PROG_TYPE_CGROUP_DEVICE`` program runs on every mknod and open of a device node by a process
of the cgroup (and of its descendants) and returns 1 to allow, 0 to deny (EPERM). Its context is
``struct bpf_cgroup_dev_ctx``: ``access_type`` (device type in the low 16 bits, access bits above),
``major``, ``minor``, three 32-bit words. The program loads them into r2..r5, then tests each
exception in turn and ends with the default::

    r2 = type; r3 = access; r4 = major; r5 = minor
    [w1 = w3 & ACCESS; if r1 != r3 goto next]   unless the rule grants every access
    [if r2 != TYPE goto next]                    unless the rule is for both types
    [if r4 != MAJOR goto next]                   unless '*'
    [if r5 != MINOR goto next]                   unless '*'
    r0 = VERDICT; exit
    next: ...
    r0 = DEFAULT; exit

It is attached with ``BPF_F_ALLOW_MULTI`` (as LXC does), so a container that manages its own cgroups
can add programs below and every one of them must allow. The attachment holds the program: its fd is
closed once attached, and the stop detaches it (:func:`detach_all`) before the cgroup is removed. A
change of the rules of a running container attaches a new program, then detaches the old one (:func:`detach`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import sys

from lxcframe import syscalls
from lxcframe.plugins.cgroup.device_rules import ALL_ACCESS, TYPES, DevicePolicy, DeviceRule

#: The name the kernel shows for the program (``bpftool prog``), at most 15 characters.
PROGRAM_NAME = "lxcframe_dev"

# Opcodes (class | size/op | source) and the context's field offsets.
_LDX_MEM_W = 0x61
_ALU32_AND_K, _ALU32_RSH_K, _ALU32_MOV_X = 0x54, 0x74, 0xBC
_ALU64_MOV_K = 0xB7
_JNE_K, _JNE_X = 0x55, 0x5D
_EXIT = 0x95
_ACCESS_TYPE, _MAJOR, _MINOR = 0, 4, 8


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    # struct bpf_insn: the register byte has dst in its low nibble on a little-endian machine.
    regs = (src << 4 | dst) if sys.byteorder == "little" else (dst << 4 | src)
    return struct.pack("=BBhi", code, regs, off, imm)


def _prologue() -> list[bytes]:
    return [
        _insn(_LDX_MEM_W, 2, 1, _ACCESS_TYPE), _insn(_ALU32_AND_K, 2, imm=0xFFFF),
        _insn(_LDX_MEM_W, 3, 1, _ACCESS_TYPE), _insn(_ALU32_RSH_K, 3, imm=16),
        _insn(_LDX_MEM_W, 4, 1, _MAJOR),
        _insn(_LDX_MEM_W, 5, 1, _MINOR),
    ]


def _rule(rule: DeviceRule) -> list[bytes]:
    """One exception: its tests, each jumping past the verdict when the device does not match."""
    # (code, dst, src, imm) of the tests; the jump offsets are known once the block's length is.
    tests: list[tuple[int, int, int, int]] = []
    head: list[bytes] = []
    if rule.access != ALL_ACCESS:
        # The requested accesses must all be among the rule's: (access & RULE) == access.
        head = [_insn(_ALU32_MOV_X, 1, 3), _insn(_ALU32_AND_K, 1, imm=rule.access)]
        tests.append((_JNE_X, 1, 3, 0))
    if TYPES[rule.type]:
        tests.append((_JNE_K, 2, 0, TYPES[rule.type]))
    if rule.major is not None:
        tests.append((_JNE_K, 4, 0, rule.major))
    if rule.minor is not None:
        tests.append((_JNE_K, 5, 0, rule.minor))
    verdict = [_insn(_ALU64_MOV_K, 0, imm=int(rule.allow)), _insn(_EXIT)]
    # Each jump lands on the first instruction after this block: past the tests after it and the verdict.
    jumps = [_insn(code, dst, src, off=len(tests) - index - 1 + len(verdict), imm=imm)
             for index, (code, dst, src, imm) in enumerate(tests)]
    return [*head, *jumps, *verdict]


def assemble(policy: DevicePolicy) -> bytes:
    """The program's instructions, packed as the kernel takes them."""
    insns = _prologue()
    for rule in policy.exceptions:
        insns += _rule(rule)
    insns += [_insn(_ALU64_MOV_K, 0, imm=int(policy.allow_by_default)), _insn(_EXIT)]
    return b"".join(insns)


def _open_cgroup(directory: str) -> int:
    return os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def attach(directory: str, policy: DevicePolicy) -> int:
    """Load the policy's program and attach it to the cgroup ``directory``; returns the program's id."""
    program = syscalls.prog_load(syscalls.BPF_PROG_TYPE_CGROUP_DEVICE, assemble(policy), PROGRAM_NAME)
    try:
        prog_id = syscalls.prog_info(program)[1]
        cgroup = _open_cgroup(directory)
        try:
            syscalls.prog_attach(cgroup, program, syscalls.BPF_CGROUP_DEVICE, syscalls.BPF_F_ALLOW_MULTI)
        finally:
            os.close(cgroup)
    finally:
        os.close(program)  # the attachment keeps it loaded
    return prog_id


def detach(directory: str, prog_id: int) -> bool:
    """Detach program ``prog_id`` from the cgroup ``directory``; ``False`` if it was not attached there."""
    try:
        program = syscalls.prog_fd_by_id(prog_id)
    except FileNotFoundError:
        return False  # freed: attached nowhere
    try:
        cgroup = _open_cgroup(directory)
        try:
            syscalls.prog_detach(cgroup, program, syscalls.BPF_CGROUP_DEVICE)
        finally:
            os.close(cgroup)
    except FileNotFoundError:  # ENOENT: not attached to this cgroup (or the cgroup is gone)
        return False
    finally:
        os.close(program)
    return True


def attached(directory: str) -> list[int]:
    """The ids of the device programs attached to the cgroup ``directory`` itself."""
    cgroup = _open_cgroup(directory)
    try:
        return syscalls.prog_query(cgroup, syscalls.BPF_CGROUP_DEVICE)
    finally:
        os.close(cgroup)


def detach_all(directory: str) -> None:
    """Detach every device program from the cgroup ``directory`` (gone already: nothing to do)."""
    try:
        cgroup = _open_cgroup(directory)
    except FileNotFoundError:
        return
    try:
        # Taken as a change of the rules of a running container takes it (.live_devices): one that
        # waited for it finds the container stopping and attaches nothing after this.
        fcntl.flock(cgroup, fcntl.LOCK_EX)
        for prog_id in syscalls.prog_query(cgroup, syscalls.BPF_CGROUP_DEVICE):
            try:
                program = syscalls.prog_fd_by_id(prog_id)
            except FileNotFoundError:
                continue  # detached and freed meanwhile
            try:
                with contextlib.suppress(FileNotFoundError):  # ENOENT: no longer attached here
                    syscalls.prog_detach(cgroup, program, syscalls.BPF_CGROUP_DEVICE)
            finally:
                os.close(program)
    finally:
        os.close(cgroup)


def unavailable_reason() -> str | None:
    """Why no device program can be loaded here (``None``: one loads)."""
    if not syscalls.bpf_supported():
        return "the kernel has no bpf(2) system call"
    try:
        program = syscalls.prog_load(syscalls.BPF_PROG_TYPE_CGROUP_DEVICE,
                                     assemble(DevicePolicy(True, ())), PROGRAM_NAME)
    except OSError as err:
        return f"the kernel refuses a BPF_PROG_TYPE_CGROUP_DEVICE program: {err.strerror}"
    os.close(program)
    return None
