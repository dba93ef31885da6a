"""Properties of the seccomp policy parser: any text gives a Policy or a PolicyError naming its first bad
line, and a policy written out in any of the spellings LXC accepts parses back to what was written."""

from __future__ import annotations

import errno

import pyseccomp
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lxcframe.plugins.seccomp.policy import (
    ALLOW,
    KILL,
    TRAP,
    ArgCmp,
    Policy,
    PolicyError,
    Rule,
    errno_action,
    parse_policy,
)

PATH = "/etc/lxc/p.seccomp"

#: Real syscall names, from libseccomp's x86_64 table.
SYSCALLS = sorted({pyseccomp.resolve_syscall(pyseccomp.Arch.X86_64, n).decode() for n in range(0, 335)}
                  - {"UNKNOWN"})
SECTION_NAMES = ("x86", "x32", "x86_64", "arm", "arm64", "ppc64le", "ppc64", "ppc", "mips64", "mips64n32", "mips",
                 "mipsel64", "mipsel64n32", "mipsel", "s390x", "s390", "all")
#: uname -m -> the sections whose rules apply there ("all" applies everywhere).
APPLYING = {
    "x86_64": {"x86", "x32", "x86_64"}, "i686": {"x86"}, "aarch64": {"arm", "arm64"}, "armv7l": {"arm"},
    "ppc64le": {"ppc64le"}, "ppc64": {"ppc64", "ppc"}, "ppc": {"ppc"}, "s390x": {"s390x"}, "s390": {"s390"},
    "riscv64": set(),
}
OPERATORS = {1: ("SCMP_CMP_NE", "!="), 2: ("SCMP_CMP_LT", "<"), 3: ("SCMP_CMP_LE", "<="), 4: ("SCMP_CMP_EQ", "=="),
             5: ("SCMP_CMP_GE", ">="), 6: ("SCMP_CMP_GT", ">"), 7: ("SCMP_CMP_MASKED_EQ", "&=")}


# --- any text ----------------------------------------------------------------------------------------------------

word = st.sampled_from([
    *SYSCALLS[:40], "reject_force_umount", "kill", "allow", "trap", "errno", "notify", "log", "1", "0", "-1", "4096",
    "0x10", "07", "08", "²", "#", "[", "]", "[0,1,==]", "[6,1,==]", "[0,1,&=,3]", "[0,-1,==]", "[0,1]", "[x86_64]",
    "[X86]", "[Arm]", "[all]", "[0,0x,<]", "[1,0x1_0,>]", "\t", "debug", "whitelist", "blacklist",
])
good_rule = st.builds(
    lambda name, action, args: " ".join([name, action, *args]).strip(), st.sampled_from(SYSCALLS),
    st.sampled_from(["", "", "kill", "allow", "trap", "errno 1", "errno 4095"]),
    st.lists(st.sampled_from(["[0,1,==]", "[1,0x10,&=,0x30]", "[5,010,SCMP_CMP_GT]", "[2,0,!=]"]), max_size=3))
line = st.one_of(
    good_rule, good_rule, good_rule,
    st.lists(word, max_size=5).map(" ".join),
    st.text(max_size=12),
    st.sampled_from(SECTION_NAMES).map(lambda s: f"[{s}]"),
)
good_version = st.sampled_from(["2", "1", " 2 ", "2 # v2"])
good_header = st.sampled_from(["blacklist", "whitelist", "allowlist", "denylist", "blacklist errno 1",
                               "whitelist trap"])
bad_version = st.sampled_from(["3", "", "02", "2 blacklist"])
bad_header = st.sampled_from(["greylist", "blacklist notify", "whitelist debug", "", "denylist errno"])


def policy_text(version: st.SearchStrategy[str], header: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(lambda v, h, body, sep: sep.join([v, h, *body]), version, header, st.lists(line, max_size=8),
                     st.sampled_from(["\n", "\r\n"]))


texts = st.one_of(policy_text(good_version, good_header), policy_text(bad_version, good_header),
                  policy_text(good_version, bad_header), st.text(max_size=60))


@settings(derandomize=True, max_examples=400, deadline=None)
@given(text=texts, machine=st.sampled_from(sorted(APPLYING)))
@example(text="1\nwhitelist\n²\n", machine="x86_64")
@example(text="1\nwhitelist\n" + "7" * 5000 + "\n", machine="x86_64")
@example(text="2\nblacklist\nmkdir errno " + "0" * 5000 + "1\n", machine="x86_64")
@example(text="2\nblacklist\nmkdir [0,0x-1,==]\n", machine="x86_64")
@example(text="1\nwhitelist\n4294967356\n", machine="x86_64")
def test_any_text_is_a_policy_or_an_error_naming_its_first_bad_line(text, machine):
    lines = text.splitlines()
    try:
        policy = parse_policy(text, PATH, machine)
    except PolicyError as err:
        assert type(err) is PolicyError
        assert err.path == PATH and str(err) == f"{PATH}:{err.line}: {err.message}"
        assert 1 <= err.line <= max(len(lines), 2)
        # The lines before it parse (once past the header), the lines up to it fail the same way.
        if err.line > 2:
            parse_policy("\n".join(lines[:err.line - 1]), PATH, machine)
        with_it = "\n".join(lines[:err.line])
        try:
            parse_policy(with_it, PATH, machine)
        except PolicyError as again:
            assert (again.line, again.message) == (err.line, err.message)
        else:
            raise AssertionError(f"{with_it!r} parses")
    else:
        assert type(policy) is Policy and policy.path == PATH and policy.version in (1, 2)
        assert all(3 <= rule.line <= len(lines) for rule in policy.rules)
        assert [rule.line for rule in policy.rules] == sorted({rule.line for rule in policy.rules})
        # What reaches libseccomp fits its C types: an int syscall number, u64 values and masks.
        for rule in policy.rules:
            assert isinstance(rule.syscall, str) or 0 <= rule.syscall < 2**31
            assert len(rule.args) <= 6
            for arg in rule.args:
                assert 0 <= arg.index < 6 and 1 <= arg.op <= 7 and 0 <= arg.value < 2**64 and 0 <= arg.mask < 2**64


# --- written out and read back ---------------------------------------------------------------------------------


def spell_number(draw: st.DrawFn, number: int) -> str:
    spelling = draw(st.sampled_from(["dec", "hex", "HEX", "oct"]))
    if spelling == "hex":
        return f"0x{number:x}"
    if spelling == "HEX":
        return f"0X{number:X}"
    if spelling == "oct":
        return f"0{number:o}"
    return str(number)


@st.composite
def comparisons(draw: st.DrawFn) -> tuple[ArgCmp, str]:
    index = draw(st.integers(0, 5))
    op = draw(st.integers(1, 7))
    value = draw(st.one_of(st.integers(0, 2**64 - 1), st.integers(0, 0o777)))
    mask = draw(st.one_of(st.none(), st.integers(0, 2**64 - 1)))
    fields = [spell_number(draw, index), spell_number(draw, value), draw(st.sampled_from(OPERATORS[op]))]
    if mask is not None:
        fields.append(spell_number(draw, mask))
    pad = draw(st.sampled_from(["", " "]))
    return ArgCmp(index, op, value, mask or 0), "[" + f"{pad},{pad}".join(fields) + "]"


@st.composite
def actions(draw: st.DrawFn) -> tuple[int | None, str]:
    kind = draw(st.sampled_from(["default", "kill", "allow", "trap", "errno"]))
    if kind == "default":
        return None, ""
    if kind == "errno":
        number = draw(st.integers(0, 4095))
        return errno_action(number), f"errno{draw(st.sampled_from([' ', '  ', chr(9)]))}{number}"
    return {"kill": KILL, "allow": ALLOW, "trap": TRAP}[kind], kind


@st.composite
def v2_policies(draw: st.DrawFn) -> tuple[str, str, Policy]:
    machine = draw(st.sampled_from(sorted(APPLYING)))
    kind = draw(st.sampled_from(["blacklist", "denylist", "whitelist", "allowlist"]))
    rule_default = KILL if kind in ("blacklist", "denylist") else ALLOW
    default, default_text = draw(actions())
    lines = ["2", f"{kind} {default_text}".rstrip()]
    rules = []
    applies = True
    for _ in range(draw(st.integers(0, 8))):
        choice = draw(st.sampled_from(["rule", "rule", "rule", "section", "comment", "force"]))
        if choice == "section":
            section = draw(st.sampled_from(SECTION_NAMES))
            applies = section == "all" or section in APPLYING[machine]
            lines.append(f"[{section.upper() if draw(st.booleans()) else section}]")
        elif choice == "comment":
            lines.append(draw(st.sampled_from(["", "# a comment", "   ", "\t# [x86_64] kill"])))
        elif choice == "force":
            lines.append("reject_force_umount" + draw(st.sampled_from(["", "  # refuse umount -f"])))
            if applies:
                rules.append(Rule("umount2", errno_action(errno.EACCES), (ArgCmp(1, 7, 1, 1),), len(lines)))
        else:
            name = draw(st.sampled_from(SYSCALLS))
            action, action_text = draw(actions())
            args = draw(st.lists(comparisons(), max_size=6))
            parts = [name, action_text, *(text for _, text in args)]
            text = draw(st.sampled_from([" ", "  ", "\t"])).join(p for p in parts if p)
            lines.append(text + draw(st.sampled_from(["", " # why"])))
            if applies:
                rule_action = rule_default if action is None else action
                rules.append(Rule(name, rule_action, tuple(arg for arg, _ in args), len(lines)))
    policy_default = {KILL: ALLOW, ALLOW: KILL}[rule_default] if default is None else default
    arch = {"x86_64": "amd64", "i686": "i386", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)
    arch = "unknown" if machine == "riscv64" else arch
    return "\n".join(lines) + "\n", machine, Policy(PATH, 2, policy_default, tuple(rules), arch)


@settings(derandomize=True, max_examples=100, deadline=None)
@given(written=v2_policies())
def test_a_version_2_policy_written_out_parses_back(written):
    text, machine, policy = written
    assert parse_policy(text, PATH, machine) == policy


@settings(derandomize=True, max_examples=100, deadline=None)
@given(numbers=st.lists(st.integers(0, 2**31 - 1), max_size=10), word=st.sampled_from(["whitelist", "allowlist"]),
       comment=st.sampled_from(["", " # a syscall", "\t"]))
def test_a_version_1_policy_written_out_parses_back(numbers, word, comment):
    text = "1\n" + word + "\n" + "".join(f"{n}{comment}\n" for n in numbers)
    rules = tuple(Rule(n, ALLOW, (), i + 3) for i, n in enumerate(numbers))
    assert parse_policy(text, PATH, "x86_64") == Policy(PATH, 1, KILL, rules, "amd64")
