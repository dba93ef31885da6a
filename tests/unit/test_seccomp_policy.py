"""LXC's seccomp policy format parsed into a Policy: every rule, action, comparison and error, exactly."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest

from lxcframe.plugins.seccomp.policy import (
    ALLOW,
    CMP_EQ,
    CMP_GE,
    CMP_GT,
    CMP_LE,
    CMP_LT,
    CMP_MASKED_EQ,
    CMP_NE,
    ERRNO_BASE,
    KILL,
    TRAP,
    ArgCmp,
    Policy,
    PolicyError,
    Rule,
    action_name,
    c_unsigned,
    errno_action,
    host_arch,
    parse_policy,
    read_policy,
)

PATH = "p.seccomp"


def parse(text: str, machine: str = "x86_64") -> Policy:
    return parse_policy(text, PATH, machine)


def refusal(text: str, machine: str = "x86_64") -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse(text, machine)
    err = info.value
    assert err.path == PATH and str(err) == f"{PATH}:{err.line}: {err.message}"
    return err


def rule_refusal(line: str) -> tuple[int, str]:
    """(line, message) of the error for one rule line, placed after a comment and a blank line."""
    err = refusal(f"2\nblacklist\n# comment\n\n{line}\n")
    return err.line, err.message


# --- actions -----------------------------------------------------------------------------------------------------


def test_errno_action_keeps_the_low_16_bits_over_the_errno_base():
    assert errno_action(0) == 0x00050000
    assert errno_action(13) == 0x0005000D
    assert errno_action(0x1_0001) == 0x00050001
    assert errno_action(0xFFFF) == 0x0005FFFF


@pytest.mark.parametrize(("action", "name"), [
    (KILL, "kill"), (TRAP, "trap"), (ALLOW, "allow"), (errno_action(0), "errno 0"), (errno_action(13), "errno 13"),
    (errno_action(4095), "errno 4095"), (0x7FFC0000, "log"), (0x7FF00005, "0x7ff00005"),
    (0x00040001, "0x40001"), (0x80000000, "kill_process"),
])
def test_action_names(action, name):
    assert action_name(action) == name


# --- header ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "line", "message"), [
    ("", 1, "expected the policy version 1 or 2, not ''"),
    ("\n", 1, "expected the policy version 1 or 2, not ''"),
    ("3\nblacklist\n", 1, "expected the policy version 1 or 2, not '3'"),
    ("12\nblacklist\n", 1, "expected the policy version 1 or 2, not '12'"),
    ("2 blacklist\n", 1, "expected the policy version 1 or 2, not '2 blacklist'"),
    ("# 2\nblacklist\n", 1, "expected the policy version 1 or 2, not ''"),
    ("2", 2, "missing the policy type (e.g. 'blacklist')"),
    ("2\n", 2, "missing the policy type (e.g. 'blacklist')"),
    ("2\n  # blacklist\nmkdir\n", 2, "missing the policy type (e.g. 'blacklist')"),
    ("2\nblacklist debug\n", 2, "'debug' is not supported"),
    ("2\ndebug\n", 2, "'debug' is not supported"),
    ("1\nwhitelist debug\n", 2, "'debug' is not supported"),
    ("1\nblacklist\n", 2, "a version 1 policy must be a whitelist (allowlist)"),
    ("1\ndenylist\n", 2, "a version 1 policy must be a whitelist (allowlist)"),
    ("2\ngreylist\n", 2, "unknown policy type 'greylist' (expected blacklist, whitelist, denylist or allowlist)"),
    ("2\nBlacklist\n", 2, "unknown policy type 'Blacklist' (expected blacklist, whitelist, denylist or allowlist)"),
    ("2\nblacklist bogus\n", 2, "unknown action 'bogus' (expected kill, kill_process, errno N, allow, trap or log)"),
    ("2\nblacklist notify\n", 2, "action 'notify' is not supported (seccomp notify is not implemented)"),
    ("2\nwhitelist errno\n", 2, "'errno' needs one number (e.g. 'errno 1')"),
])
def test_header_errors_name_file_line_and_reason(text, line, message):
    err = refusal(text)
    assert (err.path, err.line, err.message) == (PATH, line, message)
    assert str(err) == f"{PATH}:{line}: {message}"
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(("version", "word", "default", "rule_action"), [
    ("2", "blacklist", ALLOW, KILL), ("2", "denylist", ALLOW, KILL),
    ("2", "whitelist", KILL, ALLOW), ("2", "allowlist", KILL, ALLOW),
    (" 2 # version", "  blacklist   # comment", ALLOW, KILL),
])
def test_v2_policy_type_decides_both_actions(version, word, default, rule_action):
    assert parse(f"{version}\n{word}\nmkdir\n") == Policy(PATH, 2, default, (Rule("mkdir", rule_action, (), 3),),
                                                          "amd64")


@pytest.mark.parametrize(("header", "default", "rule_action"), [
    ("blacklist errno 38", errno_action(38), KILL), ("blacklist kill", KILL, KILL),
    ("blacklist trap", TRAP, KILL), ("whitelist allow", ALLOW, ALLOW),
    ("whitelist errno 1 # comment", errno_action(1), ALLOW), ("denylist\terrno 5", errno_action(5), KILL),
])
def test_v2_default_action_on_line_two_leaves_the_rule_action(header, default, rule_action):
    policy = parse(f"2\n{header}\nread\n")
    assert policy.default_action == default
    assert policy.rules == (Rule("read", rule_action, (), 3),)


# --- version 1 ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["whitelist", "allowlist", "whitelist allowlist"])
def test_v1_allows_listed_numbers_and_kills_the_rest(word):
    policy = parse(f"1\n{word}\n0\n# a comment\n\n60  # exit\n  231\n2147483647\n")
    assert policy == Policy(PATH, 1, KILL, (
        Rule(0, ALLOW, (), 3), Rule(60, ALLOW, (), 6), Rule(231, ALLOW, (), 7), Rule(2147483647, ALLOW, (), 8),
    ), "amd64")


def test_v1_ignores_sections_nowhere_but_refuses_them_as_numbers():
    err = refusal("1\nwhitelist\n0\n[x86_64]\n")
    assert (err.line, err.message) == (4, "expected a syscall number, not '[x86_64]'")


@pytest.mark.parametrize("text", [
    "read", "-1", "+1", "0x3c", "1_0", "6 0", "²", "١", "2147483648", "4294967356", "1" * 5000,
])
def test_v1_refuses_anything_but_a_decimal_c_int(text):
    # 4294967356 would reach libseccomp as 60 (exit) once cut to a C int; ² and 5000 digits are not
    # numbers int() takes; ١ (an Arabic-Indic one) is one that C does not.
    err = refusal(f"1\nwhitelist\n12\n{text}\n")
    assert (err.line, err.message) == (4, f"expected a syscall number, not {text!r}")


# --- version 2 rules ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "action"), [
    ("mkdir kill", KILL), ("mkdir allow", ALLOW), ("mkdir trap", TRAP), ("mkdir errno 1", errno_action(1)),
    ("mkdir errno 0", errno_action(0)), ("mkdir errno 4095", errno_action(4095)), ("mkdir", KILL),
    ("mkdir # kill it", KILL), ("mkdir errno 13 # with a comment", errno_action(13)),
    ("mkdir\terrno\t2", errno_action(2)), ("  mkdir   errno   5  ", errno_action(5)),
    ("mkdir errno +7", errno_action(7)), ("mkdir errno -0", errno_action(0)), ("mkdir errno 0010", errno_action(10)),
    ("mkdir errno 000004095", errno_action(4095)),
])
def test_rule_actions(line, action):
    assert parse(f"2\nblacklist\n{line}\n").rules == (Rule("mkdir", action, (), 3),)


@pytest.mark.parametrize(("line", "message"), [
    ("mkdir notify", "action 'notify' is not supported (seccomp notify is not implemented)"),
    ("mkdir notify 3", "action 'notify' is not supported (seccomp notify is not implemented)"),
    ("mkdir explode", "unknown action 'explode' (expected kill, kill_process, errno N, allow, trap or log)"),
    ("mkdir explode now", "unknown action 'explode now' (expected kill, kill_process, errno N, allow, trap or log)"),
    ("mkdir KILL", "unknown action 'KILL' (expected kill, kill_process, errno N, allow, trap or log)"),
    ("mkdir errno", "'errno' needs one number (e.g. 'errno 1')"),
    ("mkdir errno 1 2", "'errno' needs one number (e.g. 'errno 1')"),
    ("mkdir errno x", "'errno x': not a number"),
    ("mkdir errno 0x10", "'errno 0x10': not a number"),
    ("mkdir errno 1_0", "'errno 1_0': not a number"),
    ("mkdir errno ١", "'errno ١': not a number"),
    ("mkdir errno ²", "'errno ²': not a number"),
    ("mkdir errno 4096", "'errno 4096': expected 0..4095"),
    ("mkdir errno 10000", "'errno 10000': expected 0..4095"),
    ("mkdir errno -1", "'errno -1': expected 0..4095"),
    ("mkdir errno -0001", "'errno -0001': expected 0..4095"),
    ("mkdir errno " + "9" * 5000, f"'errno {'9' * 5000}': expected 0..4095"),
    ("mkdir kill now", "unexpected 'now' after action 'kill'"),
    ("mkdir trap 1 2", "unexpected '1 2' after action 'trap'"),
    ("mkdir allow [0,1,==] kill", "unexpected 'kill' (arguments are written [index,value,op] or "
                                  "[index,value,op,mask])"),
    ("mk/dir", "'mk/dir' is not a syscall name"),
    ("mkdir-p", "'mkdir-p' is not a syscall name"),
    ("ioctl[0,1,!=]", "'ioctl[0,1,!=]' is not a syscall name"),
    ("[x86", "unknown section '[x86'"),
    ("reject_force_umount errno 1", "reject_force_umount takes no action or arguments"),
    ("reject_force_umount [1,1,==]", "reject_force_umount takes no action or arguments"),
])
def test_rule_errors_name_file_line_and_reason(line, message):
    assert rule_refusal(line) == (5, message)


def test_rules_keep_file_order_and_their_line_numbers():
    policy = parse("2\nwhitelist\nread\n\n# nothing\nwrite errno 9\n   \nexit_group trap\n")
    assert policy.rules == (Rule("read", ALLOW, (), 3), Rule("write", errno_action(9), (), 6),
                            Rule("exit_group", TRAP, (), 8))


def test_crlf_lines_and_no_final_newline():
    assert parse("2\r\nblacklist\r\nmkdir errno 1\r\nrmdir").rules == (
        Rule("mkdir", errno_action(1), (), 3), Rule("rmdir", KILL, (), 4))


def test_reject_force_umount_is_umount2_with_mnt_force_refused_eacces():
    for header in ("blacklist", "whitelist"):
        policy = parse(f"2\n{header}\nreject_force_umount  # comment this to allow umount -f\n")
        assert policy.rules == (Rule("umount2", errno_action(errno.EACCES), (ArgCmp(1, CMP_MASKED_EQ, 1, 1),), 3),)


# --- argument comparisons ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("op", "code"), [
    ("SCMP_CMP_NE", CMP_NE), ("!=", CMP_NE), ("SCMP_CMP_LT", CMP_LT), ("<", CMP_LT),
    ("SCMP_CMP_LE", CMP_LE), ("<=", CMP_LE), ("SCMP_CMP_EQ", CMP_EQ), ("==", CMP_EQ),
    ("SCMP_CMP_GE", CMP_GE), (">=", CMP_GE), ("SCMP_CMP_GT", CMP_GT), (">", CMP_GT),
    ("SCMP_CMP_MASKED_EQ", CMP_MASKED_EQ), ("&=", CMP_MASKED_EQ),
])
def test_argument_operators_in_both_spellings(op, code):
    [rule] = parse(f"2\nblacklist\nmkdir errno 1 [1,0x1ff,{op}]\n").rules
    assert rule.args == (ArgCmp(1, code, 0o777, 0),)


def test_arguments_values_masks_and_bases():
    line = "mmap errno 1 [0,0,==] [2, 0x4, &=, 0x6] [3,010,SCMP_CMP_MASKED_EQ,0xffffffffffffffff] [ 5 , 9 , > ]"
    [rule] = parse(f"2\nblacklist\n{line}\n").rules
    assert rule == Rule("mmap", errno_action(1), (
        ArgCmp(0, CMP_EQ, 0, 0),
        ArgCmp(2, CMP_MASKED_EQ, 4, 6),
        ArgCmp(3, CMP_MASKED_EQ, 8, 2**64 - 1),
        ArgCmp(5, CMP_GT, 9, 0),
    ), 3)
    # Arguments right after the name take the policy type's action.
    assert parse("2\nwhitelist\nopenat [2,0,==]\n").rules == (Rule("openat", ALLOW, (ArgCmp(2, CMP_EQ, 0, 0),), 3),)
    six = " ".join(f"[{i},{i},==]" for i in range(6))
    assert parse(f"2\nblacklist\nioctl errno 1 {six}\n").rules[0].args == tuple(
        ArgCmp(i, CMP_EQ, i, 0) for i in range(6))


@pytest.mark.parametrize(("args", "message"), [
    ("[6,0,==]", "argument [6,0,==]: the index must be 0..5"),
    ("[4294967295,0,==]", "argument [4294967295,0,==]: the index must be 0..5"),
    ("[4294967296,0,==]", "argument [4294967296,0,==]: '4294967296' is not an unsigned 32-bit number"),
    ("[0-1,0,==]", "argument [0-1,0,==]: '0-1' is not a number"),
    ("[0,0]", "argument [0,0]: expected [index,value,op] or [index,value,op,mask]"),
    ("[]", "argument []: expected [index,value,op] or [index,value,op,mask]"),
    ("[0,0,==,1,2]", "argument [0,0,==,1,2]: expected [index,value,op] or [index,value,op,mask]"),
    ("[0,x,==]", "argument [0,x,==]: 'x' is not a number"),
    ("[0,,==]", "argument [0,,==]: '' is not a number"),
    ("[0,-1,==]", "argument [0,-1,==]: '-1' is not an unsigned 64-bit number"),
    ("[0,0x-1,==]", "argument [0,0x-1,==]: '0x-1' is not a number"),
    ("[0,0x10000000000000000,==]", "argument [0,0x10000000000000000,==]: '0x10000000000000000' is not an unsigned "
                                   "64-bit number"),
    ("[0,1,&=,-2]", "argument [0,1,&=,-2]: '-2' is not an unsigned 64-bit number"),
    ("[0,0,=~]", "argument [0,0,=~]: unknown operator '=~' (expected one of SCMP_CMP_NE, !=, SCMP_CMP_LT, <, "
                 "SCMP_CMP_LE, <=, SCMP_CMP_EQ, ==, SCMP_CMP_GE, >=, SCMP_CMP_GT, >, SCMP_CMP_MASKED_EQ, &=)"),
    ("[0,0,scmp_cmp_eq]", "argument [0,0,scmp_cmp_eq]: unknown operator 'scmp_cmp_eq' (expected one of "
                          "SCMP_CMP_NE, !=, SCMP_CMP_LT, <, SCMP_CMP_LE, <=, SCMP_CMP_EQ, ==, SCMP_CMP_GE, >=, "
                          "SCMP_CMP_GT, >, SCMP_CMP_MASKED_EQ, &=)"),
    ("[0,1,==] junk", "unexpected 'junk' (arguments are written [index,value,op] or [index,value,op,mask])"),
    ("[0,1,== [1,1,==]", "unexpected '[0,1,==' (arguments are written [index,value,op] or [index,value,op,mask])"),
    ("[0,1,==] ] [1,1,==]", "unexpected ']' (arguments are written [index,value,op] or [index,value,op,mask])"),
    (" ".join(f"[{i % 6},{i},==]" for i in range(7)), "at most 6 argument comparisons per rule, not 7"),
])
def test_argument_errors(args, message):
    assert rule_refusal(f"mkdir errno 1 {args}") == (5, message)


# --- numbers as strtoull reads them -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "number"), [
    ("0", 0), ("00", 0), ("7", 7), ("10", 10), ("1234", 1234), ("07", 7), ("010", 8), ("0777", 511),
    ("0x10", 16), ("0X1f", 31), (" 0xFF\t", 255), ("0x0", 0), ("18446744073709551615", 2**64 - 1),
    ("0xffffffffffffffff", 2**64 - 1), ("01777777777777777777777", 2**64 - 1),
])
def test_c_unsigned_reads_c_bases(text, number):
    assert c_unsigned(text) == number


@pytest.mark.parametrize(("text", "bits", "message"), [
    ("08", 64, "'08' is not a number"),
    ("0x", 64, "'0x' is not a number"),
    ("", 64, "'' is not a number"),
    (" 0XZZ ", 64, "'0XZZ' is not a number"),
    ("12a", 64, "'12a' is not a number"),
    ("1_000", 64, "'1_000' is not a number"),
    ("١٢", 64, "'١٢' is not a number"),
    ("0x-1", 64, "'0x-1' is not a number"),
    ("0-7", 64, "'0-7' is not a number"),
    ("+-1", 64, "'+-1' is not a number"),
    ("-1", 64, "'-1' is not an unsigned 64-bit number"),
    ("+1", 64, "'+1' is not an unsigned 64-bit number"),
    ("-0x10", 64, "'-0x10' is not an unsigned 64-bit number"),
    ("-0", 64, "'-0' is not an unsigned 64-bit number"),
    ("18446744073709551616", 64, "'18446744073709551616' is not an unsigned 64-bit number"),
    ("100000000000000000000", 64, "'100000000000000000000' is not an unsigned 64-bit number"),
    ("0x10000000000000000", 64, "'0x10000000000000000' is not an unsigned 64-bit number"),
    ("02000000000000000000000", 64, "'02000000000000000000000' is not an unsigned 64-bit number"),
    ("4294967296", 32, "'4294967296' is not an unsigned 32-bit number"),
    ("9" * 5000, 64, f"{'9' * 5000!r} is not an unsigned 64-bit number"),
])
def test_c_unsigned_refusals(text, bits, message):
    with pytest.raises(ValueError) as info:
        c_unsigned(text, bits)
    assert type(info.value) is ValueError and str(info.value) == message


def test_c_unsigned_bit_width():
    assert c_unsigned("4294967295", 32) == 2**32 - 1
    assert c_unsigned("0xffffffff", 32) == 2**32 - 1
    assert c_unsigned("255", 8) == 255
    with pytest.raises(ValueError, match=r"^'256' is not an unsigned 8-bit number$"):
        c_unsigned("256", 8)


# --- sections and architectures -------------------------------------------------------------------------------------

SECTIONED = """\
2
blacklist
before
[all]
a
[x86]
b
[X32]
c
[x86_64]
d
[arm]
e !!! not even parsed where it does not apply
[ARM64]
f
[ALL]
g
[ppc]
h
[ppc64le]
i
[ppc64]
j
[mips]
k
[mips64]
l
[mips64n32]
m
[mipsel]
n
[mipsel64]
o
[mipsel64n32]
p
[s390x]
q
[s390]
r
"""


@pytest.mark.parametrize(("machine", "arch", "applying"), [
    ("x86_64", "amd64", "before a b c d g"),
    ("i686", "i386", "before a b g"),
    ("armv7l", "arm", None),
    ("aarch64", "arm64", None),
    ("ppc64le", "ppc64le", "before a g i"),
    ("ppc64", "ppc64", "before a g h j"),
    ("ppc", "ppc", "before a g h"),
    ("s390x", "s390x", "before a g q"),
    ("s390", "s390", "before a g r"),
    ("riscv64", "unknown", "before a g"),
])
def test_sections_choose_rules_by_host_arch(machine, arch, applying):
    if applying is None:  # [arm] applies there, and its line is not a rule
        err = refusal(SECTIONED, machine)
        assert (err.line, err.message) == (
            13, "unknown action '!!! not even parsed where it does not apply' "
                "(expected kill, kill_process, errno N, allow, trap or log)")
        return
    policy = parse(SECTIONED, machine)
    assert policy.arch == arch
    assert " ".join(str(r.syscall) for r in policy.rules) == applying
    assert [r.line for r in policy.rules][:2] == [3, 5]


@pytest.mark.parametrize(("machine", "applying"), [
    ("mips64", "before a g k l m" if sys.byteorder == "big" else "before a g n o p"),
    ("mips", "before a g k" if sys.byteorder == "big" else "before a g n"),
])
def test_mips_sections_follow_the_byte_order(machine, applying):
    without_arm = SECTIONED.replace("e !!! not even parsed where it does not apply\n", "")
    assert " ".join(str(r.syscall) for r in parse(without_arm, machine).rules) == applying


def test_mips_hosts_of_either_byte_order(monkeypatch):
    monkeypatch.setattr(sys, "byteorder", "big")
    assert (host_arch("mips64"), host_arch("mips")) == ("mips64", "mips")
    without_arm = SECTIONED.replace("e !!! not even parsed where it does not apply\n", "")
    assert " ".join(str(r.syscall) for r in parse(without_arm, "mips64").rules) == "before a g k l m"
    monkeypatch.setattr(sys, "byteorder", "little")
    assert (host_arch("mips64"), host_arch("mips")) == ("mipsel64", "mipsel")
    assert " ".join(str(r.syscall) for r in parse(without_arm, "mips").rules) == "before a g n"


def test_arm_sections():
    text = "2\nblacklist\n[arm]\ne\n[ARM64]\nf\n[x86]\nb\n"
    assert [r.syscall for r in parse(text, "armv7l").rules] == ["e"]
    assert [r.syscall for r in parse(text, "aarch64").rules] == ["e", "f"]
    assert parse(text, "aarch64").arch == "arm64"


@pytest.mark.parametrize("section", [
    "[foo]", "[Arm]", "[x86", "[]", "[", "[x86] [arm]", "[ x86 ]", "[i386]", "[x86x", "[allx", "[aLL]", "[X86_64",
    "[x86]]", "[[x86]",
])
def test_unknown_section_is_an_error(section):
    err = refusal(f"2\nblacklist\nmkdir\n{section}\nrmdir\n")
    assert (err.line, err.message) == (4, f"unknown section {section!r}")


def test_a_section_ends_at_the_next_one_and_all_reopens():
    text = "2\nwhitelist\n[arm64]\nx\n[all]\ny\n[s390]\nz\n[ALL]\nw\n"
    assert [(r.syscall, r.line) for r in parse(text).rules] == [("y", 6), ("w", 10)]


@pytest.mark.parametrize(("machine", "arch"), [
    ("x86_64", "amd64"), ("i686", "i386"), ("i386", "unknown"), ("i586", "unknown"), ("aarch64", "arm64"),
    ("aarch64_be", "arm64"), ("armv7l", "arm"), ("armv7", "arm"), ("armv6l", "unknown"), ("ppc64le", "ppc64le"),
    ("ppc64", "ppc64"), ("ppc", "ppc"), ("ppcle", "ppc"), ("s390x", "s390x"), ("s390", "s390"),
    ("riscv64", "unknown"), ("", "unknown"), ("x86_64 ", "unknown"),
    ("mips64", "mipsel64" if sys.byteorder == "little" else "mips64"),
    ("mips", "mipsel" if sys.byteorder == "little" else "mips"),
    ("mipsn32", "mipsel" if sys.byteorder == "little" else "mips"),
])
def test_host_arch_names_as_lxc(machine, arch):
    assert host_arch(machine) == arch


def test_host_arch_defaults_to_this_machine():
    assert host_arch() == host_arch(os.uname().machine)
    assert parse_policy("2\nblacklist\n", PATH).arch == host_arch(os.uname().machine)


# --- reading a file -----------------------------------------------------------------------------------------------


def test_read_policy_parses_the_file(tmp_path: Path):
    path = tmp_path / "ok.seccomp"
    path.write_bytes(b"2\nblacklist\nmkdir errno 1 # \xff not utf-8\n[arm64]\nrmdir\n")
    assert read_policy(str(path), "aarch64") == Policy(str(path), 2, ALLOW, (
        Rule("mkdir", errno_action(1), (), 3), Rule("rmdir", KILL, (), 5)), "arm64")
    assert read_policy(str(path), "x86_64").rules == (Rule("mkdir", errno_action(1), (), 3),)
    assert read_policy(str(path)).arch == host_arch()


def test_read_policy_errors_name_the_file(tmp_path: Path):
    missing = tmp_path / "none.seccomp"
    with pytest.raises(PolicyError) as info:
        read_policy(str(missing))
    assert (info.value.path, info.value.line, info.value.message) == (
        str(missing), 0, "cannot read the seccomp profile: No such file or directory")
    with pytest.raises(PolicyError) as info:
        read_policy(str(tmp_path))
    assert str(info.value) == f"{tmp_path}:0: cannot read the seccomp profile: is a directory, not a regular file"
    bad = tmp_path / "bad.seccomp"
    bad.write_text("2\nblacklist\nmkdir frobnicate\n")
    with pytest.raises(PolicyError) as info:
        read_policy(str(bad))
    assert str(info.value) == (f"{bad}:3: unknown action 'frobnicate' "
                               "(expected kill, kill_process, errno N, allow, trap or log)")


def test_actions_and_operators_are_the_kernels_and_libseccomps_numbers():
    assert (KILL, TRAP, ERRNO_BASE, ALLOW) == (0, 0x30000, 0x50000, 0x7FFF0000)
    assert (CMP_NE, CMP_LT, CMP_LE, CMP_EQ, CMP_GE, CMP_GT, CMP_MASKED_EQ) == (1, 2, 3, 4, 5, 6, 7)
