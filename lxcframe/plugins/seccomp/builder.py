"""Turn a :class:`~.policy.Policy` into a seccomp filter with libseccomp (through ``pyseccomp``), stacked
over the architectures the host can run, and compile it to the BPF program the kernel loads.

Runs on the host side (the monitor, or the caller of ``attach``): the child only loads the compiled
program (:mod:`.load`), so it needs neither libseccomp nor any file once it has left the host's mounts.

Importing this module loads libseccomp (``pyseccomp`` looks the library up when imported), so the
plugin imports it only when a profile is used.

Architecture stacking (LXC 3.1's "seccomp architecture stacking"): a filter built for the native
architecture alone answers every syscall of another ABI with the bad-arch action, KILL, so a 32-bit
program in the container dies at its first syscall whatever the policy says. The main context gets one
compat context per sibling ABI (x86 and x32 on amd64), each holding only that ABI and the same rules
(libseccomp translates the native number into the compat one), merged into the main context at the end.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import attrs
import pyseccomp

from lxcframe.plugins.seccomp.load import read_fd
from lxcframe.plugins.seccomp.policy import CMP_MASKED_EQ, Policy, Rule, action_name

#: Resolving a name libseccomp does not know (its __NR_SCMP_ERROR).
_UNKNOWN = -1

#: Host architecture -> (compat ABIs stacked over the native one, the native ABI), as LXC stacks them.
STACKS: dict[str, tuple[tuple[str, ...], str]] = {
    "amd64": (("x86", "x32"), "x86_64"),
    "ppc64": (("ppc",), "ppc64"),
    "arm64": (("arm",), "aarch64"),
    "mips64": (("mips", "mips64n32"), "mips64"),
    "mipsel64": (("mipsel", "mipsel64n32"), "mipsel64"),
}

ARCHES: dict[str, int] = {
    "x86": pyseccomp.Arch.X86, "x32": pyseccomp.Arch.X32, "x86_64": pyseccomp.Arch.X86_64,
    "arm": pyseccomp.Arch.ARM, "aarch64": pyseccomp.Arch.AARCH64,
    "ppc": pyseccomp.Arch.PPC, "ppc64": pyseccomp.Arch.PPC64,
    "mips": pyseccomp.Arch.MIPS, "mips64": pyseccomp.Arch.MIPS64, "mips64n32": pyseccomp.Arch.MIPS64N32,
    "mipsel": pyseccomp.Arch.MIPSEL, "mipsel64": pyseccomp.Arch.MIPSEL64,
    "mipsel64n32": pyseccomp.Arch.MIPSEL64N32,
}


class BuildError(Exception):
    """libseccomp refused the policy; the message names the profile (and line) and why."""


@attrs.frozen
class Built:
    """A filter ready to export, with what the build had to leave out."""

    filter: Any
    #: Architectures the filter answers for (native first); others get the bad-arch KILL.
    arches: tuple[str, ...]
    #: "file:line: …" for each rule that was skipped (a syscall libseccomp does not know).
    warnings: tuple[str, ...]


def build(policy: Policy, *, stack: bool = True) -> Built:
    """The libseccomp filter for ``policy``; ``stack=False`` leaves the compat ABIs out (for tests only)."""
    main = _new_context(policy.default_action)
    compat_names, native_name = STACKS.get(policy.arch, ((), ""))
    compat: list[tuple[str, int, Any]] = []
    if policy.version == 2 and stack:
        # Version 1 lists native numbers only: LXC never stacked it, and a number means nothing elsewhere.
        for name in compat_names:
            arch = ARCHES[name]
            context = _new_context(policy.default_action)
            if context.exist_arch(arch):
                continue
            try:
                context.add_arch(arch)
            except OSError as err:  # e.g. an ABI of the other byte order than the native one
                raise _stack_error(policy, name, err) from None
            context.remove_arch(pyseccomp.Arch.NATIVE)
            compat.append((name, arch, context))
    warnings: list[str] = []
    for rule in policy.rules:
        if isinstance(rule.syscall, int):
            # v1: LXC adds numbers with the non-exact call, which lets libseccomp rewrite them.
            _add(policy, rule, main.add_rule, rule.syscall)
            continue
        native = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, rule.syscall)
        if native == _UNKNOWN:
            warnings.append(f"{policy.path}:{rule.line}: unknown syscall {rule.syscall!r}, rule skipped")
            continue
        args = _args(rule)
        if native >= 0:
            _add(policy, rule, main.add_rule_exactly, native, *args)
        # A negative number is a pseudo syscall here (e.g. stat64 on amd64) that a compat ABI may have.
        for _name, arch, context in compat:
            if pyseccomp.resolve_syscall(arch, rule.syscall) < 0:
                continue  # not a syscall of that ABI, or only multiplexed (socketcall)
            # The native number: libseccomp translates it for the context's ABI.
            _add(policy, rule, context.add_rule_exactly, native, *args)
    for name, _arch, context in compat:
        try:
            main.merge(context)
        except OSError as err:
            raise _stack_error(policy, name, err) from None
    arches = (native_name or "native", *(name for name, _, _ in compat))
    return Built(main, arches, tuple(warnings))


def _stack_error(policy: Policy, name: str, err: OSError) -> BuildError:
    return BuildError(f"{policy.path}: cannot stack the {name} filter: {err.strerror}")


def _new_context(default_action: int) -> Any:
    context = pyseccomp.SyscallFilter(default_action)
    # no_new_privs stays off: the container's setuid binaries keep working (and LXC does the same).
    context.set_attr(pyseccomp.Attr.CTL_NNP, 0)
    # Rules on syscall -1 (used by ptracers to skip a call) are accepted rather than refused.
    context.set_attr(pyseccomp.Attr.API_TSKIP, 1)
    return context


def _args(rule: Rule) -> list[Any]:
    args = []
    for arg in rule.args:
        if arg.op == CMP_MASKED_EQ:
            args.append(pyseccomp.Arg(arg.index, arg.op, arg.mask, arg.value))
        else:
            args.append(pyseccomp.Arg(arg.index, arg.op, arg.value))
    return args


def _add(policy: Policy, rule: Rule, method: Any, syscall: int, *args: Any) -> None:
    try:
        method(rule.action, syscall, *args)
    except OSError as err:
        raise BuildError(f"{policy.path}:{rule.line}: cannot add the rule for {rule.syscall!r} "
                         f"({action_name(rule.action)}): {err.strerror}") from None


def export_bpf(built: Built) -> int:
    """The compiled program in a memfd, to hand to the child (the caller owns the descriptor)."""
    return _export(built.filter.export_bpf, "lxcframe-seccomp")


def compile_bpf(built: Built) -> bytes:
    """The compiled program as bytes (an array of ``struct sock_filter``)."""
    fd = export_bpf(built)
    try:
        return read_fd(fd)
    finally:
        os.close(fd)


def export_pfc(built: Built) -> str:
    """libseccomp's human-readable listing of the filter (for the log at TRACE level)."""
    fd = _export(built.filter.export_pfc, "lxcframe-seccomp-pfc")
    try:
        return read_fd(fd).decode(errors="replace")
    finally:
        os.close(fd)


def _export(export: Callable[[Any], None], name: str) -> int:
    """A new memfd (close-on-exec: memfd_create's default here) holding what ``export`` wrote into it."""
    fd = os.memfd_create(name)
    try:
        # libseccomp writes to the descriptor itself: all pyseccomp asks of the file is its fileno().
        export(SimpleNamespace(fileno=lambda: fd))
    except BaseException:
        os.close(fd)
        raise
    return fd


def stackable(arch: str) -> tuple[tuple[str, ...], str]:
    """(compat ABIs a filter can be stacked with here, why not for the others) for the check probe."""
    compat_names = STACKS[arch][0] if arch in STACKS else ()
    stacked, failed = [], []
    main = _new_context(pyseccomp.ALLOW)
    for name in compat_names:
        try:
            context = _new_context(pyseccomp.ALLOW)
            context.add_arch(ARCHES[name])
            context.remove_arch(pyseccomp.Arch.NATIVE)
            main.merge(context)
            stacked.append(name)
        except OSError as err:
            failed.append(f"{name}: {err.strerror}")
    return tuple(stacked), "; ".join(failed)
