"""The libseccomp filter built from a policy, read back from libseccomp's own listing (PFC) and the BPF.

These build filters (libseccomp runs in this process) but never load one. The host is x86_64 (amd64), so
a policy for it is stacked with the x86 and x32 ABIs; other machines' policies are built here too, to
cover their stacks as far as an x86_64 libseccomp can.
"""

from __future__ import annotations

import errno
import os
import struct

import pytest

from lxcframe.plugins.seccomp import builder
from lxcframe.plugins.seccomp.policy import Policy, Rule, parse_policy

PATH = "p.seccomp"
X86_64, X86, X32 = 0xC000003E, 0x40000003, 0xC000003E  # AUDIT_ARCH_* (x32 shares x86_64's, numbers differ)
X32_BIT = 0x40000000

#: One decision of the filter: (ABI, syscall name, its number there, the conditions on the way, action).
Decision = tuple[str, str, int, tuple[str, ...], str]


def policy_for(text: str, machine: str = "x86_64") -> Policy:
    return parse_policy(text, PATH, machine)


def decisions(built: builder.Built) -> list[Decision]:
    """Every ``action`` line of the PFC listing with the ABI, syscall and ``if`` conditions leading to it.

    A default action has the syscall ``*`` (number -1); the bad-architecture action the ABI ``*``.
    """
    found: list[Decision] = []
    arch, syscall, number = "*", "*", -1
    stack: list[tuple[int, str]] = []
    last_if: dict[int, str] = {}
    for line in builder.export_pfc(built).splitlines():
        text = line.strip()
        indent = len(line) - len(line.lstrip())
        if text.startswith("# filter for arch "):
            arch, syscall, number = text.split()[4], "*", -1
        elif text.startswith("# filter for syscall "):
            syscall = text.split('"')[1]
            number = int(text.split("(")[1].split(")")[0])
        elif text in ("# default action",):
            syscall, number = "*", -1
        elif text == "# invalid architecture action":
            arch, syscall, number = "*", "*", -1
        elif text.startswith("if ("):
            stack = [(i, c) for i, c in stack if i < indent]
            last_if[indent] = text.removeprefix("if (").removesuffix(")")
            stack.append((indent, last_if[indent]))
        elif text == "else":
            stack = [(i, c) for i, c in stack if i < indent]
            stack.append((indent, f"!({last_if[indent]})"))
        elif text.startswith("action "):
            stack = [(i, c) for i, c in stack if i < indent]
            conditions = tuple(c for _, c in stack if not c.startswith(("$arch ==", "$syscall ==")))
            found.append((arch, syscall, number, conditions, text.removeprefix("action ").removesuffix(";")))
    return found


def test_a_denylist_is_stacked_over_x86_and_x32_with_each_abis_numbers():
    built = builder.build(policy_for("2\nblacklist\nmkdir errno 1\nread\n"))
    assert built.arches == ("x86_64", "x86", "x32")
    assert built.warnings == ()
    assert sorted(decisions(built)) == sorted([
        ("x86_64", "mkdir", 83, (), "ERRNO(1)"), ("x86_64", "read", 0, (), "KILL"), ("x86_64", "*", -1, (), "ALLOW"),
        ("x86", "mkdir", 39, (), "ERRNO(1)"), ("x86", "read", 3, (), "KILL"), ("x86", "*", -1, (), "ALLOW"),
        ("x32", "mkdir", X32_BIT | 83, (), "ERRNO(1)"), ("x32", "read", X32_BIT | 0, (), "KILL"),
        ("x32", "*", -1, (), "ALLOW"),
        ("*", "*", -1, (), "KILL"),
    ])


def test_an_allowlist_with_its_own_default_action():
    built = builder.build(policy_for("2\nallowlist trap\nexit_group\nwrite errno 5\nrestart_syscall\n"))
    assert sorted(decisions(built)) == sorted([
        ("x86_64", "exit_group", 231, (), "ALLOW"), ("x86_64", "write", 1, (), "ERRNO(5)"),
        ("x86_64", "restart_syscall", 219, (), "ALLOW"), ("x86_64", "*", -1, (), "TRAP"),
        ("x86", "exit_group", 252, (), "ALLOW"), ("x86", "write", 4, (), "ERRNO(5)"),
        # Syscall 0 is a syscall like any other.
        ("x86", "restart_syscall", 0, (), "ALLOW"), ("x86", "*", -1, (), "TRAP"),
        ("x32", "exit_group", X32_BIT | 231, (), "ALLOW"), ("x32", "write", X32_BIT | 1, (), "ERRNO(5)"),
        ("x32", "restart_syscall", X32_BIT | 219, (), "ALLOW"), ("x32", "*", -1, (), "TRAP"),
        ("*", "*", -1, (), "KILL"),
    ])


def test_a_syscall_only_a_compat_abi_has_goes_to_that_abi_alone():
    # stat64 is a pseudo syscall (a negative number) on x86_64 and x32; x86 has it. socket is only
    # multiplexed through socketcall on x86 in libseccomp's table, so x86 gets no rule for it.
    built = builder.build(policy_for("2\nblacklist\nstat64 errno 2\nsocket errno 97\n"))
    assert built.arches == ("x86_64", "x86", "x32")
    rules = [d for d in decisions(built) if d[1] != "*"]
    assert sorted(rules) == sorted([
        ("x86", "stat64", 195, (), "ERRNO(2)"),
        ("x86_64", "socket", 41, (), "ERRNO(97)"),
        ("x32", "socket", X32_BIT | 41, (), "ERRNO(97)"),
    ])


def test_without_stacking_only_the_native_abi_answers():
    built = builder.build(policy_for("2\nblacklist\nmkdir errno 1\nread\nstat64\n"), stack=False)
    assert built.arches == ("x86_64",)
    assert sorted(decisions(built)) == sorted([
        ("x86_64", "mkdir", 83, (), "ERRNO(1)"), ("x86_64", "read", 0, (), "KILL"), ("x86_64", "*", -1, (), "ALLOW"),
        ("*", "*", -1, (), "KILL"),
    ])


def test_version_1_numbers_are_native_and_never_stacked():
    for stack in (True, False):
        built = builder.build(policy_for("1\nwhitelist\n0\n60\n231\n"), stack=stack)
        assert built.arches == ("x86_64",)
        assert sorted(decisions(built)) == sorted([
            ("x86_64", "read", 0, (), "ALLOW"), ("x86_64", "exit", 60, (), "ALLOW"),
            ("x86_64", "exit_group", 231, (), "ALLOW"), ("x86_64", "*", -1, (), "KILL"), ("*", "*", -1, (), "KILL"),
        ])


def test_unknown_syscalls_are_skipped_with_a_warning_naming_file_and_line():
    built = builder.build(policy_for("2\nblacklist\nno_such_call errno 1\n\nmkdir errno 1\nalso_unknown\n"))
    assert built.warnings == (
        "p.seccomp:3: unknown syscall 'no_such_call', rule skipped",
        "p.seccomp:6: unknown syscall 'also_unknown', rule skipped",
    )
    assert sorted(d[:3] for d in decisions(built) if d[1] != "*") == [
        ("x32", "mkdir", X32_BIT | 83), ("x86", "mkdir", 39), ("x86_64", "mkdir", 83)]


def test_argument_comparisons_on_each_abi():
    built = builder.build(policy_for(
        "2\nblacklist\nmkdir errno 1 [1,0700,==,7]\nioctl errno 25 [1,2,&=,0x6]\nreject_force_umount\n"))
    assert sorted(d for d in decisions(built) if d[1] != "*") == sorted([
        # 64-bit arguments are compared in two halves on x86_64; x86 and x32 compare 32 bits.
        ("x86_64", "mkdir", 83, ("$a1.hi32 == 0", "$a1.lo32 == 448"), "ERRNO(1)"),
        ("x86", "mkdir", 39, ("$a1 == 448",), "ERRNO(1)"),
        ("x32", "mkdir", X32_BIT | 83, ("$a1 == 448",), "ERRNO(1)"),
        # [index,value,&=,mask] is arg & mask == value.
        ("x86_64", "ioctl", 16, ("$a1.hi32 & 0x00000000 == 0", "$a1.lo32 & 0x00000006 == 2"), "ERRNO(25)"),
        ("x86", "ioctl", 54, ("$a1 & 0x00000006 == 2",), "ERRNO(25)"),
        # x32's ioctl is one of its own (514), not the x86_64 number moved up.
        ("x32", "ioctl", X32_BIT | 514, ("$a1 & 0x00000006 == 2",), "ERRNO(25)"),
        # umount2(target, MNT_FORCE): EACCES.
        ("x86_64", "umount2", 166, ("$a1.hi32 & 0x00000000 == 0", "$a1.lo32 & 0x00000001 == 1"), "ERRNO(13)"),
        ("x86", "umount2", 52, ("$a1 & 0x00000001 == 1",), "ERRNO(13)"),
        ("x32", "umount2", X32_BIT | 166, ("$a1 & 0x00000001 == 1",), "ERRNO(13)"),
    ])


def test_other_comparison_operators_reach_libseccomp():
    built = builder.build(policy_for("2\nblacklist\nkill errno 1 [1,9,SCMP_CMP_GE]\n"), stack=False)
    assert [d for d in decisions(built) if d[1] == "kill"] == [
        ("x86_64", "kill", 62, ("$a1.hi32 > 0",), "ERRNO(1)"),
        ("x86_64", "kill", 62, ("!($a1.hi32 > 0)", "$a1.hi32 == 0", "$a1.lo32 >= 9"), "ERRNO(1)"),
    ]


def test_libseccomp_refusals_name_file_line_rule_and_action():
    # libseccomp refuses a rule whose action is the default one.
    with pytest.raises(builder.BuildError) as info:
        builder.build(policy_for("2\nblacklist\nread\n\nmkdir allow\n"))
    assert str(info.value) == "p.seccomp:5: cannot add the rule for 'mkdir' (allow): Permission denied"
    with pytest.raises(builder.BuildError) as info:
        builder.build(policy_for("2\nwhitelist\nread errno 1 [0,1,==] [0,2,==]\n"))
    assert str(info.value) == "p.seccomp:3: cannot add the rule for 'read' (errno 1): Invalid argument"
    # A compat ABI refuses it as well: stat64 exists on x86 only.
    with pytest.raises(builder.BuildError) as info:
        builder.build(policy_for("2\nblacklist trap\nstat64 trap\n"))
    assert str(info.value) == "p.seccomp:3: cannot add the rule for 'stat64' (trap): Permission denied"


def test_other_hosts_stacks():
    assert builder.build(policy_for("2\nblacklist\nmkdir\n", "aarch64")).arches == ("aarch64", "arm")
    little = builder.build(policy_for("2\nblacklist\nmkdir\n", "mips64"))
    assert little.arches == ("mipsel64", "mipsel", "mipsel64n32")
    assert [d[0] for d in decisions(little) if d[1] == "*"] == ["x86_64", "mipsel", "mipsel64n32", "*"]
    # Nothing to stack with: only the native ABI.
    for machine in ("riscv64", "i686", "s390x"):
        built = builder.build(policy_for("2\nblacklist\nmkdir\n", machine))
        assert built.arches == ("native",)
        assert sorted(decisions(built)) == sorted([
            ("x86_64", "mkdir", 83, (), "KILL"), ("x86_64", "*", -1, (), "ALLOW"), ("*", "*", -1, (), "KILL")])


def test_an_abi_of_the_other_byte_order_cannot_be_stacked():
    with pytest.raises(builder.BuildError) as info:
        builder.build(policy_for("2\nblacklist\nmkdir\n", "ppc64"))
    assert str(info.value) == "p.seccomp: cannot stack the ppc filter: Numerical argument out of domain"
    # Unless stacking is left out.
    assert builder.build(policy_for("2\nblacklist\nmkdir\n", "ppc64"), stack=False).arches == ("ppc64",)


def test_the_filter_lets_ptracers_skip_calls_and_leaves_no_new_privs_off():
    built = builder.build(policy_for("2\nblacklist\nmkdir\n"))
    assert built.filter.get_attr(builder.pyseccomp.Attr.CTL_NNP) == 0
    assert built.filter.get_attr(builder.pyseccomp.Attr.API_TSKIP) == 1
    assert built.filter.get_attr(builder.pyseccomp.Attr.ACT_DEFAULT) == builder.pyseccomp.ALLOW


def test_compiled_program_checks_the_arch_first_and_is_what_export_bpf_writes():
    built = builder.build(policy_for("2\nblacklist\nmkdir errno 1\n"))
    program = builder.compile_bpf(built)
    assert len(program) % 8 == 0 and 8 < len(program) <= 4096 * 8
    insns = [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    # ld [4] (seccomp_data.arch), and the last instruction returns.
    assert insns[0] == (0x20, 0, 0, 4)
    assert insns[-1][0] == 0x06
    # The ERRNO(1) return and the x86 and x86_64 architecture checks are in the program.
    returns = {k for code, _, _, k in insns if code == 0x06}
    assert {0x00050001, 0x7FFF0000, 0} <= returns
    assert {X86, X86_64} <= {k for code, _, _, k in insns if code == 0x15}
    fd = builder.export_bpf(built)
    try:
        assert os.pread(fd, 1 << 16, 0) == program
        assert not os.get_inheritable(fd)
        assert os.readlink(f"/proc/self/fd/{fd}") == "/memfd:lxcframe-seccomp (deleted)"
    finally:
        os.close(fd)
    assert builder.compile_bpf(builder.build(policy_for("2\nblacklist\nmkdir errno 1\n"))) == program


def test_exports_leave_no_descriptor_open():
    built = builder.build(policy_for("2\nblacklist\nmkdir errno 1\n"))
    before = sorted(os.listdir("/proc/self/fd"))
    builder.compile_bpf(built)
    builder.export_pfc(built)
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_pfc_is_libseccomps_listing():
    pfc = builder.export_pfc(builder.build(policy_for("2\nblacklist\nmkdir errno 1\n"), stack=False))
    assert pfc.startswith("#\n# pseudo filter code start\n#\n# filter for arch x86_64 (3221225534)\n")
    assert pfc.endswith("# invalid architecture action\naction KILL;\n#\n# pseudo filter code end\n#\n")


def test_stackable_reports_what_can_be_stacked_here_and_why_not_the_rest():
    assert builder.stackable("amd64") == (("x86", "x32"), "")
    assert builder.stackable("arm64") == (("arm",), "")
    assert builder.stackable("mipsel64") == (("mipsel", "mipsel64n32"), "")
    assert builder.stackable("ppc64") == ((), "ppc: Numerical argument out of domain")
    assert builder.stackable("mips64") == ((), "mips: Numerical argument out of domain; "
                                               "mips64n32: Numerical argument out of domain")
    assert builder.stackable("i386") == ((), "")
    assert builder.stackable("unknown") == ((), "")


def test_a_refused_rule_is_named_by_its_own_line():
    policy = Policy(PATH, 2, builder.pyseccomp.ALLOW, (Rule("mkdir", builder.pyseccomp.ERRNO(1), (), 7),
                                                       Rule("rmdir", builder.pyseccomp.ALLOW, (), 9)), "amd64")
    with pytest.raises(builder.BuildError) as info:
        builder.build(policy)
    assert str(info.value) == "p.seccomp:9: cannot add the rule for 'rmdir' (allow): Permission denied"


def test_a_refused_version_1_number_is_named_as_a_number():
    # The default action again, as the rule's: libseccomp refuses the rule.
    policy = Policy(PATH, 1, builder.pyseccomp.ALLOW, (Rule(60, builder.pyseccomp.ALLOW, (), 4),), "amd64")
    with pytest.raises(builder.BuildError) as info:
        builder.build(policy)
    assert str(info.value) == "p.seccomp:4: cannot add the rule for 60 (allow): Permission denied"


class ListingFilter:
    """Stands in for a libseccomp filter whose export writes ``data`` or fails; records the memfd it got."""

    def __init__(self, data: bytes | None) -> None:
        self.data = data
        self.targets: list[str] = []

    def _export(self, file) -> None:
        self.targets.append(os.readlink(f"/proc/self/fd/{file.fileno()}"))
        if self.data is None:
            raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))
        os.write(file.fileno(), self.data)

    export_bpf = export_pfc = _export


def test_exports_write_into_named_memfds_and_close_them_when_the_export_fails():
    before = sorted(os.listdir("/proc/self/fd"))
    failing = ListingFilter(None)
    for export in (builder.export_bpf, builder.compile_bpf, builder.export_pfc):
        with pytest.raises(OSError) as info:
            export(builder.Built(failing, ("x86_64",), ()))
        assert info.value.errno == errno.ENOMEM
    assert failing.targets == ["/memfd:lxcframe-seccomp (deleted)", "/memfd:lxcframe-seccomp (deleted)",
                               "/memfd:lxcframe-seccomp-pfc (deleted)"]
    assert sorted(os.listdir("/proc/self/fd")) == before
    # A listing that is not UTF-8 is still a listing.
    assert builder.export_pfc(builder.Built(ListingFilter(b"# \xff\n"), ("x86_64",), ())) == "# \ufffd\n"
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_log_and_kill_process_reach_libseccomp_as_their_own_actions():
    built = builder.build(policy_for("2\ndenylist\nmkdir log\nrmdir kill_process\n"), stack=False)
    assert sorted(decisions(built)) == sorted([
        ("x86_64", "mkdir", 83, (), "LOG"), ("x86_64", "rmdir", 84, (), "KILL_PROCESS"),
        ("x86_64", "*", -1, (), "ALLOW"), ("*", "*", -1, (), "KILL"),
    ])
