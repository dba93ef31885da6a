"""Error paths of lxcframe/config and lxcframe/plugins that only a start (or a command on a running container)
shows: real containers, each failure checked for its class, its message (file, line and key where the error
is about a config line) and for leaving nothing behind. The table and its check are in test_error_paths.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from lxcframe.container import Container
from lxcframe.errors import ConfigError, ContainerError, StageError, UndoErrors
from lxcframe.hooks import hookimpl
from lxcframe.plugin_manager import Plugins

from .test_error_paths import assert_message_of

pytestmark = pytest.mark.container

Make = Callable[..., Container]


def append(container: Container, text: str) -> None:
    with open(container.config_file_name, "a", encoding="utf-8") as handle:
        handle.write(text)


def where(container: Container, key: str) -> str:
    """``FILE:LINE: KEY`` of the last line setting ``key``, as errors name it."""
    path = container.config_file_name
    with open(path, encoding="utf-8") as handle:
        numbers = [n for n, line in enumerate(handle, start=1) if line.split("=")[0].strip() == key]
    assert numbers, f"{key} not in {path}"
    return f"{path}:{numbers[-1]}: {key}"


def start_fails(container: Container, stage: str, plugin: str | None) -> StageError:
    """An execute that fails at ``stage`` in ``plugin``; nothing of it may remain."""
    with pytest.raises(StageError) as info:
        container.execute(["/bin/true"])
    assert type(info.value) is StageError
    assert (info.value.stage, info.value.plugin) == (stage, plugin), str(info.value)
    assert container.state == "STOPPED"
    return info.value


# --- config lines the kernel or the host refuses at start -------------------------------------------------------------

S = "lxcframe.plugins"


@pytest.mark.parametrize(("site", "lines", "key", "stage", "plugin"), [
    (f"{S}.prlimit:lxcframe_child_pre_pivot:StageError:{{}}{{}} = {{}}:{{}}: the kernel refused it ({{}}); current",
     "lxc.prlimit.nofile = 1073741824\n", "lxc.prlimit.nofile", "pre-pivot", "prlimit"),
    (f"{S}.procfs:lxcframe_child_pre_pivot:StageError:{{}}{{}} = {{}}: cannot write /proc/<init>/{{}}: {{}}",
     "lxc.proc.oom_score_adj = 5000\n", "lxc.proc.oom_score_adj", "pre-pivot", "procfs"),
    (f"{S}.sysctl:lxcframe_pre_start:StageError:{{}}{{}}: the container shares the host's {{}} namespace, so t",
     "lxc.net.0.type = none\nlxc.sysctl.net.ipv4.ip_forward = 1\n", "lxc.sysctl.net.ipv4.ip_forward", "pre-start",
     "sysctl"),
    (f"{S}.sysctl:_open_container_proc:StageError:{{}}{{}}: the container has no /proc to write sysctls through (",
     "lxc.mount.auto =\nlxc.mount.auto = sys:ro\nlxc.sysctl.net.ipv4.ip_forward = 1\n",
     "lxc.sysctl.net.ipv4.ip_forward", "pre-pivot", "sysctl"),
    (f"{S}.sysctl:lxcframe_child_pre_pivot:StageError:{{}}{{}} = {{}}: cannot write /proc/{{}}: {{}}",
     "lxc.sysctl.net.ipv4.ip_forward = often\n", "lxc.sysctl.net.ipv4.ip_forward", "pre-pivot", "sysctl"),
    (f"{S}.core:lxcframe_child_mount_rootfs:FileNotFoundError:{{}}lxc.rootfs.path: rootfs is not a directory",
     "lxc.rootfs.path = /etc/hostname\n", "lxc.rootfs.path", "rootfs", "core"),
    (f"{S}.mounts:mount_entry_in_rootfs:OSError:{{}}mount {{}} on {{}}: {{}}",
     "lxc.mount.entry = /no/such/source mnt/data none bind,create=dir 0 0\n", "lxc.mount.entry", "mounts", "mounts"),
    (f"{S}.console:lxcframe_pre_start:ConfigError:",
     "lxc.console.logfile = /etc\n", "lxc.console.logfile", "pre-start", "console"),
    ("lxcframe.console_service:LogFile._open:LogFileRefused:cannot open it: {}",
     "lxc.console.logfile = /no/such/dir/console.log\n", "lxc.console.logfile", "pre-start", "console"),
], ids=lambda value: value.split(":")[0].rsplit(".", 1)[-1] if isinstance(value, str) and ":" in value else None)
def test_start_refuses_a_config_line(site: str, lines: str, key: str, stage: str, plugin: str, make: Make) -> None:
    container = make("bad")
    append(container, lines)
    error = start_fails(container, stage, plugin)
    # The line at fault leads the reason.
    assert error.message.startswith(where(container, key)), error.message
    assert_message_of(site, error.message)


def test_console_logfile_that_is_no_file_names_the_line(make: Make) -> None:
    """LogFile._open refuses a directory; the console plugin names the key's line (and its value) first."""
    container = make("badlog")
    append(container, "lxc.console.logfile = /etc\n")
    error = start_fails(container, "pre-start", "console")
    assert error.message == f"{where(container, 'lxc.console.logfile')} = '/etc': is a directory, not a regular file"
    assert_message_of("lxcframe.console_service:LogFile._open:LogFileRefused:is {}, not a regular file", error.message)


def test_failing_hook_stops_the_start(make: Make) -> None:
    container = make("hook")
    append(container, "lxc.hook.pre-start = /bin/sh -c 'echo refusing; exit 3'\n")
    error = start_fails(container, "pre-start", "hooks")
    assert error.message == "lxc.hook.pre-start \"/bin/sh -c 'echo refusing; exit 3'\" exited with status 3: refusing"
    assert_message_of(f"{S}.hooks:run_script:RuntimeError:{{}} exited with status {{}}: {{}}", error.message)


def test_seccomp_rule_libseccomp_refuses(make: Make, tmp_path: Path) -> None:
    """A rule whose action is the default one: parsed fine, refused when the caller compiles the filter
    while it plans the start (a config error at the profile's line: nothing was started)."""
    policy = tmp_path / "same.seccomp"
    policy.write_text("2\nblacklist\n# allow is the default already\nread allow\n")
    container = make("scb")
    append(container, f"lxc.seccomp.profile = {policy}\n")
    with pytest.raises(ConfigError) as info:
        container.execute(["/bin/true"])
    assert container.state == "STOPPED"
    message = str(info.value)
    assert message == (f"{where(container, 'lxc.seccomp.profile')}: {policy}:4: cannot add the rule for 'read' "
                       "(allow): Permission denied")
    assert (info.value.line, info.value.key) == (int(where(container, "lxc.seccomp.profile").split(":")[1]),
                                                 "lxc.seccomp.profile")
    assert_message_of(f"{S}.seccomp.builder:_add:BuildError:{{}}:{{}}: cannot add the rule for {{}} ({{}}): {{}}",
                      message)
    assert_message_of(f"{S}.seccomp:compile_part:ConfigError:", message)


def test_seccomp_without_cap_sys_admin_or_no_new_privs(make: Make, tmp_path: Path) -> None:
    """An attached Python callable loses the dropped capabilities before the policy (nothing executes to
    recompute them): without CAP_SYS_ADMIN it needs no_new_privs. Init and an attached command keep them
    until they execute."""
    policy = tmp_path / "deny.seccomp"
    policy.write_text("2\nblacklist\nmkdir errno 1\n")
    container = make("scp")
    append(container, f"lxc.seccomp.profile = {policy}\nlxc.cap.drop = sys_admin\n")
    container.start(["/bin/sleep", "60"])
    try:
        assert container.attach_wait(["/bin/sh", "-c", "mkdir /made 2>/dev/null; test $? = 1"]) == 0
        with pytest.raises(ContainerError) as info:
            container.attach_wait(lambda: 0)
    finally:
        container.stop(kill=True)
    message = str(info.value).split("(plugin 'seccomp'): ", 1)[1]
    assert message == "loading the seccomp policy needs CAP_SYS_ADMIN or lxc.no_new_privs = 1"
    assert_message_of(f"{S}.seccomp:_install:PermissionError:loading the seccomp policy needs CAP_SYS_ADMIN or "
                      "lxc.no_new_privs = 1", message)


def test_idmapped_rootfs_on_a_filesystem_without_idmaps(make: Make) -> None:
    """procfs cannot be idmapped: the rootfs is refused when the monitor prepares it, naming it."""
    container = make("idm")
    append(container, "lxc.rootfs.path = /proc/sys\nlxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\n")
    error = start_fails(container, "userns", "idmap")
    assert error.message.startswith("cannot idmap the rootfs /proc/sys (")
    assert_message_of(f"{S}.idmap:_idmapped_tree:OSError:cannot idmap the rootfs {{}} ({{}}); its filesystem may not "
                      "support idmapped mounts: shift its ownership to the mapped root instead", error.message)


def test_idmap_the_host_refuses(make: Make, tmp_path: Path, rundir: str) -> None:
    """A caller without CAP_SETUID over the host ids (as an unprivileged one) cannot write the map."""
    container = make("idw")
    append(container, "lxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\n")
    script = ("import sys\nfrom lxcframe.container import Container\nfrom lxcframe.errors import StageError\n"
              f"c = Container('idw', {container.lxcpath!r})\n"
              "try:\n    c.execute(['/bin/true'])\nexcept StageError as err:\n"
              "    print(err.stage, err.plugin, err.message, sep='|')\n    sys.exit(1)\n")
    env = {**os.environ, "LXCFRAME_SUPERVISOR": "0"}
    result = subprocess.run(["setpriv", "--inh-caps=-setuid", "--bounding-set=-setuid", "--", sys.executable, "-c",
                             script], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    stage, plugin, message = result.stdout.strip().split("|")
    assert (stage, plugin) == ("userns", "idmap")
    assert message.startswith("the host refused the uid_map '0 100000 65536': "), message
    assert_message_of(f"{S}.idmap:_write_map:OSError:the host refused the {{}} {{}}: {{}}", message)
    assert container.state == "STOPPED"


# --- commands on a running container --------------------------------------------------------------------------------


def test_console_requests_refused(make: Make) -> None:
    container = make("con", config=(("lxc.console.path", "none"),))
    container.start()
    try:
        with pytest.raises(ContainerError) as info:
            container.console_getfd(0)
        assert str(info.value) == ("con: has no console (not running, lxc.console.path = none, or started without "
                                   "the console plugin)")
        assert_message_of(f"{S}.console.client:connect:ContainerError:{{}}: has no console (not running, lxc.console",
                          str(info.value))
    finally:
        container.stop(kill=True)
    append(container, "lxc.console.path =\n")
    container.start()
    try:
        with pytest.raises(ContainerError) as info:
            container.console_log()
        assert str(info.value) == "no console ring buffer (set lxc.console.buffer.size)"
        assert_message_of(f"{S}.console.client:request:ContainerError:", str(info.value))
    finally:
        container.stop(kill=True)


def test_mount_into_a_container_refused(make: Make) -> None:
    container = make("inj")
    container.start()
    try:
        with pytest.raises(ContainerError) as info:
            container.mount("/srv", "mnt/srv")
        assert str(info.value) == "mount target 'mnt/srv': expected an absolute path inside the container"
        assert_message_of(f"{S}.mount_injection:_check_target:ContainerError:mount target {{}}: expected an absolute "
                          "path inside the container", str(info.value))
        # Single-threaded caller: the work is done by a forked child.
        with pytest.raises(ContainerError) as info:
            container.mount("/no/such/source", "/mnt/x")
        assert str(info.value).startswith("mount /mnt/x: "), str(info.value)
        assert "/no/such/source" in str(info.value)
        assert_message_of(f"{S}.mount_injection:_run:ContainerError:{{}} {{}}: {{}}", str(info.value))
        # A threaded caller never forks Python: a helper interpreter does it, and its error is passed on.
        release = threading.Event()
        other = threading.Thread(target=release.wait)
        other.start()
        try:
            with pytest.raises(ContainerError) as info:
                container.umount("/mnt/never-mounted")
        finally:
            release.set()
            other.join()
        assert "/mnt/never-mounted" in str(info.value) or "Invalid argument" in str(info.value), str(info.value)
        assert_message_of(f"{S}.mount_injection:_run:ContainerError:", str(info.value))
    finally:
        container.stop(kill=True)


def test_attach_with_a_profile_broken_after_the_start_applies_the_starts_policy(make: Make, tmp_path: Path) -> None:
    # Attach applies the parts the container started with (lxcframe.started_parts): a profile broken
    # since is not read again, so it is no error, and the start's policy (mkdir denied) holds.
    policy = tmp_path / "p.seccomp"
    policy.write_text("2\nblacklist\nmkdir errno 1\n")
    container = make("att")
    append(container, f"lxc.seccomp.profile = {policy}\n")
    container.start()
    try:
        policy.write_text("2\nblacklist\nmkdir errno lots\n")
        assert container.attach_wait(["/bin/true"]) == 0
        assert container.attach_wait(["/bin/mkdir", "/tmp/made-by-attach"]) == 1
        assert container.attach_wait(["/bin/sh", "-c", "mkdir /tmp/x 2>&1 | grep -q 'Operation not permitted'"]) == 0
    finally:
        container.stop(kill=True)


# --- AppArmor on a faked host (this kernel has none): the real start, the plugin's view of the host faked --------

AA = f"{S}.apparmor"


def _apparmor(tmp_path: Path, *extra: tuple[str, object], **host: object) -> tuple[Plugins, object, object]:
    from .test_apparmor import FakeHost, FakeParser, fake_plugin

    parser = FakeParser(tmp_path)
    plugin = fake_plugin(tmp_path, parser, FakeHost(**host))  # type: ignore[arg-type]
    return Plugins(disable=["apparmor"], extra=[("apparmor-fake", plugin), *extra]), plugin, parser


@pytest.mark.parametrize(("site", "lines", "faked"), [
    (f"{AA}.start:prepare:AppArmorError:already confined by AppArmor profile {{}} and the kernel cannot stack profi",
     "lxc.apparmor.profile = generated\n", {"label": "outer (enforce)\n"}),
    (f"{AA}.start:prepare:AppArmorError:incomplete AppArmor support in this kernel ({{}}): profile {{}} could not res",
     "lxc.apparmor.profile = my-profile\n", {"mount_mediation": False}),
])
def test_apparmor_host_refuses(site: str, lines: str, faked: dict[str, object], make: Make, tmp_path: Path) -> None:
    plugins, _, _ = _apparmor(tmp_path, **faked)
    container = make("aa", plugins=plugins)
    append(container, lines)
    error = start_fails(container, "pre-start", "apparmor-fake")
    assert_message_of(site, error.message)


def test_apparmor_policy_namespace_cannot_be_made(make: Make, tmp_path: Path) -> None:
    plugins, plugin, parser = _apparmor(tmp_path, stack="yes\n")
    namespaces = Path(plugin.paths.sysfs, "kernel", "security", "apparmor", "policy", "namespaces")  # type: ignore[attr-defined]
    namespaces.rmdir()
    namespaces.write_text("")  # mkdir below it fails with ENOTDIR
    container = make("aans", plugins=plugins)
    append(container, "lxc.apparmor.profile = generated\n")
    error = start_fails(container, "pre-start", "apparmor-fake")
    # (The undo cannot rmdir below a file either, and says so after the error itself.)
    first = error.message.split(" (and while unwinding: ")[0]
    assert first.startswith(f"cannot create AppArmor policy namespace {namespaces}/lxc-aans_"), error.message
    assert first.endswith(": Not a directory"), error.message
    assert_message_of(f"{AA}.start:load_generated:AppArmorError:cannot create AppArmor policy namespace {{}}: {{}}",
                      error.message)
    assert parser.calls("-rWL") == []  # type: ignore[attr-defined]


def test_apparmor_load_fails(make: Make, tmp_path: Path) -> None:
    plugins, _, parser = _apparmor(tmp_path)
    parser.fail("-rWL")  # type: ignore[attr-defined]
    container = make("aal", plugins=plugins)
    append(container, "lxc.apparmor.profile = generated\n")
    error = start_fails(container, "pre-start", "apparmor-fake")
    assert error.message.startswith("Failed to load generated AppArmor profile: ")
    assert error.message.endswith(": exit status 1: apparmor_parser: unable to replace profile: permission denied")
    assert_message_of(f"{AA}.start:load_generated:AppArmorError:Failed to load generated AppArmor profile: {{}}",
                      error.message)
    assert_message_of(f"{AA}.parser:Parser._must:ParserError:{{}}: exit status {{}}: {{}}", error.message)


class FailAfterLabel:
    @hookimpl
    def lxcframe_child_pre_exec(self) -> None:
        raise RuntimeError("injected failure after the label")


def test_apparmor_unload_fails_after_a_failed_start(make: Make, tmp_path: Path) -> None:
    """The undo of a loaded profile fails: reported with the start's own error, the files still removed."""
    plugins, _, parser = _apparmor(tmp_path, ("failer", FailAfterLabel()))
    parser.fail("-RWL")  # type: ignore[attr-defined]
    container = make("aau", plugins=plugins)
    append(container, "lxc.apparmor.profile = generated\n")
    with pytest.raises((StageError, UndoErrors)) as info:
        container.execute(["/bin/true"])
    text = str(info.value)
    assert "injected failure after the label" in text or "undo generated AppArmor profile" in text, text
    assert "unloading the generated AppArmor profile: " in text, text
    assert_message_of(f"{AA}.start:release:AppArmorError:", text)
    assert container.state == "STOPPED"


def test_apparmor_change_profile_refused(make: Make, tmp_path: Path) -> None:
    """The kernel refuses the label write: the faked attr file is this kernel's own, which has no AppArmor to
    take it (EINVAL); reading it fails too, so the caller counts as unconfined."""
    plugins, plugin, _ = _apparmor(tmp_path)
    attr = Path(plugin.paths.proc, "self", "attr")  # type: ignore[attr-defined]
    (attr / "apparmor" / "current").unlink()
    (attr / "current").unlink()
    (attr / "current").symlink_to("/proc/self/attr/current")
    container = make("aac", plugins=plugins)
    append(container, "lxc.apparmor.profile = my-profile\n")
    error = start_fails(container, "security", "apparmor-fake")
    assert error.message == "cannot change AppArmor profile to 'my-profile': Invalid argument"
    assert_message_of(f"{AA}.label:change_profile:OSError:cannot change AppArmor profile to {{}}: {{}}", error.message)


@pytest.mark.parametrize(("site", "script", "why"), [
    (f"{AA}.parser:_run:ParserError:cannot run {{}}: {{}}", None, "cannot run "),
    (f"{AA}.parser:run_version:ParserError:exit status {{}}: {{}}", "#!/bin/sh\necho broken install\nexit 2\n",
     "exit status 2: broken install"),
], ids=["missing", "broken"])
def test_apparmor_parser_unusable(site: str, script: str | None, why: str, make: Make, tmp_path: Path) -> None:
    """validate (before any start) names the profile line and why the parser cannot be used."""
    plugins, _, parser = _apparmor(tmp_path)
    path = Path(parser.path)  # type: ignore[attr-defined]
    if script is None:
        path.unlink()
    else:
        path.write_text(script)
    container = make("aap", plugins=plugins)
    append(container, "lxc.apparmor.profile = generated\n")
    with pytest.raises(ConfigError) as info:
        container.execute(["/bin/true"])
    text = str(info.value)
    assert text.startswith(f"{where(container, 'lxc.apparmor.profile')} = 'generated': apparmor_parser not "
                           "available ("), text
    assert why in text
    assert_message_of(site, text)


@pytest.fixture
def make(make_container: Make) -> Make:
    return make_container


#: What the tests of this module cover that is not a parametrized config line (those are read from the cases).
COVERED_AT_START: dict[str, str] = {
    **{site: "test_start_refuses_a_config_line" for site in (
        f"{S}.prlimit:lxcframe_child_pre_pivot:StageError:{{}}{{}} = {{}}:{{}}: the kernel refused it ({{}}); cur",
        f"{S}.procfs:lxcframe_child_pre_pivot:StageError:{{}}{{}} = {{}}: cannot write /proc/<init>/{{}}: {{}}",
        f"{S}.sysctl:lxcframe_pre_start:StageError:{{}}{{}}: the container shares the host's {{}} namespace, so t",
        f"{S}.sysctl:_open_container_proc:StageError:{{}}{{}}: the container has no /proc to write sysctls through (",
        f"{S}.sysctl:lxcframe_child_pre_pivot:StageError:{{}}{{}} = {{}}: cannot write /proc/{{}}: {{}}",
        f"{S}.core:lxcframe_child_mount_rootfs:FileNotFoundError:{{}}lxc.rootfs.path: rootfs is not a directory",
        f"{S}.mounts:mount_entry_in_rootfs:OSError:{{}}mount {{}} on {{}}: {{}}",
        f"{S}.console:lxcframe_pre_start:ConfigError:",
        "lxcframe.console_service:LogFile._open:LogFileRefused:cannot open it: {}",
    )},
    "lxcframe.console_service:LogFile._open:LogFileRefused:is {}, not a regular file":
        "test_console_logfile_that_is_no_file_names_the_line",
    f"{S}.hooks:run_script:RuntimeError:{{}} exited with status {{}}: {{}}": "test_failing_hook_stops_the_start",
    f"{S}.seccomp.builder:_add:BuildError:{{}}:{{}}: cannot add the rule for {{}} ({{}}): {{}}":
        "test_seccomp_rule_libseccomp_refuses",
    f"{S}.seccomp:compile_part:ConfigError:": "test_seccomp_rule_libseccomp_refuses",
    f"{S}.seccomp:_install:PermissionError:loading the seccomp policy needs CAP_SYS_ADMIN or lxc.no_new_privs = 1":
        "test_seccomp_without_cap_sys_admin_or_no_new_privs",
    f"{S}.idmap:_idmapped_tree:OSError:cannot idmap the rootfs {{}} ({{}}); its filesystem may not supp":
        "test_idmapped_rootfs_on_a_filesystem_without_idmaps",
    f"{S}.idmap:_write_map:OSError:the host refused the {{}} {{}}: {{}}": "test_idmap_the_host_refuses",
    f"{S}.console.client:connect:ContainerError:{{}}: has no console (not running, lxc.console.path = non":
        "test_console_requests_refused",
    f"{S}.console.client:request:ContainerError:": "test_console_requests_refused",
    f"{S}.mount_injection:_check_target:ContainerError:mount target {{}}: expected an absolute path inside the c":
        "test_mount_into_a_container_refused",
    f"{S}.mount_injection:_run:ContainerError:{{}} {{}}: {{}}": "test_mount_into_a_container_refused",
    f"{S}.mount_injection:_run:ContainerError:": "test_mount_into_a_container_refused",
    f"{AA}.start:prepare:AppArmorError:already confined by AppArmor profile {{}} and the kernel cannot stack profi":
        "test_apparmor_host_refuses",
    f"{AA}.start:prepare:AppArmorError:incomplete AppArmor support in this kernel ({{}}): profile {{}} could not res":
        "test_apparmor_host_refuses",
    f"{AA}.start:load_generated:AppArmorError:cannot create AppArmor policy namespace {{}}: {{}}":
        "test_apparmor_policy_namespace_cannot_be_made",
    f"{AA}.start:load_generated:AppArmorError:Failed to load generated": "test_apparmor_load_fails",
    f"{AA}.parser:Parser._must:ParserError:{{}}: exit status {{}}: {{}}": "test_apparmor_load_fails",
    f"{AA}.start:release:AppArmorError:": "test_apparmor_unload_fails_after_a_failed_start",
    f"{AA}.label:change_profile:OSError:cannot change AppArmor profile to {{}}: {{}}":
        "test_apparmor_change_profile_refused",
    f"{AA}.parser:_run:ParserError:cannot run {{}}: {{}}": "test_apparmor_parser_unusable",
    f"{AA}.parser:run_version:ParserError:exit status {{}}: {{}}": "test_apparmor_parser_unusable",
}

