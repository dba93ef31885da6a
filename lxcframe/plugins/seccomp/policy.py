"""LXC's seccomp policy files (versions 1 and 2), parsed into a frozen :class:`Policy`.

Pure text work: no libseccomp here, so a profile can be checked anywhere (``config validate``, the
caller of ``start``) and syscall names are only resolved when the filter is built.

Format, as LXC 3.1 reads it (LXC 5.0's ``allowlist``/``denylist`` words are accepted too)::

    2                           <- version: 1 or 2
    blacklist [action]          <- v2: blacklist|whitelist|denylist|allowlist, optional default action
    reject_force_umount         <- umount2(…, MNT_FORCE) fails with EACCES
    [x86_64]                    <- section: rules below apply only if the host runs this arch
    mkdir errno 1 [1,0700,==]   <- syscall, optional action, up to 6 argument comparisons

Version 1: line 2 must say ``whitelist`` (``allowlist``); every further line is a native syscall
number that is allowed, everything else kills.
"""

from __future__ import annotations

import errno
import os
import re
import sys

import attrs

from lxcframe.input_limits import InputRefused, decode_lines, read_bounded

# Actions, as the kernel and libseccomp number them (SCMP_ACT_*).
KILL = 0x00000000
TRAP = 0x00030000
ERRNO_BASE = 0x00050000
ALLOW = 0x7FFF0000
#: Beyond LXC's words (an OCI bundle's SCMP_ACT_LOG and SCMP_ACT_KILL_PROCESS): the syscall runs and
#: the kernel logs it; the whole process is killed, not only the calling thread.
LOG = 0x7FFC0000
KILL_PROCESS = 0x80000000

# Argument comparisons (libseccomp's enum scmp_compare).
CMP_NE, CMP_LT, CMP_LE, CMP_EQ, CMP_GE, CMP_GT, CMP_MASKED_EQ = range(1, 8)

#: Both spellings LXC accepts for each comparison.
OPERATORS: dict[str, int] = {
    "SCMP_CMP_NE": CMP_NE, "!=": CMP_NE,
    "SCMP_CMP_LT": CMP_LT, "<": CMP_LT,
    "SCMP_CMP_LE": CMP_LE, "<=": CMP_LE,
    "SCMP_CMP_EQ": CMP_EQ, "==": CMP_EQ,
    "SCMP_CMP_GE": CMP_GE, ">=": CMP_GE,
    "SCMP_CMP_GT": CMP_GT, ">": CMP_GT,
    "SCMP_CMP_MASKED_EQ": CMP_MASKED_EQ, "&=": CMP_MASKED_EQ,
}

DENY_WORDS = ("blacklist", "denylist")
ALLOW_WORDS = ("whitelist", "allowlist")

#: Section name -> host architectures (LXC's names, see :func:`host_arch`) whose filter it applies to.
#: A 64-bit host runs its 32-bit siblings' binaries, so their sections apply there too.
SECTIONS: dict[str, frozenset[str]] = {
    "x86": frozenset({"i386", "amd64"}),
    "x32": frozenset({"amd64"}),
    "x86_64": frozenset({"amd64"}),
    "arm": frozenset({"arm", "arm64"}),
    "arm64": frozenset({"arm64"}),
    "ppc64le": frozenset({"ppc64le"}),
    "ppc64": frozenset({"ppc64"}),
    "ppc": frozenset({"ppc", "ppc64"}),
    "mips64": frozenset({"mips64"}),
    "mips64n32": frozenset({"mips64"}),
    "mips": frozenset({"mips", "mips64"}),
    "mipsel64": frozenset({"mipsel64"}),
    "mipsel64n32": frozenset({"mipsel64"}),
    "mipsel": frozenset({"mipsel", "mipsel64"}),
    "s390x": frozenset({"s390x"}),
    "s390": frozenset({"s390"}),
}

MAX_ARGS = 6
MAX_ERRNO = 4095  # the kernel clamps a larger SECCOMP_RET_ERRNO value to this
_ARG = re.compile(r"\[([^\[\]]*)\]")
_NAME = re.compile(r"[A-Za-z0-9_]+")
#: What strtoull(…, 0) reads as a whole, in ASCII digits only (no sign, no Python-only ``_`` separators).
_UNSIGNED = re.compile(r"(?P<sign>[+-]?)(?:0x(?P<hex>[0-9a-f]+)|0(?P<oct>[0-7]*)|(?P<dec>[1-9][0-9]*))")
#: A version 1 line: a native syscall number, which libseccomp takes as a C int.
_SYSCALL_NUMBER = re.compile(r"[0-9]{1,10}")
_SYSCALL_NUMBER_MAX = 2**31 - 1
#: ``errno N`` as LXC reads N (lxc_safe_int: base 10, a sign allowed); leading zeros apart.
_ERRNO = re.compile(r"([+-]?)0*([0-9]+)")


def errno_action(number: int) -> int:
    return ERRNO_BASE | (number & 0xFFFF)


def action_name(action: int) -> str:
    if action == KILL:
        return "kill"
    if action == TRAP:
        return "trap"
    if action == ALLOW:
        return "allow"
    if action == LOG:
        return "log"
    if action == KILL_PROCESS:
        return "kill_process"
    if action & 0xFFFF0000 == ERRNO_BASE:
        return f"errno {action & 0xFFFF}"
    return hex(action)


class PolicyError(ValueError):
    """A profile that cannot be used; the message names the file and the line."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


@attrs.frozen
class ArgCmp:
    """One ``[index,value,op(,mask)]`` comparison of a syscall argument."""

    index: int
    op: int
    value: int
    #: Only meaningful for MASKED_EQ (``arg & mask == value``); LXC leaves it 0 when not given.
    mask: int = 0


@attrs.frozen
class Rule:
    #: A syscall name (v2) or a native syscall number (v1).
    syscall: str | int
    action: int
    args: tuple[ArgCmp, ...] = ()
    line: int = 0


@attrs.frozen
class Policy:
    path: str
    version: int
    #: What a syscall no rule matches gets.
    default_action: int
    #: Only the rules of sections that apply to ``arch``, in file order.
    rules: tuple[Rule, ...]
    #: The host architecture the sections were chosen for (LXC's name, e.g. ``amd64``).
    arch: str


def host_arch(machine: str | None = None) -> str:
    """LXC's name for the host's architecture, from ``uname -m`` (``unknown`` when LXC has none)."""
    machine = os.uname().machine if machine is None else machine
    little = sys.byteorder == "little"
    if machine == "i686":
        return "i386"
    if machine == "x86_64":
        return "amd64"
    prefixes = (
        ("armv7", "arm"), ("aarch64", "arm64"), ("ppc64le", "ppc64le"), ("ppc64", "ppc64"), ("ppc", "ppc"),
        ("mips64", "mipsel64" if little else "mips64"), ("mips", "mipsel" if little else "mips"),
        ("s390x", "s390x"), ("s390", "s390"),
    )
    for prefix, arch in prefixes:
        if machine.startswith(prefix):
            return arch
    return "unknown"


def c_unsigned(text: str, bits: int = 64) -> int:
    """An unsigned number written as C's strtoull(…, 0) reads it: ``0x`` hex, leading ``0`` octal, else decimal."""
    text = text.strip()
    body = text.lower()
    match = _UNSIGNED.fullmatch(body)
    if match is None:
        raise ValueError(f"{text!r} is not a number")
    if match.group("hex") is not None:
        number = int(match.group("hex"), 16)
    elif match.group("oct") is not None:
        number = int(match.group("oct") or "0", 8)
    else:
        # 21 digits are past any 64-bit number already, and int() refuses thousands of them.
        number = int(match.group("dec")[:21])
    if match.group("sign") or number >= 1 << bits:
        raise ValueError(f"{text!r} is not an unsigned {bits}-bit number")
    return number


def read_policy(path: str, machine: str | None = None) -> Policy:
    """Read and parse the profile at ``path``; :class:`PolicyError` (with file and line) when unusable."""
    # Bounded: the path is whatever the config says, and a FIFO or /dev/zero must not hang or fill memory.
    try:
        lines = decode_lines(read_bounded(path), errors="surrogateescape")
    except InputRefused as err:
        raise PolicyError(path, 0, f"cannot read the seccomp profile: {err}") from None
    except OSError as err:
        raise PolicyError(path, 0, f"cannot read the seccomp profile: {err.strerror}") from None
    return parse_policy("\n".join(lines), path, machine)


def parse_policy(text: str, path: str, machine: str | None = None) -> Policy:
    arch = host_arch(machine)
    lines = text.splitlines()
    version_text = _uncomment(lines[0]) if lines else ""
    if version_text not in ("1", "2"):
        raise PolicyError(path, 1, f"expected the policy version 1 or 2, not {version_text!r}")
    header = _uncomment(lines[1]) if len(lines) > 1 else ""
    if not header:
        raise PolicyError(path, 2, "missing the policy type (e.g. 'blacklist')")
    if "debug" in header:
        raise PolicyError(path, 2, "'debug' is not supported")
    body = list(enumerate(lines[2:], start=3))
    if version_text == "1":
        return _parse_v1(path, header, body, arch)
    return _parse_v2(path, header, body, arch)


def _uncomment(line: str) -> str:
    # No part of a policy line (names, actions, numbers, arguments) contains '#'.
    return line.partition("#")[0].strip()


def _parse_v1(path: str, header: str, body: list[tuple[int, str]], arch: str) -> Policy:
    if not any(word in header for word in ALLOW_WORDS):
        raise PolicyError(path, 2, "a version 1 policy must be a whitelist (allowlist)")
    rules = []
    for number, raw in body:
        text = _uncomment(raw)
        if not text:
            continue
        if not _SYSCALL_NUMBER.fullmatch(text) or int(text) > _SYSCALL_NUMBER_MAX:
            raise PolicyError(path, number, f"expected a syscall number, not {text!r}")
        rules.append(Rule(int(text), ALLOW, line=number))
    return Policy(path, 1, KILL, tuple(rules), arch)


def _parse_v2(path: str, header: str, body: list[tuple[int, str]], arch: str) -> Policy:
    kind, *rest = header.split()
    if kind in DENY_WORDS:
        default_action, rule_action = ALLOW, KILL
    elif kind in ALLOW_WORDS:
        default_action, rule_action = KILL, ALLOW
    else:
        raise PolicyError(path, 2, f"unknown policy type {kind!r} (expected blacklist, whitelist, denylist or "
                                   "allowlist)")
    if rest:
        default_action = _parse_action(path, 2, rest)
    rules: list[Rule] = []
    applies = True  # rules before any section apply to every host
    for number, raw in body:
        text = _uncomment(raw)
        if not text:
            continue
        if text.startswith("["):
            applies = _section_applies(path, number, text, arch)
            continue
        if applies:
            rules.append(_parse_rule(path, number, text, rule_action))
    return Policy(path, 2, default_action, tuple(rules), arch)


def _section_applies(path: str, number: int, text: str, arch: str) -> bool:
    name = text[1:-1].lower()
    # LXC knows each section in lower case and in upper case only.
    if not text.endswith("]") or text[1:-1] not in (name, name.upper()) or name not in {*SECTIONS, "all"}:
        raise PolicyError(path, number, f"unknown section {text!r}")
    return name == "all" or arch in SECTIONS[name]


def _parse_rule(path: str, number: int, text: str, default: int) -> Rule:
    name, _, rest = text.replace("\t", " ").partition(" ")
    if not _NAME.fullmatch(name):
        raise PolicyError(path, number, f"{name!r} is not a syscall name")
    if name == "reject_force_umount":
        if rest.strip():
            raise PolicyError(path, number, "reject_force_umount takes no action or arguments")
        # umount2(target, flags) with flags & MNT_FORCE: refused, as LXC does, with EACCES.
        return Rule("umount2", errno_action(errno.EACCES), (ArgCmp(1, CMP_MASKED_EQ, 1, 1),), number)
    action_text, bracket, args_text = rest.partition("[")
    words = action_text.split()
    action = _parse_action(path, number, words) if words else default
    args = _parse_args(path, number, bracket + args_text)
    return Rule(name, action, args, number)


_ACTION_WORDS = "kill, kill_process, errno N, allow, trap or log"


def _parse_action(path: str, number: int, words: list[str]) -> int:
    word = words[0]
    if word == "errno":
        if len(words) != 2:
            raise PolicyError(path, number, "'errno' needs one number (e.g. 'errno 1')")
        match = _ERRNO.fullmatch(words[1])
        if match is None:
            raise PolicyError(path, number, f"'errno {words[1]}': not a number")
        sign, digits = match.groups()
        # More than 4 digits is out of range anyway (and int() refuses thousands of them).
        if len(digits) > 4 or not 0 <= int(sign + digits) <= MAX_ERRNO:
            raise PolicyError(path, number, f"'errno {words[1]}': expected 0..{MAX_ERRNO}")
        return errno_action(int(digits))
    simple = {"kill": KILL, "allow": ALLOW, "trap": TRAP, "log": LOG, "kill_process": KILL_PROCESS}
    if word == "notify":
        raise PolicyError(path, number, "action 'notify' is not supported (seccomp notify is not implemented)")
    if word not in simple:
        raise PolicyError(path, number, f"unknown action {' '.join(words)!r} (expected {_ACTION_WORDS})")
    if len(words) > 1:
        raise PolicyError(path, number, f"unexpected {' '.join(words[1:])!r} after action {word!r}")
    return simple[word]


def _parse_args(path: str, number: int, text: str) -> tuple[ArgCmp, ...]:
    args = []
    for match in _ARG.finditer(text):
        args.append(_parse_arg(path, number, match.group(0), match.group(1)))
    leftover = _ARG.sub(" ", text).strip()
    if leftover:
        raise PolicyError(path, number, f"unexpected {leftover!r} (arguments are written [index,value,op] or "
                                        "[index,value,op,mask])")
    if len(args) > MAX_ARGS:
        raise PolicyError(path, number, f"at most {MAX_ARGS} argument comparisons per rule, not {len(args)}")
    return tuple(args)


def _parse_arg(path: str, number: int, whole: str, inner: str) -> ArgCmp:
    fields = [field.strip() for field in inner.split(",")]
    if len(fields) not in (3, 4):
        raise PolicyError(path, number, f"argument {whole}: expected [index,value,op] or [index,value,op,mask]")
    try:
        index = c_unsigned(fields[0], 32)
        value = c_unsigned(fields[1])
        mask = c_unsigned(fields[3]) if len(fields) == 4 else 0
    except ValueError as err:
        raise PolicyError(path, number, f"argument {whole}: {err}") from None
    if index >= MAX_ARGS:
        raise PolicyError(path, number, f"argument {whole}: the index must be 0..{MAX_ARGS - 1}")
    op = OPERATORS.get(fields[2])
    if op is None:
        raise PolicyError(path, number, f"argument {whole}: unknown operator {fields[2]!r} (expected one of "
                                        f"{', '.join(OPERATORS)})")
    return ArgCmp(index, op, value, mask)
