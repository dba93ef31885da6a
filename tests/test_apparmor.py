"""The apparmor plugin: profile text, names, file, host detection, parser runs, and real containers.

Load, unload, label change and policy namespaces run against a faked sysfs/proc tree and a recording
``apparmor_parser`` script on every host; profile text, compiling it with the real parser and the
nesting mounts run for real. The tests of the host's own detection and of real containers assert
what this host's kernel does, read by ``tests/hostfacts.py`` from ``/sys/kernel/security/lsm`` and
``/sys/module/apparmor/parameters/enabled``: without AppArmor (this VM) the keys are ignored, with
it (a default Debian 12 host) the container is confined and a generated profile is loaded and
unloaded for real.
"""

from __future__ import annotations

import itertools
import json
import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from lxcframe.config.model import ContainerConfig, load_text
from lxcframe.container import Container
from lxcframe.context import HostContext, StartPlan
from lxcframe.errors import ConfigError, ConfigErrors, StageError
from lxcframe.handover import Received
from lxcframe.hooks import hookimpl
from lxcframe.plugin_manager import Plugins
from lxcframe.plugins.apparmor import AppArmorPlugin, store, validate
from lxcframe.plugins.apparmor.globs import complement_globs
from lxcframe.plugins.apparmor.host import HostPaths, detect_kernel, detect_parser
from lxcframe.plugins.apparmor.naming import fnv1a_64, profile_names, shorten
from lxcframe.plugins.apparmor.parser import check_profile
from lxcframe.plugins.apparmor.probe import probes
from lxcframe.plugins.apparmor.profile import ProfileFeatures, render
from lxcframe.plugins.apparmor.settings import settings_of
from lxcframe.plugins.apparmor.start import AppArmorError, AppArmorLabel, AppArmorRecord, Loaded
from lxcframe.records import Records

from . import hostfacts
from .conftest import run_cli

DATA = Path(__file__).parent / "data" / "apparmor"
#: Regenerating the golden profiles (tests/data/apparmor/*.profile) from the current generator:
#:
#:     LXCFRAME_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_apparmor.py -k golden
#:     git diff tests/data/apparmor/   # review every changed line before committing it
#:
#: Refused where ``CI`` is set: CI must compare against the committed files, never rewrite them (a
#: rewrite there would make the comparison pass whatever the generator produced).
REGENERATE = os.environ.get("LXCFRAME_REGENERATE_GOLDEN") == "1"
REAL_PARSER = detect_parser(HostPaths())
LSM = hostfacts.lsm()


def expected_enabled_why() -> str:
    """What detection must say about the kernel, from the module parameter read by the test itself."""
    path = hostfacts.APPARMOR_ENABLED
    if LSM.apparmor_param is None:
        return f"kernel: AppArmor not enabled ({path} missing)"
    if LSM.apparmor:
        return f"kernel: AppArmor enabled ({path} = {LSM.apparmor_param})"
    return f"kernel: AppArmor disabled ({path} = {LSM.apparmor_param or 'empty'})"
NAMES = profile_names("c1", "/var/lib/lxc")
OFF = ProfileFeatures(unix=False, cgroupns=False, stacking=False, nesting=False, unprivileged=False)
RAW = ("  # added by the administrator", "  /srv/data/** rw,")

GOLDEN: dict[str, ProfileFeatures] = {
    "minimal": OFF,
    "unix": attrs.evolve(OFF, unix=True),
    "cgroupns": attrs.evolve(OFF, cgroupns=True),
    "stacking": attrs.evolve(OFF, stacking=True),
    "nesting": attrs.evolve(OFF, nesting=True),
    "nesting-stacking": attrs.evolve(OFF, nesting=True, stacking=True),
    "unprivileged": attrs.evolve(OFF, unprivileged=True),
    "raw": attrs.evolve(OFF, raw=RAW),
    "all": ProfileFeatures(unix=True, cgroupns=True, stacking=True, nesting=True, unprivileged=True, raw=RAW),
}


# --- profile text ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_generated_profile_matches_golden_text(case: str) -> None:
    text = render(NAMES, GOLDEN[case])
    golden = DATA / f"{case}.profile"
    if REGENERATE:
        if "CI" in os.environ:
            pytest.fail(f"LXCFRAME_REGENERATE_GOLDEN=1 with CI={os.environ['CI']!r}: golden files are never "
                        f"rewritten in CI; {golden} left as committed", pytrace=False)
        golden.write_text(text)
    assert text == golden.read_text()


def test_sections_come_in_the_documented_order() -> None:
    text = render(NAMES, GOLDEN["all"])
    lines = text.splitlines()
    assert lines[:2] == ["#include <tunables/global>",
                         'profile "lxc-c1_</var/lib/lxc>" flags=(attach_disconnected,mediate_deleted) {']
    headers = [line.strip() for line in lines if line.strip().startswith("### ")]
    assert headers == ["### Base profile", "### Feature: unix", "### Feature: cgroup namespace",
                       "### Feature: apparmor stacking", "### Configuration: nesting",
                       "### Configuration: unprivileged container"]
    assert lines[-3:] == [*RAW, "}"]
    assert text.endswith("\n}\n")
    assert "### Feature: apparmor stacking (not present)" in render(NAMES, OFF)


def test_base_allows_the_eight_ro_bind_remounts() -> None:
    rules = {line.strip() for line in render(NAMES, OFF).splitlines() if "(ro,remount,bind" in line}
    flags = ("nosuid", "noexec", "nodev")
    expected = set()
    for size in range(4):
        for subset in itertools.combinations(flags, size):
            expected.add(f"mount options=({','.join(('ro', 'remount', 'bind', *subset))}),")
    assert rules == expected and len(rules) == 8


def test_stacking_and_nesting_change_profile_rules() -> None:
    stacked = render(NAMES, GOLDEN["nesting-stacking"])
    assert 'change_profile -> ":lxc-c1_<-var-lib-lxc>:*",' in stacked
    assert 'change_profile -> ":lxc-c1_<-var-lib-lxc>://*",' in stacked
    assert 'change_profile -> "lxc-c1_</var/lib/lxc>",' not in stacked
    # Without a policy namespace, a nested runtime may only keep this profile.
    assert 'change_profile -> "lxc-c1_</var/lib/lxc>",' in render(NAMES, GOLDEN["nesting"])


def test_complement_globs_cover_all_but_the_kept_branches() -> None:
    assert complement_globs("/proc/sys", ["net/**"]) == [
        "/proc/sys/[^n]*{,/**}", "/proc/sys/n{,[^e]*}{,/**}", "/proc/sys/ne{,[^t]*}{,/**}", "/proc/sys/net?*{,/**}"]
    # A kept name prefix: the names stay writable, nothing below them does.
    assert "/proc/sys/kernel/shm*/**" in complement_globs("/proc/sys", ["kernel/shm*"])
    assert complement_globs("/sys", ["kernel/security/**"], within="k")[0] == "/sys/k{,[^e]*}{,/**}"


@pytest.mark.parametrize("combo", list(itertools.product((False, True), repeat=5)),
                         ids=lambda c: "".join("UCSNP"[i] if on else "-" for i, on in enumerate(c)))
def test_every_feature_combination_compiles(combo: tuple[bool, ...]) -> None:
    assert REAL_PARSER.path is not None, REAL_PARSER.why
    features = ProfileFeatures(*combo, raw=RAW)
    result = check_profile(REAL_PARSER.path, render(NAMES, features))
    assert result.ok, result.message


def test_parser_version_decides_unix_rules() -> None:
    assert REAL_PARSER.version is not None and REAL_PARSER.version >= (3, 0, 0)
    assert REAL_PARSER.supports_unix


# --- names and the profile file -----------------------------------------------------------------------------


def test_profile_and_namespace_names() -> None:
    assert NAMES.profile == "lxc-c1_</var/lib/lxc>"
    assert NAMES.namespace == "lxc-c1_<-var-lib-lxc>"
    assert NAMES.file == "/var/lib/lxc/c1/apparmor/lxc-c1_<-var-lib-lxc>"
    assert NAMES.label(stacked_namespace=True) == "lxc-c1_</var/lib/lxc>//&:lxc-c1_<-var-lib-lxc>:"
    assert NAMES.label(stacked_namespace=False) == "lxc-c1_</var/lib/lxc>"
    assert NAMES.namespace_dir("/sys") == \
        "/sys/kernel/security/apparmor/policy/namespaces/lxc-c1_<-var-lib-lxc>"


def test_long_names_are_hashed_with_fnv1a_64() -> None:
    # Published FNV-1a 64-bit test vectors.
    assert fnv1a_64(b"") == 0xCBF29CE484222325
    assert fnv1a_64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a_64(b"foobar") == 0x85944171F73967E8
    lxcpath = "/srv/" + "x" * 300
    names = profile_names("c1", lxcpath)
    full = f"lxc-c1_<{lxcpath}>"
    assert names.profile == f"{fnv1a_64(full.encode()):016x}"
    assert len(names.profile) == 16 and names.namespace == names.profile
    assert names.file == os.path.join(lxcpath, "c1", "apparmor", names.profile)
    # The limit: the name plus 7 may be 253, not more.
    assert shorten("n" * 246) == "n" * 246
    assert shorten("n" * 247) == f"{fnv1a_64(b'n' * 247):016x}"


def test_profile_file_is_rewritten_only_when_changed(tmp_path: Path) -> None:
    path = str(tmp_path / "lxc" / "c1" / "apparmor" / NAMES.namespace)
    assert store.write_if_changed(path, "one\n")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o755
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert not store.write_if_changed(path, "one\n")
    assert os.stat(path).st_mtime_ns == 1_000_000_000
    assert store.write_if_changed(path, "two\n")
    assert os.stat(path).st_mtime_ns != 1_000_000_000
    assert Path(path).read_text() == "two\n"
    assert os.listdir(os.path.dirname(path)) == [NAMES.namespace]  # no temporary file left
    store.remove(path)
    assert not os.path.exists(os.path.dirname(path))


# --- a faked AppArmor host ---------------------------------------------------------------------------------

CAP_MAC_ADMIN = 1 << 33


@attrs.frozen
class FakeHost:
    enabled: str | None = "Y"
    mount_mediation: bool = True
    stack: str | None = None  # contents of features/domain/stack
    domain_version: str = "1.2\n"
    ns_stacked: str | None = None
    cgroupns: bool = True
    uid_map: str = "         0          0 4294967295\n"
    cap_eff: int = CAP_MAC_ADMIN | 0x3FFFFFFFF
    label: str = "unconfined\n"


def make_host(root: Path, host: FakeHost, parser: str | None = None) -> HostPaths:
    sysfs, proc = root / "sys", root / "proc"

    def put(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    security = sysfs / "kernel" / "security" / "apparmor"
    if host.enabled is not None:
        put(sysfs / "module" / "apparmor" / "parameters" / "enabled", host.enabled + "\n")
    if host.mount_mediation:
        put(security / "features" / "mount" / "mask", "mount umount pivot_root\n")
    if host.stack is not None:
        put(security / "features" / "domain" / "stack", host.stack)
        put(security / "features" / "domain" / "version", host.domain_version)
    if host.ns_stacked is not None:
        put(security / ".ns_stacked", host.ns_stacked)
    (security / "policy" / "namespaces").mkdir(parents=True, exist_ok=True)
    put(proc / "self" / "uid_map", host.uid_map)
    put(proc / "self" / "status", f"Name:\tpython3\nCapEff:\t{host.cap_eff:016x}\n")
    put(proc / "self" / "attr" / "current", host.label)
    put(proc / "self" / "attr" / "apparmor" / "current", host.label)
    if host.cgroupns:
        put(proc / "self" / "ns" / "cgroup", "")
    return HostPaths(sysfs=str(sysfs), proc=str(proc), parser=parser)


class FakeParser:
    """A shell script standing in for apparmor_parser: records each argv, fails where told to."""

    def __init__(self, directory: Path) -> None:
        self.log = directory / "parser.log"
        self.fail_flag = directory / "parser.fail"
        self.path = directory / "apparmor_parser"
        self.path.write_text(f"""#!/bin/sh
printf '%s\\n' "$*" >> {self.log}
case "$1" in
--version) echo "AppArmor parser version 3.0.8"; exit 0 ;;
-QK) cat > /dev/null; exit 0 ;;
esac
if [ -e {self.fail_flag} ] && [ "$1" = "$(cat {self.fail_flag})" ]; then
    echo "apparmor_parser: unable to replace profile: permission denied" >&2
    exit 1
fi
exit 0
""")
        self.path.chmod(0o755)

    def fail(self, option: str) -> None:
        self.fail_flag.write_text(option)

    def calls(self, *options: str) -> list[list[str]]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        calls = [line.split(" ") for line in lines]
        return [call for call in calls if not options or call[0] in options]


class RecordingLog:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Callable[..., None]:
        if level not in ("debug", "info", "warning", "error"):
            raise AttributeError(level)
        return lambda event, **fields: self.events.append((level, event, fields))


def make_config(lines: str, lxcpath: str, name: str = "c1") -> ContainerConfig:
    registry = Plugins(environ={}, autoload=False).key_registry()
    return load_text(f"lxc.rootfs.path = /\n{lines}", registry, path=os.path.join(lxcpath, name, "config"))


def host_context(tmp_path: Path, lines: str, name: str = "c1") -> HostContext:
    lxcpath = str(tmp_path / "lxc")
    os.makedirs(os.path.join(lxcpath, name), exist_ok=True)
    config = make_config(lines, lxcpath, name)
    plan = StartPlan(name=name, lxcpath=lxcpath, config=config, argv=("/bin/true",),
                     mode="execute", rootfs="/", clone_flags=0, new_pidns=True, pidns_in_child=False, env=(),
                     cwd="/", uid=0, gid=0, hostname=name, rootfs_mount="/", parts=(settings_of(config),))
    return HostContext(plan, None, RecordingLog())


def handed_label(ctx: HostContext) -> str | None:
    """The label the monitor hands the init child at its first barrier, if any."""
    messages, fds = ctx.handover.drain()
    assert fds == {}
    received = Received()
    received.add(messages, {})
    message = received.message(AppArmorLabel)
    return message.label if message is not None else None


@pytest.fixture
def parser(tmp_path: Path) -> FakeParser:
    return FakeParser(tmp_path)


def fake_plugin(tmp_path: Path, parser: FakeParser, host: FakeHost = FakeHost()) -> AppArmorPlugin:
    return AppArmorPlugin(make_host(tmp_path / "host", host, str(parser.path)), str(tmp_path / "cache"))


# --- host detection ------------------------------------------------------------------------------------------


def test_detection_on_this_host_matches_the_kernel() -> None:
    kernel = detect_kernel(HostPaths())
    assert kernel.enabled.value == LSM.apparmor
    assert kernel.enabled.why == expected_enabled_why()
    shown = {p.name: p for p in probes(HostPaths())}
    assert shown["apparmor:enabled"].supported == LSM.apparmor
    if LSM.apparmor:
        assert shown["apparmor:enabled"].detail == kernel.enabled.why
        # Every AppArmor kernel since 4.14 mediates mounts (features/mount/mask).
        assert kernel.mount_mediation.value and shown["apparmor:mount_mediation"].supported
        assert set(shown) == {"apparmor:enabled", "apparmor:mount_mediation", "apparmor:parser", "apparmor:stacking"}
        assert shown["apparmor:stacking"].detail == f"{kernel.can_stack.why}; {kernel.stacked.why}"
    else:
        assert shown["apparmor:enabled"].detail == \
            f"{kernel.enabled.why}; lxc.apparmor.* is ignored, except the mount entries of allow_nesting"
        # Mount mediation and stacking would only repeat that AppArmor is off.
        assert set(shown) == {"apparmor:enabled", "apparmor:parser"}
    assert shown["apparmor:parser"].supported


def test_check_cli_reports_apparmor() -> None:
    result = run_cli("check", "--format", "json")
    assert result.stderr == ""
    shown = {row["name"]: row for row in json.loads(result.stdout) if row["plugin"] == "apparmor"}
    assert shown["apparmor:enabled"]["detail"].startswith(expected_enabled_why())
    assert shown["apparmor:enabled"]["supported"] == LSM.apparmor
    # Without AppArmor in the kernel its keys are ignored (as LXC does): the fact is optional. A required
    # fact that is missing makes the whole check fail.
    assert shown["apparmor:enabled"]["required"] is False
    required_missing = [row for row in json.loads(result.stdout) if row["required"] and not row["supported"]]
    assert result.returncode == (1 if required_missing else 0)


def test_detection_enabled_with_mount_mediation(tmp_path: Path) -> None:
    kernel = detect_kernel(make_host(tmp_path, FakeHost()))
    assert kernel.enabled.value and kernel.mount_mediation.value and kernel.cgroupns.value
    assert not kernel.can_stack.value and not kernel.stacked.value and not kernel.policy_namespace
    assert not kernel.host_unprivileged.value and kernel.mac_admin.value and kernel.admin


def test_detection_disabled_and_no_mount_mediation(tmp_path: Path) -> None:
    kernel = detect_kernel(make_host(tmp_path, FakeHost(enabled="N", mount_mediation=False, cgroupns=False)))
    assert not kernel.enabled.value and "disabled" in kernel.enabled.why
    assert not kernel.mount_mediation.value and "mount/mask missing" in kernel.mount_mediation.why
    assert not kernel.cgroupns.value


@pytest.mark.parametrize(("stack", "version", "stacked", "can", "is_stacked"), [
    ("yes\n", "1.2\n", None, True, False),
    ("yes\n", "1.2\n", "yes\n", True, True),
    ("yes\n", "1.1\n", None, False, False),
    ("yes\n", "2.0\n", None, True, False),
    ("no\n", "1.2\n", None, False, False),
    (None, "", None, False, False),
])
def test_detection_stacking(tmp_path: Path, stack: str | None, version: str, stacked: str | None, can: bool,
                            is_stacked: bool) -> None:
    kernel = detect_kernel(make_host(tmp_path, FakeHost(stack=stack, domain_version=version, ns_stacked=stacked)))
    assert (kernel.can_stack.value, kernel.stacked.value) == (can, is_stacked)
    assert kernel.policy_namespace == (can and not is_stacked)


def test_detection_unprivileged_runtime(tmp_path: Path) -> None:
    kernel = detect_kernel(make_host(tmp_path, FakeHost(uid_map="0 100000 65536\n")))
    assert kernel.host_unprivileged.value and "0 100000 65536" in kernel.host_unprivileged.why
    # Unprivileged and not stacked: profiles are not unloaded at stop.
    assert not kernel.admin
    kernel = detect_kernel(make_host(tmp_path / "2", FakeHost(uid_map="0 100000 65536\n", stack="yes\n",
                                                              ns_stacked="yes\n")))
    assert kernel.admin
    assert not detect_kernel(make_host(tmp_path / "3", FakeHost(cap_eff=0))).admin


def test_probes_with_a_faked_host(tmp_path: Path, parser: FakeParser) -> None:
    shown = {p.name: p for p in probes(make_host(tmp_path, FakeHost(stack="yes\n"), str(parser.path)))}
    assert shown["apparmor:enabled"].supported
    assert shown["apparmor:mount_mediation"].supported
    assert shown["apparmor:parser"].supported and "3.0.8" in shown["apparmor:parser"].detail
    assert shown["apparmor:stacking"].supported
    assert shown["apparmor:stacking"].detail.endswith("; not stacked (" + str(tmp_path) +
                                                      "/sys/kernel/security/apparmor/.ns_stacked missing or not 'yes')")
    missing = detect_parser(HostPaths(parser=str(tmp_path / "nothing")))
    assert not missing.available and "cannot run" in missing.why


# --- keys and validation ----------------------------------------------------------------------------------------


def test_key_values(tmp_path: Path) -> None:
    config = make_config("lxc.apparmor.profile = generated\nlxc.apparmor.allow_incomplete = 1\n"
                         "lxc.apparmor.allow_nesting = 0\nlxc.apparmor.raw = a\nlxc.apparmor.raw =\n"
                         "lxc.apparmor.raw = b\nlxc.apparmor.raw = c\n", str(tmp_path))
    assert config.get("lxc.apparmor.profile") == "generated"
    assert config.get("lxc.apparmor.allow_incomplete") is True
    assert config.get("lxc.apparmor.allow_nesting") is False
    assert config.get_all("lxc.apparmor.raw") == ("b", "c")  # the empty value cleared "a"
    for key in ("lxc.apparmor.allow_incomplete", "lxc.apparmor.allow_nesting"):
        with pytest.raises(ConfigErrors, match=f"{key} = '2': expected 0 or 1"):
            make_config(f"{key} = 2\n", str(tmp_path))


def test_generated_profile_compiles_on_validation(tmp_path: Path) -> None:
    config = make_config("lxc.apparmor.profile = generated\nlxc.apparmor.allow_nesting = 1\n"
                         "lxc.apparmor.raw = /srv/** rw,\n", str(tmp_path))
    assert validate.problems(config, HostPaths()) == []
    # Without generated, raw lines are not used and not checked.
    assert validate.problems(make_config("lxc.apparmor.raw = nonsense\n", str(tmp_path)), HostPaths()) == []


def test_bad_raw_rule_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    config = make_config("lxc.apparmor.profile = generated\nlxc.apparmor.raw = /srv/** rw,\n"
                         "lxc.apparmor.raw = frobnicate everything,\n", str(tmp_path))
    problems = validate.problems(config, HostPaths())
    assert len(problems) == 1
    problem = problems[0]
    assert ":4: lxc.apparmor.raw = 'frobnicate everything,': apparmor_parser rejects" in problem
    assert "syntax error" in problem and "Cache read/write" not in problem


def test_validation_names_the_container(tmp_path: Path) -> None:
    config = make_config("", str(tmp_path / "lxc"), name="web")
    assert validate.names_for(config).profile == f"lxc-web_<{tmp_path / 'lxc'}>"


# --- load, label, unload (faked host, recording parser) ---------------------------------------------------------


def test_generated_profile_loaded_labelled_and_unloaded(tmp_path: Path, parser: FakeParser) -> None:
    plugin = fake_plugin(tmp_path, parser)
    ctx = host_context(tmp_path, "lxc.apparmor.profile = generated\n")
    names = profile_names("c1", ctx.plan.lxcpath)
    plugin.lxcframe_pre_start(ctx)
    cache = str(tmp_path / "cache")
    assert parser.calls("-rWL") == [["-rWL", cache, names.file]]
    assert os.path.isdir(cache)
    assert stat.S_IMODE(os.stat(names.file).st_mode) == 0o600
    assert Path(names.file).read_text() == render(names, ProfileFeatures(
        unix=True, cgroupns=True, stacking=False, nesting=False, unprivileged=False))
    assert handed_label(ctx) == names.profile
    record = ctx.state_records.get(AppArmorRecord)
    assert record is not None and record.label == names.profile
    assert record.loaded is not None and record.loaded.profile_file == names.file
    ctx.undo.unwind()
    assert parser.calls("-RWL") == [["-RWL", cache, names.file]]
    assert not os.path.exists(names.directory)


def test_policy_namespace_with_stacking(tmp_path: Path, parser: FakeParser) -> None:
    plugin = fake_plugin(tmp_path, parser, FakeHost(stack="yes\n"))
    ctx = host_context(tmp_path, "lxc.apparmor.profile = generated\n")
    names = profile_names("c1", ctx.plan.lxcpath)
    namespace = names.namespace_dir(plugin.paths.sysfs)
    plugin.lxcframe_pre_start(ctx)
    assert os.path.isdir(namespace)
    assert handed_label(ctx) == f"{names.profile}//&:{names.namespace}:"
    assert f'change_profile -> ":{names.namespace}:*",' in Path(names.file).read_text()
    ctx.undo.unwind()
    assert not os.path.exists(namespace) and not os.path.exists(names.file)


def test_failed_load_leaves_nothing(tmp_path: Path, parser: FakeParser) -> None:
    plugin = fake_plugin(tmp_path, parser, FakeHost(stack="yes\n"))
    parser.fail("-rWL")
    ctx = host_context(tmp_path, "lxc.apparmor.profile = generated\n")
    names = profile_names("c1", ctx.plan.lxcpath)
    with pytest.raises(AppArmorError, match=r"Failed to load generated AppArmor profile: .*permission denied"):
        plugin.lxcframe_pre_start(ctx)
    assert handed_label(ctx) is None
    ctx.undo.unwind()  # what the monitor does after any failure
    assert not os.path.exists(names.file) and not os.path.exists(names.directory)
    assert not os.path.exists(names.namespace_dir(plugin.paths.sysfs))
    assert parser.calls("-RWL") == []  # nothing was loaded


def test_unchanged_profile_file_keeps_its_mtime_across_starts(tmp_path: Path, parser: FakeParser) -> None:
    plugin = fake_plugin(tmp_path, parser, FakeHost(cap_eff=0))  # no CAP_MAC_ADMIN: the file stays
    ctx = host_context(tmp_path, "lxc.apparmor.profile = generated\n")
    names = profile_names("c1", ctx.plan.lxcpath)
    plugin.lxcframe_pre_start(ctx)
    ctx.undo.unwind()
    assert parser.calls("-RWL") == []  # left loaded, as LXC does without the right to unload
    os.utime(names.file, ns=(1_000_000_000, 1_000_000_000))
    again = host_context(tmp_path, "lxc.apparmor.profile = generated\n")
    plugin.lxcframe_pre_start(again)
    assert os.stat(names.file).st_mtime_ns == 1_000_000_000
    changed = host_context(tmp_path, "lxc.apparmor.profile = generated\nlxc.apparmor.allow_nesting = 1\n")
    plugin.lxcframe_pre_start(changed)
    assert os.stat(names.file).st_mtime_ns != 1_000_000_000
    assert "### Configuration: nesting" in Path(names.file).read_text()


def test_unprivileged_container_section(tmp_path: Path, parser: FakeParser) -> None:
    plugin = fake_plugin(tmp_path, parser)
    ctx = host_context(tmp_path, "lxc.apparmor.profile = generated\nlxc.idmap = u 0 100000 65536\n"
                                 "lxc.idmap = g 0 100000 65536\n")
    plugin.lxcframe_pre_start(ctx)
    assert "### Configuration: unprivileged container" in Path(profile_names("c1", ctx.plan.lxcpath).file).read_text()
    ctx.undo.unwind()


@pytest.mark.parametrize(("lines", "host", "label"), [
    ("", FakeHost(), "lxc-container-default-cgns"),
    ("", FakeHost(cgroupns=False), "lxc-container-default"),
    ("lxc.apparmor.profile = my-profile\n", FakeHost(), "my-profile"),
    ("lxc.apparmor.profile = unconfined\n", FakeHost(), None),  # already unconfined: nothing to change
    ("lxc.apparmor.profile = unchanged\n", FakeHost(), None),
    ("lxc.apparmor.profile = unconfined\n", FakeHost(mount_mediation=False), None),
    ("lxc.apparmor.profile = my-profile\nlxc.apparmor.allow_incomplete = 1\n", FakeHost(mount_mediation=False),
     "my-profile"),
    # Confined, and the kernel cannot stack: the same label is kept as it is.
    ("lxc.apparmor.profile = outer\n", FakeHost(label="outer (enforce)\n"), None),
    ("", FakeHost(label="outer (enforce)\n"), None),
    # Confined, but stacking: a new label is fine.
    ("lxc.apparmor.profile = inner\n", FakeHost(label="outer (enforce)\n", stack="yes\n"), "inner"),
])
def test_label_decision(tmp_path: Path, parser: FakeParser, lines: str, host: FakeHost, label: str | None) -> None:
    plugin = fake_plugin(tmp_path, parser, host)
    ctx = host_context(tmp_path, lines)
    plugin.lxcframe_pre_start(ctx)
    assert handed_label(ctx) == label
    assert parser.calls("-rWL") == []


def test_incomplete_apparmor_refused_without_allow_incomplete(tmp_path: Path, parser: FakeParser) -> None:
    plugin = fake_plugin(tmp_path, parser, FakeHost(mount_mediation=False))
    ctx = host_context(tmp_path, "lxc.apparmor.profile = generated\n")
    with pytest.raises(AppArmorError, match=r"lxc\.apparmor\.allow_incomplete = 1"):
        plugin.lxcframe_pre_start(ctx)
    assert parser.calls("-rWL") == [] and len(ctx.undo) == 0


def test_confined_without_stacking_cannot_change_label(tmp_path: Path, parser: FakeParser) -> None:
    plugin = fake_plugin(tmp_path, parser, FakeHost(label="outer (enforce)\n"))
    with pytest.raises(AppArmorError, match="already confined by AppArmor profile 'outer'"):
        plugin.lxcframe_pre_start(host_context(tmp_path, "lxc.apparmor.profile = generated\n"))
    assert parser.calls("-rWL") == []


def test_generated_without_parser_fails(tmp_path: Path) -> None:
    plugin = AppArmorPlugin(make_host(tmp_path, FakeHost(), str(tmp_path / "missing")), str(tmp_path / "cache"))
    with pytest.raises(AppArmorError, match="apparmor_parser not available"):
        plugin.lxcframe_pre_start(host_context(tmp_path, "lxc.apparmor.profile = generated\n"))
    problems = plugin.lxcframe_validate(make_config("lxc.apparmor.profile = generated\n", str(tmp_path)))
    assert len(problems) == 1 and "lxc.apparmor.profile = 'generated': apparmor_parser not available" in problems[0]


def test_keys_ignored_without_apparmor(tmp_path: Path, parser: FakeParser) -> None:
    plugin = fake_plugin(tmp_path, parser, FakeHost(enabled=None))
    ctx = host_context(tmp_path, "lxc.apparmor.profile = generated\nlxc.apparmor.allow_nesting = 1\n"
                                 "lxc.apparmor.raw = /srv/** rw,\n")
    plugin.lxcframe_pre_start(ctx)
    assert ctx.handover.drain() == ({}, {}) and len(ctx.undo) == 0 and parser.calls("-rWL") == []
    [(level, event, fields)] = ctx.log.events  # type: ignore[attr-defined]
    assert level == "info" and "not enabled" in event
    assert fields["keys"] == ["lxc.apparmor.profile", "lxc.apparmor.raw"]


def test_cleanup_after_a_dead_monitor_unloads(tmp_path: Path, parser: FakeParser) -> None:
    from lxcframe.state import ContainerState

    plugin = fake_plugin(tmp_path, parser)
    profile = tmp_path / "lxc" / "c1" / "apparmor" / "p"
    store.write_if_changed(str(profile), "x")
    loaded = Loaded(str(profile), str(tmp_path / "cache"), str(parser.path), None, True)
    records = Records()
    records.put(AppArmorRecord(label="lxc-c1", loaded=loaded))
    state = ContainerState("c1", str(tmp_path / "lxc"), "STOPPED", records=records.encoded())
    plugin.lxcframe_cleanup(state)
    assert parser.calls("-RWL") == [["-RWL", str(tmp_path / "cache"), str(profile)]]
    assert not profile.parent.exists()
    plugin.lxcframe_cleanup(state)  # idempotent
    assert len(parser.calls("-RWL")) == 1


def test_destroy_removes_the_generated_profile(tmp_path: Path, parser: FakeParser) -> None:
    names = profile_names("c1", str(tmp_path / "lxc"))
    store.write_if_changed(names.file, "x")
    fake_plugin(tmp_path, parser).lxcframe_destroy(name="c1", lxcpath=str(tmp_path / "lxc"))
    assert not os.path.exists(names.directory)
    fake_plugin(tmp_path, parser).lxcframe_destroy(name="c1", lxcpath=str(tmp_path / "lxc"))  # nothing left: fine


def _call_order(hook: str) -> list[str]:
    # pluggy calls the implementations last-registered first, tryfirst ones before all others.
    return [impl.plugin_name for impl in reversed(getattr(Plugins(environ={}).hook, hook).get_hookimpls())]


@pytest.mark.parametrize("hook", ["lxcframe_child_security", "lxcframe_attach_child"])
def test_label_comes_first_among_the_security_steps(hook: str) -> None:
    assert _call_order(hook)[0] == "apparmor"


def test_nesting_helpers_are_mounted_before_the_mount_hooks() -> None:
    order = _call_order("lxcframe_child_pre_pivot")
    assert order.index("apparmor") < order.index("hooks")


# --- real containers ----------------------------------------------------------------------------------------------


def mounts_inside(container: Container) -> str:
    rootfs = container.load_config().get("lxc.rootfs.path")
    code = container.execute(["/bin/sh", "-c", "cat /proc/self/mounts > /.mounts"])
    assert code == 0
    path = os.path.join(rootfs, ".mounts")
    text = Path(path).read_text()
    os.unlink(path)
    return text


def label_inside(container: Container) -> str:
    """What the container's command reads from /proc/self/attr/current (or the error it gets)."""
    rootfs = container.load_config().get("lxc.rootfs.path")
    code = container.execute(["/bin/sh", "-c", "cat /proc/self/attr/current > /.label 2>&1"])
    path = os.path.join(rootfs, ".label")
    text = Path(path).read_text()
    os.unlink(path)
    return text.strip() if code == 0 else f"failed: {text.strip()}"


def loaded_profiles() -> str:
    return Path("/sys/kernel/security/apparmor/profiles").read_text()


@pytest.mark.container
def test_nesting_helpers_mounted(make_container: Callable[..., Container]) -> None:
    """``allow_nesting`` mounts /dev/.lxc/{proc,sys} with or without AppArmor in the kernel."""
    container = make_container("nest", config=(("lxc.apparmor.allow_nesting", "1"),))
    mounts = mounts_inside(container)
    assert "proc /dev/.lxc/proc proc" in mounts
    assert "sys /dev/.lxc/sys sysfs" in mounts
    plain = make_container("plain")
    assert "/dev/.lxc" not in mounts_inside(plain)
    label = label_inside(container)
    if LSM.apparmor:
        # No profile configured: LXC's default one (every kernel with AppArmor has cgroup namespaces).
        assert label == "lxc-container-default-cgns (enforce)"
    else:
        # No LSM provides the attribute: reading it fails (EINVAL) rather than naming a label.
        assert label.startswith("failed: ") and "Invalid argument" in label


@pytest.mark.container
def test_generated_profile_on_this_kernel(make_container: Callable[..., Container], tmp_path: Path) -> None:
    """Without AppArmor the generated profile is ignored; with it, it is loaded, applied and unloaded."""
    log = tmp_path / "c.log"
    container = make_container("gen", config=(("lxc.apparmor.profile", "generated"),
                                              ("lxc.apparmor.raw", "/srv/** rw,"),
                                              ("lxc.log.file", str(log)), ("lxc.log.level", "INFO")))
    names = profile_names("gen", container.lxcpath)
    label = label_inside(container)
    if LSM.apparmor:
        assert label.startswith(names.profile) and label.endswith(" (enforce)"), label
        assert "generated AppArmor profile loaded" in log.read_text()
        assert names.profile not in loaded_profiles()  # unloaded again at stop (root has CAP_MAC_ADMIN)
    else:
        assert label.startswith("failed: ")
        assert "AppArmor is not enabled in the kernel" in log.read_text()
        assert "generated AppArmor profile loaded" not in log.read_text()
    assert not os.path.exists(os.path.join(container.lxcpath, "gen", "apparmor"))


@pytest.mark.container
def test_bad_raw_rule_fails_the_start(make_container: Callable[..., Container]) -> None:
    container = make_container("badraw", config=(("lxc.apparmor.profile", "generated"),
                                                 ("lxc.apparmor.raw", "frobnicate everything,")))
    with pytest.raises(ConfigError, match=r"lxc.apparmor.raw = 'frobnicate everything,': apparmor_parser rejects"):
        container.execute(["/bin/true"])


def faked_plugins(tmp_path: Path, parser: FakeParser, *extra: tuple[str, object]) -> tuple[Plugins, HostPaths]:
    plugin = fake_plugin(tmp_path, parser)
    # The builtin looks at the real host; the faked one takes its place (its keys too).
    return Plugins(disable=["apparmor"], extra=[("apparmor-fake", plugin), *extra]), plugin.paths


@pytest.mark.container
def test_real_start_on_a_faked_apparmor_host(make_container: Callable[..., Container], tmp_path: Path,
                                             parser: FakeParser) -> None:
    plugins, paths = faked_plugins(tmp_path, parser)
    container = make_container("faked", plugins=plugins, config=(("lxc.apparmor.profile", "generated"),))
    names = profile_names("faked", container.lxcpath)
    assert container.execute(["/bin/true"]) == 0
    # init wrote its new label through the descriptor opened before pivot_root.
    written = Path(paths.proc, "self", "attr", "apparmor", "current").read_text()
    assert written.startswith(f"changeprofile {names.profile}")
    options = [call[0] for call in parser.calls()]
    assert options == ["--version", "-QK", "--version", "-rWL", "-RWL"]
    assert not os.path.exists(names.directory)


class FailAfterLabel:
    @hookimpl
    def lxcframe_child_pre_exec(self) -> None:
        raise RuntimeError("injected failure after the label")


@pytest.mark.container
def test_later_failure_unloads_the_profile(make_container: Callable[..., Container], tmp_path: Path,
                                           parser: FakeParser) -> None:
    plugins, _ = faked_plugins(tmp_path, parser, ("failer", FailAfterLabel()))
    container = make_container("late", plugins=plugins, config=(("lxc.apparmor.profile", "generated"),))
    names = profile_names("late", container.lxcpath)
    with pytest.raises(StageError, match="injected failure after the label"):
        container.execute(["/bin/true"])
    assert [call[0] for call in parser.calls("-rWL", "-RWL")] == ["-rWL", "-RWL"]
    assert not os.path.exists(names.directory)


@pytest.mark.container
def test_failed_load_fails_the_start_cleanly(make_container: Callable[..., Container], tmp_path: Path,
                                            parser: FakeParser) -> None:
    plugins, _ = faked_plugins(tmp_path, parser)
    parser.fail("-rWL")
    container = make_container("noload", plugins=plugins, config=(("lxc.apparmor.profile", "generated"),))
    with pytest.raises(StageError) as info:
        container.execute(["/bin/true"])
    assert (info.value.stage, info.value.plugin) == ("pre-start", "apparmor-fake")
    assert "Failed to load generated AppArmor profile" in str(info.value)
    assert "permission denied" in str(info.value)
    assert not os.path.exists(profile_names("noload", container.lxcpath).directory)
    assert parser.calls("-RWL") == []


# --- disabled -------------------------------------------------------------------------------------------------------


def test_disabled_plugin_reports_its_keys(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("lxc.rootfs.path = dir:/nonexistent\nlxc.apparmor.profile = generated\n"
                      "lxc.apparmor.allow_nesting = 1\n")
    result = run_cli("-p", "no:apparmor", "config", "validate", str(config))
    output = result.stdout + result.stderr
    assert "lxc.apparmor.profile: handled by plugin 'apparmor', which is disabled" in output, output
    assert "lxc.apparmor.allow_nesting: handled by plugin 'apparmor', which is disabled" in output, output
    registry = Plugins(disable=["apparmor"], environ={}).key_registry()
    assert registry.lookup("lxc.apparmor.raw") is None
    why = registry.why_not_handled("lxc.apparmor.raw")
    assert why == "handled by plugin 'apparmor', which is disabled on this host"


def test_fake_parser_script_is_not_the_real_one(parser: FakeParser) -> None:
    # Guard for the tests above: they must never load anything with the real parser.
    assert subprocess.run([str(parser.path), "--version"], capture_output=True, text=True,
                          check=False).stdout.startswith("AppArmor parser version")
    assert parser.calls() == [["--version"]]
