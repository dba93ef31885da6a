"""Seccomp: LXC's policy format, the filter with architecture stacking, and real containers under it."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from lxcframe.container import Container
from lxcframe.errors import ConfigError
from lxcframe.plugins.seccomp import builder
from lxcframe.plugins.seccomp.load import load_program, seccomp_mode, why_not_filter
from lxcframe.plugins.seccomp.policy import (
    ALLOW,
    CMP_EQ,
    CMP_MASKED_EQ,
    KILL,
    OPERATORS,
    TRAP,
    ArgCmp,
    PolicyError,
    Rule,
    errno_action,
    host_arch,
    parse_policy,
    read_policy,
)

from .conftest import compile_static, run_cli
from .test_lifecycle import capture

COMMON_SECCOMP = "/usr/share/lxc/config/common.seccomp"
MKDIR_EPERM = "2\nblacklist\nmkdir errno 1\n"


def parse(text: str, machine: str = "x86_64"):
    return parse_policy(text, "p.seccomp", machine)


def error_of(text: str, machine: str = "x86_64") -> str:
    with pytest.raises(PolicyError) as info:
        parse(text, machine)
    return str(info.value)


# --- the policy format -------------------------------------------------------------------------------------------


def test_v1_whitelist_of_numbers_kills_the_rest():
    for word in ("whitelist", "allowlist"):
        policy = parse(f"1\n{word}\n0\n# a comment\n\n60  # exit\n")
        assert policy.version == 1 and policy.default_action == KILL
        assert [(r.syscall, r.action, r.line) for r in policy.rules] == [(0, ALLOW, 3), (60, ALLOW, 6)]


@pytest.mark.parametrize(("text", "where", "what"), [
    ("", 1, "version 1 or 2"),
    ("3\nblacklist\n", 1, "version 1 or 2"),
    ("x\n", 1, "version 1 or 2"),
    ("2\n", 2, "missing the policy type"),
    ("2\n\nmkdir\n", 2, "missing the policy type"),
    ("1\nblacklist\n", 2, "must be a whitelist"),
    ("1\nwhitelist\n12\nread\n", 4, "expected a syscall number"),
    ("1\nwhitelist\n-1\n", 3, "expected a syscall number"),
    ("2\nblacklist debug\n", 2, "'debug' is not supported"),
    ("1\nwhitelist debug\n", 2, "'debug' is not supported"),
    ("2\ngreylist\n", 2, "unknown policy type 'greylist'"),
    ("2\nblacklist bogus\n", 2, "unknown action 'bogus'"),
    ("2\nblacklist notify\n", 2, "'notify' is not supported"),
])
def test_header_errors_name_file_and_line(text, where, what):
    message = error_of(text)
    assert message.startswith(f"p.seccomp:{where}: ")
    assert what in message


def test_v2_policy_types_and_their_defaults():
    for word in ("blacklist", "denylist"):
        policy = parse(f"2\n{word}\nmkdir\n")
        assert policy.default_action == ALLOW and policy.rules == (Rule("mkdir", KILL, (), 3),)
    for word in ("whitelist", "allowlist"):
        policy = parse(f"2\n{word}\nread\n")
        assert policy.default_action == KILL and policy.rules == (Rule("read", ALLOW, (), 3),)


@pytest.mark.parametrize(("header", "default"), [
    ("blacklist errno 38", errno_action(38)), ("blacklist kill", KILL), ("whitelist trap", TRAP),
    ("whitelist allow", ALLOW), ("whitelist errno 1 # comment", errno_action(1)),
])
def test_v2_default_action_on_line_two(header, default):
    policy = parse(f"2\n{header}\nread\n")
    assert policy.default_action == default
    # The rule default stays the policy type's: an overridden default action does not change it.
    assert policy.rules[0].action == (KILL if header.startswith("black") else ALLOW)


@pytest.mark.parametrize(("line", "action"), [
    ("mkdir kill", KILL), ("mkdir allow", ALLOW), ("mkdir trap", TRAP), ("mkdir errno 1", errno_action(1)),
    ("mkdir errno 0", errno_action(0)), ("mkdir errno 4095", errno_action(4095)), ("mkdir", KILL),
    ("mkdir # kill it", KILL), ("mkdir errno 13 # with a comment", errno_action(13)),
    ("mkdir\terrno 2", errno_action(2)), ("  mkdir   errno   5  ", errno_action(5)),
])
def test_rule_actions(line, action):
    [rule] = parse(f"2\nblacklist\n{line}\n").rules
    assert (rule.syscall, rule.action) == ("mkdir", action)


@pytest.mark.parametrize(("line", "what"), [
    ("mkdir notify", "'notify' is not supported"),
    ("mkdir explode", "unknown action 'explode'"),
    ("mkdir errno", "'errno' needs one number"),
    ("mkdir errno x", "not a number"),
    ("mkdir errno 4096", "expected 0..4095"),
    ("mkdir kill now", "unexpected 'now' after action 'kill'"),
    ("mk/dir", "not a syscall name"),
    ("reject_force_umount errno 1", "takes no action"),
])
def test_rule_errors_name_file_and_line(line, what):
    message = error_of(f"2\nblacklist\n# comment\n\n{line}\n")
    assert message.startswith("p.seccomp:5: ") and what in message


@pytest.mark.parametrize("op", sorted(OPERATORS))
def test_argument_operators_in_both_spellings(op):
    [rule] = parse(f"2\nblacklist\nmkdir errno 1 [1,0x1ff,{op}]\n").rules
    assert rule.args == (ArgCmp(1, OPERATORS[op], 0o777, 0),)


def test_arguments_values_masks_and_bases():
    line = "mmap errno 1 [0,0,==] [2, 0x4, &=, 0x6] [3,010,SCMP_CMP_MASKED_EQ,0xffffffffffffffff]"
    [rule] = parse(f"2\nblacklist\n{line}\n").rules
    assert rule.args == (
        ArgCmp(0, CMP_EQ, 0, 0),
        ArgCmp(2, CMP_MASKED_EQ, 4, 6),
        ArgCmp(3, CMP_MASKED_EQ, 8, 2**64 - 1),
    )
    # Arguments after the name alone take the default action.
    [rule] = parse("2\nwhitelist\nopenat [2,0,==]\n").rules
    assert rule.action == ALLOW and rule.args == (ArgCmp(2, CMP_EQ, 0, 0),)
    six = " ".join(f"[{i},{i},==]" for i in range(6))
    assert len(parse(f"2\nblacklist\nioctl errno 1 {six}\n").rules[0].args) == 6


@pytest.mark.parametrize(("args", "what"), [
    ("[6,0,==]", "index must be 0..5"),
    ("[0,0]", "expected [index,value,op]"),
    ("[0,0,==,1,2]", "expected [index,value,op]"),
    ("[0,x,==]", "'x' is not a number"),
    ("[0,-1,==]", "not an unsigned 64-bit number"),
    ("[0,0x10000000000000000,==]", "not an unsigned 64-bit number"),
    ("[0,0,=~]", "unknown operator '=~'"),
    ("[0,1,==] junk", "unexpected 'junk'"),
    ("[0,1,==", "unexpected '[0,1,=='"),
    (" ".join(f"[{i % 6},{i},==]" for i in range(7)), "at most 6 argument comparisons"),
])
def test_argument_errors(args, what):
    message = error_of(f"2\nblacklist\nmkdir errno 1 {args}\n")
    assert message.startswith("p.seccomp:3: ") and what in message


def test_reject_force_umount_is_umount2_with_mnt_force_refused_eacces():
    [rule] = parse("2\nblacklist\nreject_force_umount  # comment this to allow umount -f\n").rules
    assert rule == Rule("umount2", errno_action(errno.EACCES), (ArgCmp(1, CMP_MASKED_EQ, 1, 1),), 3)


def test_sections_choose_rules_by_host_arch():
    text = textwrap.dedent("""\
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
        [mips]
        [mipsel64n32]
        [s390x]
        [s390]
        i
        """)
    assert [r.syscall for r in parse(text, "x86_64").rules] == ["before", "a", "b", "c", "d", "g"]
    assert [r.syscall for r in parse(text, "i686").rules] == ["before", "a", "b", "g"]
    assert parse(text, "x86_64").arch == "amd64"
    with pytest.raises(PolicyError, match=r"p\.seccomp:13: "):
        parse(text, "aarch64")  # [arm] applies there, and its rule is not a rule


@pytest.mark.parametrize("section", ["[foo]", "[Arm]", "[x86", "[]", "[x86] [arm]"])
def test_unknown_section_is_an_error(section):
    message = error_of(f"2\nblacklist\nmkdir\n{section}\nrmdir\n")
    assert message.startswith("p.seccomp:4: ") and "unknown section" in message


@pytest.mark.parametrize(("machine", "arch"), [
    ("x86_64", "amd64"), ("i686", "i386"), ("i386", "unknown"), ("aarch64", "arm64"), ("armv7l", "arm"),
    ("ppc64le", "ppc64le"), ("ppc64", "ppc64"), ("ppc", "ppc"), ("s390x", "s390x"), ("s390", "s390"),
    ("riscv64", "unknown"),
])
def test_host_arch_names_as_lxc(machine, arch):
    assert host_arch(machine) == arch


def test_read_policy_errors_name_the_file(tmp_path):
    missing = tmp_path / "none.seccomp"
    with pytest.raises(PolicyError, match=re.escape(f"{missing}:0: cannot read")):
        read_policy(str(missing))
    bad = tmp_path / "bad.seccomp"
    bad.write_text("2\nblacklist\nmkdir frobnicate\n")
    with pytest.raises(PolicyError, match=re.escape(f"{bad}:3: unknown action")):
        read_policy(str(bad))


def test_debian_common_seccomp_parses_and_builds():
    policy = read_policy(COMMON_SECCOMP)
    assert policy.default_action == ALLOW
    assert [r.syscall for r in policy.rules] == [
        "umount2", "kexec_load", "open_by_handle_at", "init_module", "finit_module", "delete_module"]
    built = builder.build(policy)
    assert built.warnings == () and built.arches == ("x86_64", "x86", "x32")
    pfc = builder.export_pfc(built)
    assert "filter for arch x86 (1073741827)" in pfc and "filter for arch x32" in pfc
    assert len(builder.compile_bpf(built)) % 8 == 0


# --- the builder -------------------------------------------------------------------------------------------------


def test_unknown_syscalls_are_skipped_with_a_warning():
    built = builder.build(parse("2\nblacklist\nno_such_call errno 1\nmkdir errno 1\n"))
    assert built.warnings == ("p.seccomp:3: unknown syscall 'no_such_call', rule skipped",)


def test_stacking_adds_the_compat_abis_and_can_be_left_out_for_tests():
    policy = parse(MKDIR_EPERM)
    assert builder.build(policy).arches == ("x86_64", "x86", "x32")
    assert builder.build(policy, stack=False).arches == ("x86_64",)
    # Version 1 lists native numbers: never stacked (as LXC).
    assert builder.build(parse("1\nwhitelist\n0\n")).arches == ("x86_64",)


def test_libseccomp_refusals_name_file_and_line():
    # libseccomp refuses a rule whose action is the default one.
    with pytest.raises(builder.BuildError, match=r"p.seccomp:3: .*'mkdir' \(allow\)"):
        builder.build(parse("2\nblacklist\nmkdir allow\n"))


def test_already_filtered_or_no_kernel_support_skips(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tx\nSeccomp:\t0\n")
    assert seccomp_mode(str(status)) == 0 and why_not_filter(False, str(status)) is None
    status.write_text("Name:\tx\nSeccomp:\t2\n")
    assert "already under seccomp" in (why_not_filter(False, str(status)) or "")
    assert why_not_filter(True, str(status)) is None
    status.write_text("Name:\tx\n")
    assert "no seccomp support" in (why_not_filter(False, str(status)) or "")
    assert why_not_filter(False, str(tmp_path / "no-proc")) is None


# --- a static helper that makes raw syscalls ----------------------------------------------------------------------

PROBE_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/syscall.h>

/* Static storage of a non-PIE static binary lies below 4 GiB, so int $0x80 can pass its address. */
static char path32[256];

static long ia32(long nr, long a, long b) {
    long ret;
    __asm__ volatile ("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b) : "memory", "r8", "r9", "r10", "r11");
    return ret;
}

static long native(long ret) { return ret < 0 ? -errno : ret; }

int main(int argc, char **argv) {
    long ret;
    const char *what = argc > 1 ? argv[1] : "";
    if (argc > 2)
        strncpy(path32, argv[2], sizeof(path32) - 1);
    if (!strcmp(what, "ia32-getpid"))
        ret = ia32(20, 0, 0);
    else if (!strcmp(what, "ia32-mkdir"))
        ret = ia32(39, (long)path32, 0755);
    else if (!strcmp(what, "ia32-umount-force"))
        ret = ia32(52, (long)path32, MNT_FORCE);
    else if (!strcmp(what, "mkdir"))
        ret = native(syscall(SYS_mkdir, path32, argc > 3 ? strtol(argv[3], NULL, 8) : 0755));
    else if (!strcmp(what, "umount-force"))
        ret = native(umount2(path32, MNT_FORCE));
    else if (!strcmp(what, "umount"))
        ret = native(umount2(path32, 0));
    else
        return 2;
    printf("%s=%ld\n", what, ret);
    return 0;
}
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> str:
    """The helper, compiled static so that it runs in a busybox rootfs."""
    return compile_static(tmp_path_factory.mktemp("probe"), "probe", PROBE_SOURCE)


def _install_probe(container: Container, probe: str) -> None:
    rootfs = container.load_config().get("lxc.rootfs.path")
    shutil.copy2(probe, os.path.join(rootfs, "bin", "probe"))


def _profile(tmp_path, text: str, name: str = "policy.seccomp") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _run_under(policy_text: str, argv: list[str], *, stack: bool) -> tuple[int, str]:
    """Fork, load the policy's filter (built as a container's is) and exec ``argv``: (wait status, output)."""
    program = builder.compile_bpf(builder.build(parse(policy_text), stack=stack))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(write_end, 1)
            load_program(program)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        output = pipe.read()
    _, status = os.waitpid(pid, 0)
    return status, output


def test_without_stacking_a_32bit_syscall_is_killed_and_with_it_gets_the_policy(probe, tmp_path):
    target = str(tmp_path / "made-by-ia32")
    status, output = _run_under(MKDIR_EPERM, [probe, "ia32-getpid"], stack=False)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS, (status, output)
    status, output = _run_under(MKDIR_EPERM, [probe, "ia32-getpid"], stack=True)
    assert os.WIFEXITED(status) and int(output.split("=")[1]) > 0
    status, output = _run_under(MKDIR_EPERM, [probe, "ia32-mkdir", target], stack=True)
    assert output == f"ia32-mkdir={-errno.EPERM}\n"
    assert not os.path.exists(target)


# --- containers ---------------------------------------------------------------------------------------------------

@pytest.mark.container
def test_blacklist_policy_denies_mkdir_and_allows_the_rest(make_container, probe, tmp_path):
    container = make_container("sc1", config=(("lxc.seccomp.profile", _profile(tmp_path, MKDIR_EPERM)),))
    _install_probe(container, probe)
    code, out = capture(container, "/bin/sh", "-c",
                        "mkdir /made; echo rc=$?; touch /touched && echo touched; grep '^Seccomp:' /proc/self/status;"
                        " probe ia32-getpid; probe ia32-mkdir /made32; probe mkdir /made64", execute=True)
    assert code == 0, out
    assert "Operation not permitted" in out and "rc=1" in out and "touched" in out
    assert "Seccomp:\t2" in out
    # x86 (int $0x80) syscalls meet the same policy instead of the bad-arch KILL.
    assert "ia32-getpid=" in out and f"ia32-mkdir={-errno.EPERM}" in out and f"mkdir={-errno.EPERM}" in out
    rootfs = container.load_config().get("lxc.rootfs.path")
    assert not any(os.path.exists(os.path.join(rootfs, name)) for name in ("made", "made32", "made64"))


@pytest.mark.container
def test_argument_comparisons_apply_in_the_container(make_container, probe, tmp_path):
    policy = "2\nblacklist\nmkdir errno 13 [1,0700,==]\nmkdir errno 1 [1,0040,&=,0040]\n"
    container = make_container("sc2", config=(("lxc.seccomp.profile", _profile(tmp_path, policy)),))
    _install_probe(container, probe)
    code, out = capture(container, "/bin/sh", "-c",
                        "probe mkdir /a 700; probe mkdir /b 750; probe mkdir /c 705; probe ia32-mkdir /d",
                        execute=True)
    assert code == 0, out
    # 0755 for the ia32 call: group-read is set, so the masked rule refuses it.
    assert out.split() == [f"mkdir={-errno.EACCES}", f"mkdir={-errno.EPERM}", "mkdir=0", f"ia32-mkdir={-errno.EPERM}"]


def _all_native_numbers_but(*names: str) -> list[int]:
    import pyseccomp

    excluded = {pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) for name in names}
    numbers = []
    for number in range(1024):
        try:
            pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, number)
        except ValueError:
            continue
        if number not in excluded:
            numbers.append(number)
    return numbers


@pytest.mark.container
def test_v1_whitelist_kills_what_it_does_not_list(make_container, tmp_path):
    numbers = _all_native_numbers_but("mkdir")
    text = "1\nwhitelist\n" + "".join(f"{n}\n" for n in numbers)
    container = make_container("sc3", config=(("lxc.seccomp.profile", _profile(tmp_path, text)),))
    code, out = capture(container, "/bin/sh", "-c", "echo listed; mkdir /x; echo rc=$?", execute=True)
    assert code == 0, out
    assert "listed" in out and f"rc={128 + signal.SIGSYS}" in out


@pytest.mark.container
def test_common_seccomp_of_debian_loads_and_the_container_runs(make_container, probe):
    container = make_container("sc4", config=(("lxc.seccomp.profile", COMMON_SECCOMP),))
    _install_probe(container, probe)
    init = container.start()
    try:
        assert container.wait("RUNNING", 5)
        with open(f"/proc/{init}/status") as handle:
            assert "Seccomp:\t2" in handle.read()
        code, out = capture(container, "/bin/sh", "-c",
                            "probe umount-force /nowhere; probe umount /nowhere; probe ia32-umount-force /nowhere")
        assert code == 0, out
        assert out.split() == [f"umount-force={-errno.EACCES}", f"umount={-errno.ENOENT}",
                               f"ia32-umount-force={-errno.EACCES}"]
    finally:
        container.stop(kill=True)


def _attached_seccomp(container: Container) -> str:
    code, out = capture(container, "/bin/sh", "-c", "grep '^Seccomp:' /proc/$$/status; mkdir /attached; echo rc=$?")
    assert code == 0, out
    return out


@pytest.mark.container
def test_attached_processes_get_the_filter_too(make_container, tmp_path):
    container = make_container("sc5", config=(("lxc.seccomp.profile", _profile(tmp_path, MKDIR_EPERM)),))
    container.start()
    try:
        out = _attached_seccomp(container)
        assert "Seccomp:\t2" in out and "rc=1" in out
        # A multi-threaded caller attaches through a freshly executed helper: the filter comes along.
        stop = threading.Event()
        spinner = threading.Thread(target=stop.wait)
        spinner.start()
        try:
            out = _attached_seccomp(container)
        finally:
            stop.set()
            spinner.join()
        assert "Seccomp:\t2" in out and "rc=1" in out
    finally:
        container.stop(kill=True)


@pytest.mark.container
def test_disabled_plugin_refuses_the_key_unless_the_host_opted_out(make_container, lxcpath, tmp_path):
    profile = _profile(tmp_path, MKDIR_EPERM)
    container = make_container("sc6", config=(("lxc.seccomp.profile", profile),), disable=("seccomp",))
    result = run_cli("-p", "no:seccomp", "config", "validate", container.config_file_name)
    assert result.returncode == 1
    assert "lxc.seccomp.profile: handled by plugin 'seccomp', which is disabled" in result.stderr
    with pytest.raises(ConfigError, match=r"lxc\.seccomp\.profile.*plugin 'seccomp'"):
        container.execute(["/bin/true"])
    # Only a host that opted out runs it unfiltered, and is told.
    with open(os.environ["LXCFRAME_HOST_CONFIG"], "a") as handle:
        handle.write('[plugins]\nunhandled_keys = "warn"\n')
    container = Container("sc6", lxcpath, disable=("seccomp",))
    result = run_cli("-p", "no:seccomp", "config", "validate", container.config_file_name)
    assert result.returncode == 0, result.stderr
    assert "lxc.seccomp.profile: handled by plugin 'seccomp', which is disabled" in result.stdout
    code, out = capture(container, "/bin/sh", "-c", "grep '^Seccomp:' /proc/self/status; mkdir /made; echo rc=$?",
                        execute=True)
    assert code == 0 and "Seccomp:\t0" in out and "rc=0" in out


@pytest.mark.container
def test_profile_errors_stop_the_start_with_file_and_line(make_container, tmp_path):
    profile = _profile(tmp_path, "2\nblacklist\nmkdir errno\n", "broken.seccomp")
    container = make_container("sc7", config=(("lxc.seccomp.profile", profile),))
    with pytest.raises(ConfigError, match=re.escape(f"lxc.seccomp.profile: {profile}:3: 'errno' needs one number")):
        container.execute(["/bin/true"])
    container.set_config_item("lxc.seccomp.profile", str(tmp_path / "missing.seccomp"))
    with pytest.raises(ConfigError, match=r"missing\.seccomp:0: cannot read"):
        container.execute(["/bin/true"])


NESTED = """
import json, sys
from lxcframe.container import Container
from lxcframe.plugins.seccomp import builder
from lxcframe.plugins.seccomp.load import load_program
from lxcframe.plugins.seccomp.policy import parse_policy

# An allow-everything filter: this process, and whatever it starts, is already under seccomp.
load_program(builder.compile_bpf(builder.build(parse_policy("2\\nblacklist\\n", "allow-all"))))
name, lxcpath, rootfs = sys.argv[1:]
code = Container(name, lxcpath).execute(["/bin/sh", "-c", "mkdir /made; echo rc=$? > /.nested"])
with open(rootfs + "/.nested") as handle:
    print(json.dumps({"code": code, "out": handle.read()}))
"""


@pytest.mark.container
def test_already_filtered_callers_skip_the_policy_unless_nesting_is_allowed(make_container, tmp_path):
    log = tmp_path / "c.log"
    container = make_container("sc8", config=(("lxc.seccomp.profile", _profile(tmp_path, MKDIR_EPERM)),
                                              ("lxc.log.file", str(log)), ("lxc.log.level", "info")))
    rootfs = container.load_config().get("lxc.rootfs.path")

    def run() -> dict[str, object]:
        result = subprocess.run([sys.executable, "-c", NESTED, container.name, container.lxcpath, rootfs],
                                capture_output=True, text=True, check=False, cwd=os.getcwd())
        assert result.returncode == 0, result.stderr
        data: dict[str, object] = json.loads(result.stdout)
        if os.path.isdir(os.path.join(rootfs, "made")):
            os.rmdir(os.path.join(rootfs, "made"))
        return data

    assert run() == {"code": 0, "out": "rc=0\n"}
    assert "already under seccomp" in log.read_text()
    container.set_config_item("lxc.seccomp.allow_nesting", "1")
    assert run() == {"code": 0, "out": "rc=1\n"}


def test_check_and_extensions(tmp_path):
    check = run_cli("check", "--format", "json")
    assert check.stderr == ""
    [probe] = [p for p in json.loads(check.stdout) if p["name"] == "seccomp:stacking"]
    assert probe["plugin"] == "seccomp"
    assert probe["supported"] and "x86_64 filters also cover x86, x32" in probe["detail"]
    assert "2." in probe["detail"]  # libseccomp's version
    extensions = run_cli("extensions").stdout.split()
    assert "seccomp_allow_deny_syntax" in extensions and "seccomp_allow_nesting" in extensions


@pytest.mark.container
def test_policy_in_a_user_namespace(make_container, tmp_path):
    # The profile sits in a directory only the host's root can read: the monitor reads it, not the child.
    container = make_container("sc9", config=(
        ("lxc.idmap", "u 0 100000 65536"), ("lxc.idmap", "g 0 100000 65536"),
        ("lxc.seccomp.profile", _profile(tmp_path, MKDIR_EPERM)),
    ))
    code, out = capture(container, "/bin/sh", "-c", "id -u; grep '^Seccomp:' /proc/self/status; mkdir /made; "
                        "echo rc=$?", execute=True)
    assert code == 0, out
    assert out.split("\n")[0] == "0" and "Seccomp:\t2" in out and "rc=1" in out


@pytest.mark.container
def test_a_container_without_cap_sys_admin_loads_its_policy(make_container, tmp_path):
    # As LXC (and runc without no_new_privs): init loses CAP_SYS_ADMIN when it executes, after the load.
    profile = _profile(tmp_path, MKDIR_EPERM)
    container = make_container("sc10", config=(("lxc.seccomp.profile", profile), ("lxc.cap.drop", "sys_admin")))
    code, out = capture(container, "/bin/sh", "-c", "mkdir /made; echo rc=$?; grep CapEff /proc/self/status",
                        execute=True)
    assert code == 0 and "rc=1" in out
    assert not int(out.split("CapEff:")[1].split()[0], 16) & (1 << 21)


@pytest.mark.container
def test_trace_level_logs_the_filter_and_skipped_rules(make_container, tmp_path):
    log = tmp_path / "c.log"
    profile = _profile(tmp_path, "2\nblacklist\nno_such_call\nmkdir errno 1\n")
    container = make_container("sc11", config=(("lxc.seccomp.profile", profile), ("lxc.log.file", str(log)),
                                               ("lxc.log.level", "trace")))
    assert container.execute(["/bin/true"]) == 0
    text = log.read_text()
    assert f"{profile}:3: unknown syscall 'no_such_call', rule skipped" in text
    assert "filter for arch x86 (1073741827)" in text and "ERRNO(1)" in text
