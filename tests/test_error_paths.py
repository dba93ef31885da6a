"""Every user-facing error raised in lxcframe/config and lxcframe/plugins, triggered through the public surface.

A table names each ``raise`` by module, enclosing function, exception and the message's literal text
(formatted fields shown as ``{}``; a second raise with the same name gets ``#2``), never by line number.
:func:`test_every_raise_has_a_test_or_a_reason` walks the AST and fails on a raise that is in no table,
so a new error path without a test is caught here. Each case checks that its error message matches
the literal text of the raise it claims, so an entry cannot drift to another raise unnoticed.

Config input errors are checked for the exact class and for the file, line and key they name, both
through ``Container.load_config`` (what ``start``, ``get`` and ``create`` read with) and through
``lxcframe config validate``. Errors that only a start can show are in ``test_error_paths_start.py``.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from lxcframe.cli.main import main
from lxcframe.config.keys import KeySpec, integer
from lxcframe.container import Container
from lxcframe.errors import ConfigError, ConfigErrors, ContainerError, LxcframeError, PluginError
from lxcframe.hooks import hookimpl
from lxcframe.input_limits import MAX_FILE_BYTES, MAX_FILE_LINES, MAX_FILES_PER_LOAD, MAX_INCLUDE_DEPTH
from lxcframe.plugin_manager import Plugins

LXCFRAME = Path(__file__).resolve().parent.parent / "lxcframe"

#: The command line run in this process, as the server's worker runs it (not a thin client: the test
#: reads its output and its errors here).
cli_main = functools.partial(main, here=True)


# --- the raises, from the AST ----------------------------------------------------------------------------------


@attrs.frozen
class Site:
    """One ``raise``: ``id`` is ``MODULE:FUNCTION:EXCEPTION:MESSAGE``, ``#N`` added to the N-th of a same id."""

    module: str
    function: str
    exc: str
    #: The message with each formatted field as ``{}`` ("" when the message is no literal at all).
    template: str
    occurrence: int
    path: str
    line: int

    @property
    def id(self) -> str:
        base = f"{self.module}:{self.function}:{self.exc}:{self.template}"
        return base if self.occurrence == 1 else f"{base}#{self.occurrence}"

    def pattern(self) -> re.Pattern[str]:
        """The message as a regular expression: its literal parts in order, anything for each field."""
        return re.compile(".*?".join(re.escape(part) for part in self.template.split("{}")), re.DOTALL)


def _template(call: ast.Call) -> str:
    # The message is the last positional string (StageError and PolicyError put a stage or a path first,
    # OSError an errno).
    for arg in reversed(call.args):
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
        if isinstance(arg, ast.JoinedStr):
            return "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in arg.values)
    return ""


def _made_by(tree: ast.Module) -> dict[str, str]:
    """Module functions that build an exception to raise (``return SomeError(f"...")``): name -> message."""
    made = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            returned = [n.value for n in ast.walk(node) if isinstance(n, ast.Return) and isinstance(n.value, ast.Call)]
            templates = {_template(call) for call in returned} - {""}
            if len(templates) == 1:
                made[node.name] = templates.pop()
    return made


def _sites_of(path: Path) -> list[Site]:
    module = ".".join(path.relative_to(LXCFRAME.parent).with_suffix("").parts).removesuffix(".__init__")
    shown = str(path.relative_to(LXCFRAME.parent))
    found: list[Site] = []
    counts: dict[str, int] = {}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    made = _made_by(tree)

    def visit(node: ast.AST, scope: tuple[str, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(child, (*scope, child.name))
                continue
            if isinstance(child, ast.Raise):
                if child.exc is None:
                    exc, template = "<re-raise>", ""
                elif isinstance(child.exc, ast.Call):
                    exc, template = ast.unparse(child.exc.func), _template(child.exc)
                    # raise helper(...) with the message written in the helper (not when the caller gives it)
                    template = template or made.get(exc, "")
                else:
                    exc, template = f"<re-raise {ast.unparse(child.exc)}>", ""
                function = ".".join(scope) or "<module>"
                base = f"{function}:{exc}:{template}"
                counts[base] = counts.get(base, 0) + 1
                found.append(Site(module, function, exc, template, counts[base], shown, child.lineno))
            visit(child, scope)

    visit(tree, ())
    return found


@functools.cache
def raise_sites() -> dict[str, Site]:
    # console_service: the console plugin's server, moved to the core (its log-file errors name a config line).
    files = sorted([*(LXCFRAME / "config").glob("*.py"), *(LXCFRAME / "plugins").rglob("*.py"),
                    LXCFRAME / "console_service.py"])
    # The copies (clone, rename, snapshots) and the overlay rootfs they make: what a user is told too.
    files += sorted([*LXCFRAME.glob("copying*.py"), LXCFRAME / "container_copy.py", LXCFRAME / "rootfs_overlay.py"])
    # An attach's options, checked in the caller: what an integrator is told.
    files.append(LXCFRAME / "attach_options.py")
    # lxcframe-oci's runs of a bundle's hooks: what the bundle's author (and the engine) is told.
    files.append(LXCFRAME / "oci" / "oci_hooks.py")
    return {site.id: site for path in files for site in _sites_of(path)}


def resolve(key: str) -> Site | None:
    """The raise a table key names: ``MODULE:FUNCTION:EXCEPTION:`` and the whole message or a prefix of it
    that only one raise of that function has (``#N`` for the N-th of identical ones)."""
    sites = raise_sites()
    if key in sites:
        return sites[key]
    number = re.search(r"#(\d+)\Z", key)
    occurrence = int(number.group(1)) if number else 1
    module, function, exc, message = key[:number.start() if number else None].split(":", 3)
    matches = [site for site in sites.values()
               if (site.module, site.function, site.exc, site.occurrence) == (module, function, exc, occurrence)
               and message and site.template.startswith(message)]
    return matches[0] if len(matches) == 1 else None


def assert_message_of(key: str, message: str) -> None:
    """``message`` is what the raise ``key`` words (its literal parts, in order)."""
    site = resolve(key)
    assert site is not None, f"{key} names no single raise"
    assert site.pattern().search(message), f"{message!r} is not the message of {site.id} ({site.path}:{site.line})"


# --- helpers ------------------------------------------------------------------------------------------------------


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def validate_cli(path: Path | str, capsys: pytest.CaptureFixture[str], *options: str) -> list[str]:
    """``lxcframe config validate PATH`` in this process: its error lines (exit status 1 asserted)."""
    capsys.readouterr()
    status = cli_main([*options, "config", "validate", str(path)])
    out, err = capsys.readouterr()
    assert status == 1, out
    lines = err.splitlines()
    assert lines and all(line.startswith("lxcframe: error: ") for line in lines), err
    return [line.removeprefix("lxcframe: error: ") for line in lines]


# --- config input: one line of a file is wrong --------------------------------------------------------------------


@attrs.frozen
class Bad:
    """A config whose line ``line`` (of ``file``) sets ``key`` wrongly; ``extra`` files are written beside it."""

    site: str
    text: str
    key: str
    line: int = 1
    file: str = "config"
    extra: tuple[tuple[str, str | bytes], ...] = ()

    @property
    def label(self) -> str:
        return self.site.split(":", 1)[1]


K, P, M, NET, NS = ("lxcframe.config.keys", "lxcframe.config.parser", "lxcframe.plugins.mounts",
                    "lxcframe.plugins.netns.config", "lxcframe.plugins")
CG = "lxcframe.plugins.cgroup"
OH = "lxcframe.oci.oci_hooks"
BAD_LINES = [
    # config.keys validators
    Bad(f"{K}:boolean01:ValueError:expected 0 or 1", "lxc.rootfs.managed = yes", "lxc.rootfs.managed"),
    Bad(f"{K}:uint:ValueError:expected an unsigned integer", "lxc.init.uid = root", "lxc.init.uid"),
    Bad(f"{K}:uint:ValueError:expected an unsigned integer#2", "lxc.init.gid = -1", "lxc.init.gid"),
    Bad(f"{K}:choice.validate:ValueError:expected one of {{}}", "lxc.hook.version = 2", "lxc.hook.version"),
    Bad(f"{K}:absolute_path:ValueError:expected an absolute path", "lxc.init.cwd = srv", "lxc.init.cwd"),
    # the cgroup plugin's placement paths
    Bad(f"{CG}.settings:cgroup_path:ValueError:expected a path relative to the base cgroup (no leading '/')",
        "lxc.cgroup.dir = /lxc", "lxc.cgroup.dir"),
    Bad(f"{CG}.settings:cgroup_path:ValueError:the path may not walk upwards with '..'",
        "lxc.cgroup.relative = 1\nlxc.cgroup.dir.monitor = a/../../b", "lxc.cgroup.dir.monitor", 2),
    Bad(f"{CG}.settings:cgroup_path:ValueError:expected a cgroup path", "lxc.cgroup.dir.container = ./",
        "lxc.cgroup.dir.container"),
    # config.model: a key nobody declares
    Bad("lxcframe.config.model:build_config:ConfigErrors:", "# comment\nlxc.uts.nmae = web", "lxc.uts.nmae", 2),
    # config.parser: syntax
    Bad(f"{P}:parse_line:ConfigError:expected 'key = value'", "lxc.uts.name web", "lxc.uts.name web"),
    Bad(f"{P}:parse_line:ConfigError:malformed key", "\nlxc.uts name = web", "lxc.uts name", 2),
    Bad(f"{P}:check_entry:ConfigError:a config value must fit on one line (no line break or NUL)",
        "lxc.uts.name = a\0b", "lxc.uts.name"),
    # config.parser: includes (the error names the including line)
    Bad(f"{P}:_include:ConfigError:include needs a path", "lxc.uts.name = a\nlxc.include = ''", "lxc.include", 2),
    Bad(f"{P}:_read:_at:no such file", "lxc.include = missing.conf", "lxc.include"),
    Bad(f"{P}:_read:_at:include loop: {{}}", "lxc.include = a.conf", "lxc.include", 1, "a.conf",
        (("a.conf", "lxc.include = config\n"),)),
    Bad(f"{P}:_read:_at:not UTF-8 text ({{}} at byte {{}})", "lxc.include = latin1.conf", "lxc.include",
        extra=(("latin1.conf", b"lxc.uts.name = caf\xe9\n"),)),
    Bad(f"{P}:_read:_at:cannot include {{}}: {{}}", "lxc.include = big.conf", "lxc.include",
        extra=(("big.conf", "#" * (MAX_FILE_BYTES + 1)),)),
    Bad(f"{P}:_read:_at:cannot include {{}}: {{}}#2", "lxc.include = plain.conf/inner.conf", "lxc.include",
        extra=(("plain.conf", "# a file, not a directory\n"),)),
    # plugins: core
    Bad(f"{NS}.core:_hostname:ValueError:expected a host name of at most 64 letters, digits, '-', '_' or '.'",
        "lxc.uts.name = web/01", "lxc.uts.name"),
    Bad(f"{NS}.core:_command:ValueError:expected a command", "lxc.init.cmd = ' '", "lxc.init.cmd"),
    Bad(f"{NS}.core:_groups:ValueError:expected gids separated by ',', not {{}}", "lxc.init.groups = 10,wheel",
        "lxc.init.groups"),
    Bad(f"{NS}.core:_rootfs_options:ValueError:{{}}: not supported: lxc.idmap gives the rootfs an idmapped mount",
        "lxc.rootfs.options = ro,idmap=container", "lxc.rootfs.options"),
    Bad(f"{NS}.core:_rootfs_options:ValueError:{{}}: not a flag of the rootfs mount (expected some of {{}})",
        "lxc.rootfs.options = size=1m", "lxc.rootfs.options"),
    # plugins: caps, hooks, console
    Bad(f"{NS}.caps:parse_caps:ValueError:unknown capability {{}}", "lxc.cap.drop = sys_admin sys_bogus",
        "lxc.cap.drop"),
    Bad(f"{NS}.hooks:_script:ValueError:expected a script path", "lxc.hook.pre-start = ' '", "lxc.hook.pre-start"),
    Bad(f"{NS}.console.settings:size:ValueError:expected auto or a size in bytes (optionally with kB, MB or GB)",
        "lxc.console.size = 12 parsecs", "lxc.console.size"),
    Bad(f"{NS}.console.settings:console_path:ValueError:expected none or an absolute path of a host device",
        "lxc.console.path = tty1", "lxc.console.path"),
    Bad(f"{NS}.console.settings:tty_dir:ValueError:expected a directory name below /dev (no slashes)",
        "lxc.tty.dir = lxc/ttys", "lxc.tty.dir"),
    # plugins: mounts (lxc.mount.auto tokens)
    Bad(f"{M}:parse_auto:ValueError:unknown token {{}}", "lxc.mount.auto = proc:ro", "lxc.mount.auto"),
    Bad(f"{M}:parse_auto:ValueError:unknown token {{}}#2", "lxc.mount.auto = cgroup:mixed:bogus", "lxc.mount.auto"),
    Bad(f"{M}:parse_auto:ValueError:expected shmounts:HOSTPATH[:CONTAINERPATH]", "lxc.mount.auto = shmounts:rel",
        "lxc.mount.auto"),
    Bad(f"{M}:parse_auto:ValueError:unknown token {{}} (expected proc, sys, cgroup or shmounts forms)",
        "lxc.mount.auto = dev", "lxc.mount.auto"),
    # plugins: netns
    Bad(f"{NET}:_net_type:ValueError:expected one of {{}}", "lxc.net.0.type = bridge", "lxc.net.0.type"),
    Bad(f"{NET}:ifname:ValueError:interface names have at most {{}} characters", "lxc.net.0.link = br0123456789abcd",
        "lxc.net.0.link"),
    Bad(f"{NET}:ifname:ValueError:an interface name cannot be '.' or '..' nor contain '/', ':', '%' or white space",
        "lxc.net.0.name = eth:0", "lxc.net.0.name"),
    Bad(f"{NET}:_flags:ValueError:the only flag is 'up'", "lxc.net.0.flags = down", "lxc.net.0.flags"),
    Bad(f"{NET}:hwaddr:ValueError:expected a MAC address such as 00:16:3e:12:34:56 ('x' for random digits)",
        "lxc.net.0.hwaddr = 00:16:3e:12:34", "lxc.net.0.hwaddr"),
    Bad(f"{NET}:hwaddr:ValueError:a multicast MAC address cannot name an interface",
        "lxc.net.0.hwaddr = 01:00:5e:00:00:01", "lxc.net.0.hwaddr"),
    Bad(f"{NET}:hwaddr:ValueError:the all-zero MAC address cannot name an interface",
        "lxc.net.0.hwaddr = 00:00:00:00:00:00", "lxc.net.0.hwaddr"),
    Bad(f"{NET}:_mtu:ValueError:expected an MTU between 68 and 65535", "lxc.net.0.mtu = 67", "lxc.net.0.mtu"),
    Bad(f"{NET}:inet4:ValueError:expected ADDRESS/PREFIX [BROADCAST]",
        "lxc.net.0.ipv4.address = 192.0.2.2/24 192.0.2.255 extra", "lxc.net.0.ipv4.address"),
    Bad(f"{NET}:inet4:ValueError:{{}} is not an IPv4 address", "lxc.net.0.ipv4.address = 192.0.2.300/24",
        "lxc.net.0.ipv4.address"),
    Bad(f"{NET}:inet4:ValueError:prefix length {{}} is not between 0 and 32", "lxc.net.0.ipv4.address = 192.0.2.2/33",
        "lxc.net.0.ipv4.address"),
    Bad(f"{NET}:inet4:ValueError:an unspecified, multicast or loopback address cannot be a container's address",
        "lxc.net.0.ipv4.address = 127.0.0.2/8", "lxc.net.0.ipv4.address"),
    Bad(f"{NET}:inet4:ValueError:broadcast {{}} is not an IPv4 address",
        "lxc.net.0.ipv4.address = 192.0.2.2/24 everyone", "lxc.net.0.ipv4.address"),
    Bad(f"{NET}:inet6:ValueError:{{}} is not an IPv6 address", "lxc.net.0.ipv6.address = 2001:db8::g/64",
        "lxc.net.0.ipv6.address"),
    Bad(f"{NET}:inet6:ValueError:prefix length {{}} is not between 0 and 128",
        "lxc.net.0.ipv6.address = 2001:db8::2/129", "lxc.net.0.ipv6.address"),
    Bad(f"{NET}:inet6:ValueError:an unspecified, multicast or loopback address cannot be a container's address",
        "lxc.net.0.ipv6.address = ff02::1/64", "lxc.net.0.ipv6.address"),
    Bad(f"{NET}:_gateway.validate:ValueError:expected an IPv{{}} address, 'auto' (the link's address) or 'dev' (a devi",
        "lxc.net.0.ipv6.gateway = 192.0.2.1", "lxc.net.0.ipv6.gateway"),
    Bad(f"{NET}:_gateway.validate:ValueError:a gateway cannot be an unspecified or multicast address",
        "lxc.net.0.ipv4.gateway = 0.0.0.0", "lxc.net.0.ipv4.gateway"),
    Bad(f"{NET}:_macvlan_mode:ValueError:expected one of {{}}", "lxc.net.0.macvlan.mode = vepa2",
        "lxc.net.0.macvlan.mode"),
    Bad(f"{NET}:_script:ValueError:expected a script", "lxc.net.0.script.up = ' '", "lxc.net.0.script.up"),
    Bad(f"{NET}:_empty_only:ValueError:only an empty value is allowed here: it removes the network entries below th",
        "lxc.net.0 = veth", "lxc.net.0"),
    Bad(f"{NET}:_unsupported:ValueError:this LXC network key is not supported by lxcframe",
        "lxc.net.0.veth.vlan.id = 5", "lxc.net.0.veth.vlan.id"),
    Bad(f"{NET}:_choice.validate:ValueError:expected one of {{}}", "lxc.net.0.ipvlan.mode = foo",
        "lxc.net.0.ipvlan.mode"),
    Bad(f"{NET}:_vlan_id:ValueError:expected a VLAN id between 0 and {{}}", "lxc.net.0.vlan.id = 5000",
        "lxc.net.0.vlan.id"),
    Bad(f"{NET}:_l2proxy:ValueError:expected 0 or 1", "lxc.net.0.l2proxy = 2", "lxc.net.0.l2proxy"),
    Bad(f"{NET}:_route.validate:ValueError:expected an IPv{{}} NETWORK/PREFIX", "lxc.net.0.veth.ipv4.route = 192.0.2.0",
        "lxc.net.0.veth.ipv4.route"),
    Bad(f"{NET}:_route.validate:ValueError:{{}} is not an IPv{{}} network: {{}}",
        "lxc.net.0.veth.ipv6.route = 2001:db8::zz/64", "lxc.net.0.veth.ipv6.route"),
    Bad(f"{NET}:_unknown:ValueError:not a network key (lxc.net.<N>.KEY with N a decimal index and KEY one ",
        "lxc.net.00.type = veth", "lxc.net.00.type"),
    # plugins: prlimit, sysctl
    Bad(f"{NS}.prlimit:_limit:ValueError:{{}} is not a number or 'unlimited'", "lxc.prlimit.nofile = -1",
        "lxc.prlimit.nofile"),
    Bad(f"{NS}.prlimit:_limit:ValueError:{{}} is too large (use 'unlimited')",
        f"lxc.prlimit.nofile = {2**64 - 1}", "lxc.prlimit.nofile"),
    Bad(f"{NS}.prlimit:parse_limits:ValueError:the soft limit is above the hard limit",
        "lxc.prlimit.nofile = unlimited:1024", "lxc.prlimit.nofile"),
    Bad(f"{NS}.prlimit:_unknown_resource:ValueError:unknown resource (expected one of {{}})",
        "lxc.prlimit.files = 10", "lxc.prlimit.files"),
    Bad(f"{NS}.sysctl:_not_namespaced:ValueError:not a namespaced sysctl: writing it would change the host (al",
        "lxc.sysctl.vm.swappiness = 10", "lxc.sysctl.vm.swappiness"),
    # plugins: namespaces
    Bad(f"{NS}.namespaces_config:namespace_list:ValueError:unknown namespace {{}}", "lxc.namespace.clone = bogus",
        "lxc.namespace.clone"),
    Bad(f"{NS}.namespaces_config:share_target:ValueError:expected a pid above 0", "lxc.namespace.share.net = 0",
        "lxc.namespace.share.net"),
    Bad(f"{NS}.namespaces_config:share_target:ValueError:expected a pid, a container name",
        "lxc.namespace.share.uts = lxc/c1", "lxc.namespace.share.uts"),
    Bad(f"{NS}.namespaces_config:_not_shareable.refuse:ValueError:sharing the {{}} namespace is not supported",
        "lxc.namespace.share.pid = c1", "lxc.namespace.share.pid"),
    Bad(f"{NS}.namespaces_config:_unknown_share:ValueError:unknown namespace", "lxc.namespace.share.foo = c1",
        "lxc.namespace.share.foo"),
    Bad(f"{NS}.namespaces_config:time_offset:ValueError:expected an integer and a unit",
        "lxc.time.offset.boot = 1x", "lxc.time.offset.boot"),
    Bad(f"{NS}.namespaces_config:time_offset:ValueError:the offset is too large",
        "lxc.time.offset.monotonic = 9999999999999h", "lxc.time.offset.monotonic"),
]


@pytest.mark.parametrize("case", BAD_LINES, ids=lambda case: case.label)
def test_bad_config_line_names_file_line_and_key(case: Bad, tmp_path: Path, lxcpath: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path / "config", case.text + "\n")
    for name, text in case.extra:
        write(tmp_path / name, text)
    where = str(tmp_path / case.file)
    with pytest.raises(ConfigError) as info:
        Container("c1", lxcpath, config_path=str(config)).load_config()
    # The parser stops at the first bad line; values are all checked, then reported together.
    if case.site.startswith(P):
        assert type(info.value) is ConfigError
        error = info.value
    else:
        assert type(info.value) is ConfigErrors
        [error] = info.value.errors
        assert type(error) is ConfigError
    assert (error.path, error.line, error.key) == (where, case.line, case.key)
    assert str(error).startswith(f"{where}:{case.line}: {case.key}")
    assert_message_of(case.site, error.reason)
    # The command says the same, on one line.
    assert validate_cli(config, capsys) == [str(error)]


# --- config input: found when the whole config is validated (config validate, and before any start) ---------------


@attrs.frozen
class Problem:
    """A config that loads but does not validate; the error names ``key`` at ``line`` of the config and
    ``inner`` (the referenced file's own ``FILE:LINE``) where there is one."""

    site: str
    text: str
    key: str
    line: int
    files: tuple[tuple[str, str], ...] = ()
    inner: str = ""

    @property
    def label(self) -> str:
        return self.site.split(":", 1)[1]


SC = "lxcframe.plugins.seccomp.policy"


def _seccomp(site: str, policy: str, inner_line: int) -> Problem:
    return Problem(site, "lxc.seccomp.profile = policy.seccomp", "lxc.seccomp.profile", 2,
                   (("policy.seccomp", policy),), f"policy.seccomp:{inner_line}: ")


PROBLEMS = [
    Problem(f"{NS}.core:arch_personality:ValueError:this host ({{}}) cannot run {{}}", "lxc.arch = aarch64"
            if os.uname().machine != "aarch64" else "lxc.arch = x86_64", "lxc.arch", 2),
    Problem(f"{M}:_read_fstab:ValueError:{{}}:{{}}: {{}}", "lxc.mount.fstab = fstab", "lxc.mount.fstab", 2,
            (("fstab", "# mounts\n/srv srv none bind\n/srv/a\n"),), "fstab:3: "),
    _seccomp(f"{SC}:c_unsigned:ValueError:{{}} is not a number", "2\nblacklist\nmkdir errno 1 [0,zero,==]\n", 3),
    _seccomp(f"{SC}:c_unsigned:ValueError:{{}} is not an unsigned {{}}-bit number",
             "2\nblacklist\nmkdir errno 1 [0,-1,==]\n", 3),
    _seccomp(f"{SC}:parse_policy:PolicyError:expected the policy version 1 or 2, not {{}}", "3\nblacklist\n", 1),
    _seccomp(f"{SC}:parse_policy:PolicyError:missing the policy type (e.g. 'blacklist')", "2\n# nothing\n", 2),
    _seccomp(f"{SC}:parse_policy:PolicyError:'debug' is not supported", "2\nblacklist debug\n", 2),
    _seccomp(f"{SC}:_parse_v1:PolicyError:a version 1 policy must be a whitelist (allowlist)", "1\nblacklist\n", 2),
    _seccomp(f"{SC}:_parse_v1:PolicyError:expected a syscall number, not {{}}", "1\nwhitelist\n0\nread\n", 4),
    _seccomp(f"{SC}:_parse_v2:PolicyError:unknown policy type {{}} (expected blacklist, whitelist, deny",
             "2\ngreylist\n", 2),
    _seccomp(f"{SC}:_section_applies:PolicyError:unknown section {{}}", "2\nblacklist\n[sparc]\nmkdir\n", 3),
    _seccomp(f"{SC}:_parse_rule:PolicyError:{{}} is not a syscall name", "2\nblacklist\nmk-dir\n", 3),
    _seccomp(f"{SC}:_parse_rule:PolicyError:reject_force_umount takes no action or arguments",
             "2\nblacklist\nreject_force_umount errno 1\n", 3),
    _seccomp(f"{SC}:_parse_action:PolicyError:'errno' needs one number (e.g. 'errno 1')",
             "2\nblacklist\nmkdir errno\n", 3),
    _seccomp(f"{SC}:_parse_action:PolicyError:'errno {{}}': not a number", "2\nblacklist\nmkdir errno EPERM\n", 3),
    _seccomp(f"{SC}:_parse_action:PolicyError:'errno {{}}': expected 0..{{}}", "2\nblacklist\nmkdir errno 5000\n", 3),
    _seccomp(f"{SC}:_parse_action:PolicyError:action 'notify' is not supported (seccomp notify is not implement",
             "2\nblacklist\nmkdir notify\n", 3),
    _seccomp(f"{SC}:_parse_action:PolicyError:unknown action {{}} (expected {{}})",
             "2\nblacklist\nmkdir deny\n", 3),
    _seccomp(f"{SC}:_parse_action:PolicyError:unexpected {{}} after action {{}}", "2\nblacklist\nmkdir kill now\n", 3),
    _seccomp(f"{SC}:_parse_args:PolicyError:unexpected {{}} (arguments are written [index,value,op] or [in",
             "2\nblacklist\nmkdir errno 1 [0,1,==] junk\n", 3),
    _seccomp(f"{SC}:_parse_args:PolicyError:at most {{}} argument comparisons per rule, not {{}}",
             "2\nblacklist\nmkdir errno 1" + "".join(f" [{i % 6},1,==]" for i in range(7)) + "\n", 3),
    _seccomp(f"{SC}:_parse_arg:PolicyError:argument {{}}: expected [index,value,op] or [index,value,op,mask]",
             "2\nblacklist\nmkdir errno 1 [0,1]\n", 3),
    _seccomp(f"{SC}:_parse_arg:PolicyError:argument {{}}: {{}}", "2\nblacklist\nmkdir errno 1 [x,1,==]\n", 3),
    _seccomp(f"{SC}:_parse_arg:PolicyError:argument {{}}: the index must be 0..{{}}",
             "2\nblacklist\nmkdir errno 1 [6,1,==]\n", 3),
    _seccomp(f"{SC}:_parse_arg:PolicyError:argument {{}}: unknown operator {{}} (expected one of {{}})",
             "2\nblacklist\nmkdir errno 1 [0,1,=~]\n", 3),
    # cgroup2 device rules, folded into a device program's policy
    Problem(f"{CG}.device_rules:_access:ValueError:expected an access of up to three of the letters r, w, m, got {{}}",
            "lxc.cgroup2.devices.allow = c 1:3 rwx", "lxc.cgroup2.devices.allow", 2),
    Problem(f"{CG}.device_rules:_number:ValueError:expected a {{}} number or '*', got {{}}",
            "lxc.cgroup2.devices.allow = c one:3 rwm", "lxc.cgroup2.devices.allow", 2),
    Problem(f"{CG}.device_rules:_number:ValueError:{{}} number {{}} is too large",
            "lxc.cgroup2.devices.deny = b 8:4294967296 rwm", "lxc.cgroup2.devices.deny", 2),
    Problem(f"{CG}.device_rules:parse_rule:ValueError:a device path is taken by devices.allow only; write the rule",
            "lxc.cgroup2.devices.deny = /dev/null rwm", "lxc.cgroup2.devices.deny", 2),
    Problem(f"{CG}.device_rules:parse_rule:ValueError:{{}}: expected 'a', or 'TYPE MAJOR:MINOR ACCESS' (e.g. 'c 1:3 rw",
            "lxc.cgroup2.devices.deny = a\nlxc.cgroup2.devices.allow = c 1:3", "lxc.cgroup2.devices.allow", 3),
    Problem(f"{CG}.device_rules:parse_rule:ValueError:expected a device type a, b or c, got {{}}",
            "lxc.cgroup2.devices.allow = u 1:3 rwm", "lxc.cgroup2.devices.allow", 2),
    Problem(f"{CG}.device_rules:parse_rule:ValueError:expected MAJOR:MINOR, got {{}}",
            "lxc.cgroup2.devices.allow = c 1 rwm", "lxc.cgroup2.devices.allow", 2),
    Problem(f"{CG}.device_rules:fold:ValueError:{{}}: {{}}: {{}}",
            "lxc.cgroup2.devices.allow = c 1:3 rwm\nlxc.cgroup2.devices.allow = c *:3:3 rwm",
            "lxc.cgroup2.devices.allow", 3),
    Problem(f"{SC}:read_policy:PolicyError:cannot read the seccomp profile: {{}}",
            "lxc.seccomp.profile = profiles", "lxc.seccomp.profile", 2, (("profiles/keep", ""),), "profiles:0: "),
    Problem(f"{SC}:read_policy:PolicyError:cannot read the seccomp profile: {{}}#2",
            "lxc.seccomp.profile = missing.seccomp", "lxc.seccomp.profile", 2, (), "missing.seccomp:0: "),
]


@pytest.mark.parametrize("case", PROBLEMS, ids=lambda case: case.label)
def test_config_problem_names_file_line_and_key(case: Problem, tmp_path: Path, lxcpath: str, host,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path / "config", f"lxc.rootfs.path = {tmp_path}\n{case.text}\n")
    for name, text in case.files:
        write(tmp_path / name, text)
    where = f"{config}:{case.line}: {case.key}"
    inner = str(tmp_path / case.inner) if case.inner else ""
    [line] = validate_cli(config, capsys)
    assert line.startswith(where) and inner in line, line
    assert_message_of(case.site, line)
    # The same refusal stops a start before anything is made.
    container = Container("c1", lxcpath, config_path=str(config))
    with pytest.raises(ConfigError) as info:
        container.execute(["/bin/true"])
    assert type(info.value) is ConfigError and str(info.value) == line
    assert not container.running
    host.assert_clean()


def test_key_of_a_disabled_plugin_is_refused(tmp_path: Path, lxcpath: str, host,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """ContainerConfig.refuse_unhandled: the key is known, its plugin is off; start and validate refuse it."""
    config = write(tmp_path / "config", f"lxc.rootfs.path = {tmp_path}\nlxc.cap.drop = sys_admin\n")
    container = Container("c1", lxcpath, config_path=str(config), disable=("caps",))
    with pytest.raises(ConfigErrors) as info:
        container.execute(["/bin/true"])
    [error] = info.value.errors
    assert (error.path, error.line, error.key) == (str(config), 2, "lxc.cap.drop")
    assert "handled by plugin 'caps', which is disabled" in error.reason
    assert_message_of("lxcframe.config.model:ContainerConfig.refuse_unhandled:ConfigErrors:", str(error))
    assert validate_cli(config, capsys, "-p", "no:caps") == [str(error)]
    host.assert_clean()


# --- config input that the load budget refuses ---------------------------------------------------------------------


def test_includes_nested_too_deep(tmp_path: Path, lxcpath: str, capsys: pytest.CaptureFixture[str]) -> None:
    for depth in range(MAX_INCLUDE_DEPTH + 2):
        write(tmp_path / f"d{depth}.conf", f"# level {depth}\nlxc.include = d{depth + 1}.conf\n")
    write(tmp_path / f"d{MAX_INCLUDE_DEPTH + 2}.conf", "lxc.uts.name = deep\n")
    config = write(tmp_path / "config", "lxc.include = d0.conf\n")
    with pytest.raises(ConfigError) as info:
        Container("c1", lxcpath, config_path=str(config)).load_config()
    error = info.value
    assert type(error) is ConfigError
    # The line that includes one level too many is named.
    last = MAX_INCLUDE_DEPTH - 1
    assert (error.path, error.line, error.key) == (str(tmp_path / f"d{last}.conf"), 2, "lxc.include")
    assert_message_of(f"{P}:_read:_at:includes nested deeper than {{}} levels", str(error))
    assert validate_cli(config, capsys) == [str(error)]


def test_too_many_files_in_one_load(tmp_path: Path, lxcpath: str, capsys: pytest.CaptureFixture[str]) -> None:
    """_read: InputRefused for the load budget, turned into the including line's error at once."""
    parts = tmp_path / "parts"
    parts.mkdir()
    for number in range(MAX_FILES_PER_LOAD):
        (parts / f"{number:04}.conf").write_text("")
    config = write(tmp_path / "config", "lxc.include = parts\n")
    with pytest.raises(ConfigError) as info:
        Container("c1", lxcpath, config_path=str(config)).load_config()
    error = info.value
    assert type(error) is ConfigError
    assert (error.path, error.line, error.key) == (str(config), 1, "lxc.include")
    assert f"cannot include {parts}/0999.conf: more than {MAX_FILES_PER_LOAD} files" in str(error)
    assert validate_cli(config, capsys) == [str(error)]


def test_config_file_itself_unreadable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The file given to validate (no including line): named on its own; a FIFO is refused unopened."""
    os.mkfifo(tmp_path / "fifo")
    assert validate_cli(tmp_path / "fifo", capsys) == [f"{tmp_path / 'fifo'}: is a FIFO, not a regular file"]
    write(tmp_path / "lines.conf", "#\n" * (MAX_FILE_LINES + 1))
    lines = tmp_path / "lines.conf"
    assert validate_cli(lines, capsys) == [f"{lines}: more than {MAX_FILE_LINES} lines"]


_NO_DAC = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
           "--bounding-set=-dac_override,-dac_read_search", "--"]


@pytest.mark.parametrize(("site", "make"), [
    (f"{P}:_read:_at:permission denied", lambda d: write(d / "secret.conf", "lxc.uts.name = x\n")),
    (f"{P}:_include:_at:cannot include {{}}: {{}}", lambda d: (d / "secret.conf").mkdir()),
], ids=["file", "directory"])
def test_include_root_may_not_read(site: str, make: Callable[[Path], object], tmp_path: Path) -> None:
    """Without CAP_DAC_OVERRIDE (root confined, or a user's own lxcframe) a 000 file or directory is refused."""
    make(tmp_path)
    os.chmod(tmp_path / "secret.conf", 0)
    config = write(tmp_path / "config", "# the secret part\nlxc.include = secret.conf\n")
    env = {**os.environ, "LXCFRAME_HOST_CONFIG": str(tmp_path / "none.toml")}
    result = subprocess.run([*_NO_DAC, sys.executable, "-m", "lxcframe", "config", "validate", str(config)],
                            capture_output=True, text=True, env=env, timeout=60, check=False)
    assert result.returncode == 1, result.stdout
    line = result.stderr.strip()
    assert line.startswith(f"lxcframe: error: {config}:2: lxc.include = 'secret.conf': cannot include "
                           f"{tmp_path / 'secret.conf'}: "), line
    assert_message_of(site, line)
    assert line.lower().endswith("permission denied")


# --- third-party plugins -----------------------------------------------------------------------------------------


class CountPlugin:
    @hookimpl
    def lxcframe_config_keys(self) -> list[KeySpec]:
        return [KeySpec("lxc.example.count", integer, doc="a third party's number")]


class ClashingPlugin:
    @hookimpl
    def lxcframe_config_keys(self) -> list[KeySpec]:
        return [KeySpec("lxc.uts.name", doc="declared twice")]


def test_third_party_integer_key(tmp_path: Path, lxcpath: str) -> None:
    """keys.integer is offered to plugins (no builtin key uses it)."""
    config = write(tmp_path / "config", "lxc.example.count = many\n")
    plugins = Plugins(environ={}, extra=[("example", CountPlugin())])
    with pytest.raises(ConfigErrors) as info:
        Container("c1", lxcpath, config_path=str(config), plugins=plugins).load_config()
    assert (info.value.path, info.value.line, info.value.key) == (str(config), 1, "lxc.example.count")
    assert_message_of(f"{K}:integer:ValueError:expected an integer", info.value.reason)


def test_key_declared_by_two_plugins(tmp_path: Path, lxcpath: str) -> None:
    # The second declaration fails its plugin alone (tests/test_plugin_isolation.py); the key stays core's.
    config = write(tmp_path / "config", "lxc.uts.name = web\n")
    plugins = Plugins(environ={}, extra=[("clash", ClashingPlugin())])
    [clash] = [r for r in plugins.records() if r.name == "clash"]
    assert (clash.state, clash.reason) == ("failed", "config key 'lxc.uts.name' is declared by plugin 'core' already")
    loaded = Container("c1", lxcpath, config_path=str(config), plugins=plugins).load_config()
    assert loaded.get("lxc.uts.name") == "web"


# --- create: a failed create leaves nothing --------------------------------------------------------------------------


def _nothing_made(lxcpath: str, host) -> None:
    assert os.listdir(lxcpath) == []
    host.assert_clean()


@pytest.mark.parametrize(("site", "template", "rootfs", "message"), [
    ("lxcframe.plugins.templates:build_dir:ValueError:the dir template needs --rootfs DIRECTORY", "dir", None,
     "template 'dir' failed: the dir template needs --rootfs DIRECTORY"),
    ("lxcframe.plugins.templates:build_dir:ValueError:--rootfs {}: not a directory", "dir", "/etc/hostname",
     "template 'dir' failed: --rootfs /etc/hostname: not a directory"),
    ("lxcframe.plugins.templates:build_tar:ValueError:the tar template needs --rootfs FILE.tar[.gz|.bz2|.xz|.zst]",
     "tar", None, "template 'tar' failed: the tar template needs --rootfs FILE.tar[.gz|.bz2|.xz|.zst]"),
])
def test_template_refuses(site: str, template: str, rootfs: str | None, message: str, lxcpath: str, host) -> None:
    with pytest.raises(ContainerError) as info:
        Container("c1", lxcpath).create(template, rootfs=rootfs)
    assert str(info.value) == message
    assert_message_of(site, str(info.value))
    _nothing_made(lxcpath, host)


def test_busybox_template_without_a_static_busybox(lxcpath: str, host, monkeypatch: pytest.MonkeyPatch) -> None:
    from lxcframe.plugins import templates

    monkeypatch.setattr(templates, "BUSYBOX_CANDIDATES", ("/etc/hostname", "/no/such/busybox"))
    with pytest.raises(ContainerError) as info:
        Container("c1", lxcpath).create("busybox")
    assert str(info.value) == "template 'busybox' failed: no static busybox on this host (install busybox-static)"
    assert_message_of("lxcframe.plugins.templates:build_busybox:RuntimeError:no static busybox on this host "
                      "(install busybox-static)", str(info.value))
    _nothing_made(lxcpath, host)


@pytest.mark.parametrize(("site", "pair", "exact"), [
    (f"{P}:check_entry:ConfigError:malformed key {{}}", ("lxc.uts name", "web"), "malformed key 'lxc.uts name'"),
    (f"{P}:check_entry:ConfigError:a config value must fit on one line (no line break or NUL)",
     ("lxc.uts.name", "web\nlxc.hook.pre-start = /bin/evil"),
     "lxc.uts.name = 'web\\nlxc.hook.pre-start = /bin/evil': a config value must fit on one line"),
    # A lone surrogate: what Python makes of bytes in argv that are no UTF-8.
    (f"{P}:check_entry:ConfigError:a config value must be UTF-8 text", ("lxc.environment", "LANG=caf\udce9"),
     "lxc.environment = 'LANG=caf\\udce9': a config value must be UTF-8 text"),
])
def test_create_refuses_a_line_that_would_not_stay_one(site: str, pair: tuple[str, str], exact: str,
                                                        lxcpath: str, host) -> None:
    container = Container("c1", lxcpath)
    with pytest.raises(ConfigError) as info:
        container.create("busybox", config=(pair,))
    assert type(info.value) is ConfigError
    # Named against the file it would have gone into.
    assert str(info.value).startswith(f"{container.config_file_name}: {exact}")
    assert_message_of(site, str(info.value))
    _nothing_made(lxcpath, host)


def test_create_refuses_a_bad_value(lxcpath: str, host) -> None:
    """A value the key refuses: the config written is loaded before create returns, then removed."""
    container = Container("c1", lxcpath)
    with pytest.raises(ConfigErrors) as info:
        container.create("busybox", config=(("lxc.net.0.type", "vlan"), ("lxc.net.0.vlan.id", "5000")))
    assert info.value.path == container.config_file_name and info.value.key == "lxc.net.0.vlan.id"
    assert info.value.line is not None and info.value.line > 1
    _nothing_made(lxcpath, host)


def test_config_set_on_a_file_that_is_no_utf8(lxcpath: str, host, capsys: pytest.CaptureFixture[str]) -> None:
    """writer.set_item refuses to rewrite what it cannot read as text, and leaves the file as it was."""
    config = write(Path(lxcpath) / "c1" / "config", b"lxc.uts.name = caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        Container("c1", lxcpath).set_config_item("lxc.uts.name", "web")
    assert type(info.value) is ConfigError
    assert str(info.value) == f"{config}: not UTF-8 text (invalid continuation byte at byte 18)"
    assert_message_of("lxcframe.config.writer:set_item:ConfigError:not UTF-8 text", str(info.value))
    capsys.readouterr()
    assert cli_main(["-P", lxcpath, "config", "set", "c1", "lxc.uts.name", "web"]) == 1
    assert capsys.readouterr().err == f"lxcframe: error: {info.value}\n"
    assert config.read_bytes() == b"lxc.uts.name = caf\xe9\n" and os.listdir(config.parent) == ["config"]
    host.assert_clean()


# --- commands on a container --------------------------------------------------------------------------------------


def test_console_escape_refused(lxcpath: str, capsys: pytest.CaptureFixture[str]) -> None:
    site = "lxcframe.plugins.console.terminal:parse_escape:LxcframeError:-e {}: expected ^LETTER or a single character"
    with pytest.raises(LxcframeError) as info:
        Container("c1", lxcpath).console(escape="^1")
    assert type(info.value) is LxcframeError and str(info.value) == "-e ^1: expected ^LETTER or a single character"
    assert_message_of(site, str(info.value))
    capsys.readouterr()
    assert cli_main(["-P", lxcpath, "console", "c1", "-e", "ctrl-a"]) == 1
    assert capsys.readouterr().err == "lxcframe: error: -e ctrl-a: expected ^LETTER or a single character\n"


# --- config sources other than LXC files (an OCI bundle, read by plugin oci) --------------------------------------

SRC = "lxcframe.config.source:read_source"


class _NotASource:
    @hookimpl
    def lxcframe_config_source(self, path: str) -> object:
        return {"lxc.uts.name": "x"} if path.endswith(".wrong") else None


def test_a_config_source_no_enabled_plugin_reads(tmp_path: Path) -> None:
    """What ``lxcframe-oci create --bundle`` (``read_source``) says when its bundle cannot be read at all."""
    from lxcframe.config.source import read_source
    from lxcframe.hostconfig import HostConfig

    (tmp_path / "config.json").write_text("{}")
    disabled = Plugins(["oci"], environ={}, host=HostConfig())
    with pytest.raises(PluginError) as info:
        read_source(disabled, str(tmp_path), "c1", None, what="the bundle", reader="oci")
    assert str(info.value) == f"no enabled plugin reads the bundle {tmp_path}: plugin oci is disabled"
    assert_message_of(f"{SRC}:PluginError:no enabled plugin reads", str(info.value))
    with pytest.raises(ConfigError) as missing:
        read_source(disabled, str(tmp_path / "nope"), "c1", None, what="the bundle", reader="oci")
    assert str(missing.value) == f"{tmp_path}/nope: no such file or directory"
    assert_message_of(f"{SRC}:ConfigError:no such file or directory", str(missing.value))
    wrong = tmp_path / "c1.wrong"
    wrong.write_text("")
    answering = Plugins(environ={}, host=HostConfig(), extra=[("wrong", _NotASource())])
    with pytest.raises(PluginError) as info:
        read_source(answering, str(wrong), "c1", None)
    assert str(info.value) == f"lxcframe_config_source gave dict for {wrong}, not a ConfigSource"
    assert_message_of(f"{SRC}:PluginError:lxcframe_config_source gave", str(info.value))


# --- the table: every raise has a test, or a reason ----------------------------------------------------------------

#: Covered by a test function of this module or the start module that is not one of the tables above.
COVERED_HERE = {
    "lxcframe.config.model:ContainerConfig.refuse_unhandled:ConfigErrors:": "test_key_of_a_disabled_plugin_is_refused",
    f"{P}:_read:_at:includes nested deeper than {{}} levels": "test_includes_nested_too_deep",
    f"{P}:_read:InputRefused:": "test_too_many_files_in_one_load",
    f"{P}:_read:_at:permission denied": "test_include_root_may_not_read",
    f"{P}:_include:_at:cannot include {{}}: {{}}": "test_include_root_may_not_read",
    f"{K}:integer:ValueError:expected an integer": "test_third_party_integer_key",
    "lxcframe.plugins.templates:build_dir:ValueError:the dir template needs": "test_template_refuses",
    "lxcframe.plugins.templates:build_dir:ValueError:--rootfs {}: not a directory": "test_template_refuses",
    "lxcframe.plugins.templates:build_tar:ValueError:the tar template needs --rootfs FILE.tar[.gz|.bz2|.xz|.zst]":
        "test_template_refuses",
    "lxcframe.plugins.templates:build_busybox:RuntimeError:no static busybox on this host (install busybox-static)":
        "test_busybox_template_without_a_static_busybox",
    f"{P}:check_entry:ConfigError:malformed key {{}}": "test_create_refuses_a_line_that_would_not_stay_one",
    f"{P}:check_entry:ConfigError:a config value must be UTF-8": "test_create_refuses_a_line_that_would_not_stay_one",
    "lxcframe.config.writer:set_item:ConfigError:not UTF-8 text": "test_config_set_on_a_file_that_is_no_utf8",
    "lxcframe.plugins.console.terminal:parse_escape:LxcframeError:-e {}: expected ^LETTER or a single character":
        "test_console_escape_refused",
    **{f"{SRC}:{site}": "test_a_config_source_no_enabled_plugin_reads" for site in (
        "ConfigError:no such file or directory", "PluginError:no enabled plugin reads",
        "PluginError:lxcframe_config_source gave")},
    f"{OH}:run_hook:HookFailed:{{}}: {{}}": "test_oci_hook_that_fails",
    f"{OH}:run_hook:HookFailed:{{}}: ran past its timeout of {{}} s": "test_oci_hook_that_fails",
    f"{OH}:run_hook:HookFailed:{{}}: {{}}{{}}": "test_oci_hook_that_fails",
    f"{OH}:await_init:OciError:container {{}}: init did not take the exec fifo": "test_oci_start_told_by_init",
    f"{OH}:await_init:OciError:container start failed: {{}}": "test_oci_start_told_by_init",
    f"{OH}:await_init:OciError:cannot start a container that has stopped": "test_oci_start_told_by_init",
}

#: A hook that cannot be executed, exits non-zero or runs past its timeout: the hook, its point and index named.
OCI_HOOKS = [
    ("{}: {}", {"path": "/nonexistent/hook"}, "createRuntime hook #0 (/nonexistent/hook): No such file or directory"),
    ("{}: {}{}", {"path": "/bin/sh", "args": ["sh", "-c", "cat > /dev/null; echo broken >&2; exit 4"]},
     "createRuntime hook #0 (/bin/sh): exit status 4: broken"),
    ("{}: ran past its timeout of {} s", {"path": "/bin/sh", "args": ["sh", "-c", "sleep 30"], "timeout": 1},
     "createRuntime hook #0 (/bin/sh): ran past its timeout of 1 s"),
]


@pytest.mark.parametrize(("template", "hook", "message"), OCI_HOOKS)
def test_oci_hook_that_fails(template: str, hook: dict[str, object], message: str) -> None:
    from lxcframe.oci.oci_hooks import BundleHooks, HookFailed, run_hook

    (parsed,) = BundleHooks.decode({"createRuntime": [hook]}).of("createRuntime")
    with pytest.raises(HookFailed) as caught:
        run_hook("createRuntime", 0, parsed, {"ociVersion": "1.0.2", "id": "c1", "status": "creating"})
    assert str(caught.value) == message
    assert_message_of(f"{OH}:run_hook:HookFailed:{template}", message)


def test_oci_start_told_by_init() -> None:
    """``start`` reads init's answer on the exec fifo (a pipe here): none in time, a failed startContainer
    hook, an init that is gone."""
    from lxcframe.oci.oci_hooks import FAILED, HOOKS_RUNNING, await_init
    from lxcframe.oci.store import OciError

    def answer(written: bytes, alive: bool, timeout: float = 5) -> str:
        read_end, write_end = os.pipe2(os.O_NONBLOCK)
        try:
            if written:
                os.write(write_end, written)
            with pytest.raises(OciError) as caught:
                await_init(read_end, "c1", lambda: alive, timeout)
            return str(caught.value)
        finally:
            os.close(read_end)
            os.close(write_end)

    silent = answer(b"", True, timeout=0.2)
    assert_message_of(f"{OH}:await_init:OciError:container {{}}: init did not take the exec fifo", silent)
    failed = answer(HOOKS_RUNNING + FAILED + b"startContainer hook #0 (/bin/false): exit status 1", False)
    assert failed == "container start failed: startContainer hook #0 (/bin/false): exit status 1"
    assert_message_of(f"{OH}:await_init:OciError:container start failed: {{}}", failed)
    gone = answer(b"", False)
    assert_message_of(f"{OH}:await_init:OciError:cannot start a container that has stopped", gone)

#: Raises no user input reaches as such, each with why. A re-raise passes on an error made (and tested) elsewhere.
ALLOWED: dict[str, str] = {
    f"{OH}:run_hook:<re-raise>:": "re-raise after killing the hook's process group",
    f"{OH}:OciHooks.lxcframe_child_pre_pivot:RuntimeError:the runtime did not answer": "a guard: create writes "
        "nothing but GO on the pipe, and kills init when the runtime's hooks failed",
    f"{CG}.live_devices:_change:ContainerError:{{}}: not running (its cgroup {{}} is gone)": "a stop that removed "
        "the cgroup between the caller's state check and the open; the state is checked again under the lock",
    f"{CG}.live_devices:_change:ContainerError:{{}}: {{}}": "a stop that began while the change waited for the lock",
    f"{CG}.live_devices:_change:ContainerError:cgroup key {{}} = {{}}: cannot attach the cgroup2 device program": (
        "the kernel loaded and attached a program of the same type at the start (or the first change probed it); "
        "a refusal now (out of memory) cannot be brought about from a test"),
    f"{CG}.live_devices:_change:<re-raise>:": "the record could not be written: the new program is detached again",
    f"{CG}.automount:mount_cgroups:<re-raise>:": "the kernel's refusal of cgroupfs where no host cgroup can be bound "
        "instead (the bind itself is what tests/oci/test_run.py's user namespace case runs)",
    "lxcframe.plugins.netns.host:_lower_device:<re-raise>:": "re-raise of a device creation error other than the "
        "kernel not knowing the type",
    "lxcframe.plugins.netns.routing:_read_sysctl:RuntimeError:cannot read {}: {}": "the link was found just before: "
        "only a link deleted meanwhile, or /proc/sys not mounted, reaches it",
    "lxcframe.plugins.netns.routing:_write_sysctl:RuntimeError:cannot write {} to {}: {}": "the sysctls of a veth "
        "end made just before: only a host fault (read-only /proc/sys) reaches it",
    "lxcframe.plugins.netns.routing:_delete_proxy:<re-raise>:": "re-raise of a proxy deletion error other than 'gone'",
    "lxcframe.plugins.netns.routing:_delete_lo_route:<re-raise>:": "re-raise of a route deletion error other than "
        "'gone'",
    "lxcframe.copying:copy_container:<re-raise>:": "re-raise after removing the finished copy's staging directory",
    "lxcframe.copying:build_copy:<re-raise>:": "re-raise after removing the half copy (test_copies.py, a full disk)",
    "lxcframe.copying:replace_container:<re-raise>:": "re-raise after the renames are undone and the copy removed",
    "lxcframe.copying:move_container:<re-raise>:": "re-raise after removing the rewritten configs not yet in place",
    "lxcframe.container_copy:CopyMethods.snapshot:<re-raise>:": "re-raise after removing the snaps directory it made",
    "lxcframe.config.edits:save_edits:<re-raise>:": "re-raise after removing the scratch copy of the config",
    "lxcframe.plugins.mounts:lxcframe_plan:ConfigError:{}:{}: lxc.mount.fstab = {}: {}": "the fstab file changed "
        "between lxcframe_validate's read (the lxc.mount.fstab case here) and the plan's; "
        "test_plan_parts_more.py::test_an_fstab_broken_after_validation_is_refused_at_its_line",
    "lxcframe.config.writer:_write_atomically:<re-raise>:": "re-raise after removing the temporary file",
    f"{K}:KeyRegistry.add:ValueError:config key {{}} declared by both": "Plugins refuses a key declared twice "
        "at registration and fails the second plugin alone (test_key_declared_by_two_plugins): only a direct "
        "user of KeyRegistry reaches this",
    "lxcframe.plugins.apparmor:__getattr__:AttributeError:module {} has no attribute {}":
        "module attribute protocol (lazy AppArmorPlugin import), a programming error",
    "lxcframe.plugins.apparmor.label:open_label_attr:<re-raise last>:":
        "re-raise of the last FileNotFoundError: a kernel with AppArmor has one of the two attr files",
    "lxcframe.plugins.apparmor.label:change_profile:OSError:cannot change AppArmor profile to {}: short write":
        "the kernel takes an attr write whole or fails it; a guard that no input reaches",
    "lxcframe.plugins.apparmor.store:write_if_changed:<re-raise>:": "re-raise after removing the temporary file",
    "lxcframe.plugins.apparmor.store:remove:<re-raise>:": "re-raise of an rmdir error other than 'gone' or 'not empty'",
    "lxcframe.plugins.apparmor.start:prepare:AppArmorError:Cannot use generated profile: apparmor_parser not availab":
        "validate refuses the same condition before any start (tested in the start module); only a parser "
        "removed between the plan and pre-start reaches it",
    "lxcframe.plugins.cgroup:lxcframe_cleanup:OSError:": "cgroups of a dead monitor the kernel will not remove "
        "(a process the host put there): a host fault no config input produces",
    f"{CG}.start:_remove_recorded:OSError:": "the undo of a failed start whose cgroups the kernel will not remove, "
        "as lxcframe_cleanup's: a host fault",
    f"{CG}.start:prepare:<re-raise>:": "re-raise after removing cgroups whose record could not be made",
    f"{CG}.delegated:_ns_id:LookupError:host {{}}id {{}} is not mapped": "the container's root and the caller "
        "are always mapped (validation refuses an unmapped init id; the caller is added to the map)",
    f"{CG}.controllers:enable_controllers:OSError:cannot hand {{}} down from {{}}: it has processes of its own (cgr":
        "the caller's own cgroup is the base and holds processes while a controller must be handed down "
        "(cgroup2's no-internal-process rule): where the host put the caller, not config input",
    f"{CG}.controllers:enable_controllers:<re-raise>:": "re-raise of any other refusal of cgroup.subtree_control",
    f"{CG}.fs:write:OSError:cannot open {{}}: {{}}": "a cgroup file missing or closed to root: the payload cgroup "
        "was just made by the start, so only a host fault (a hierarchy unmounted meanwhile) reaches it",
    f"{CG}.fs:empty:OSError:processes stay in {{}} after SIGKILL": "processes the kernel does not let die "
        "(stuck in uninterruptible sleep): a host fault",
    f"{CG}.fs:rmdir:OSError:cannot remove cgroup {{}}: {{}}": "rmdir of an emptied cgroup refused other than busy: "
        "a host fault",
    f"{CG}.fs:rmdir:OSError:cannot remove cgroup {{}}: still busy": "a cgroup still busy after 2 s with no process "
        "left: a host fault",
    f"{CG}.drivers:_attach_devices:OSError:": "a /dev path of a cgroup2 device rule that was checked when the config "
        "was validated and is gone at pre-start",
    f"{CG}.drivers:_attach_devices:OSError:{{}}: {{}}: cannot attach the cgroup2 device program to {{}}: {{}}":
        "the kernel refuses to load or attach a program the assembler made (a kernel without cgroup device "
        "programs; lxcframe check shows why on its cgroup.bpf_devices row)",
    f"{CG}.limits:apply_v1:OSError:{{}}: {{}}: no cgroup v1 hierarchy has the controller {{}}": "validate refuses "
        "the same limit first (test_a_limit_for_a_missing_controller_is_a_config_error); only a hierarchy "
        "unmounted between the plan and pre-start reaches it",
    f"{CG}.naming:cgroup_in:LookupError:no {{}} line in /proc/PID/cgroup": "a mounted hierarchy /proc/PID/cgroup "
        "does not list: the mount table changed under the start; the check probe catches it",
    f"{CG}.placement:make_cgroup:OSError:cannot create cgroup {{}}: {{}}": "mkdir refused by the kernel "
        "(hierarchy limits, permissions of a cgroup the host made): a host fault",
    f"{CG}.placement:create:FileExistsError:no free cgroup name for {{}} after {{}} tries": "would need 1000 "
        "cgroups of the container's name left by others in every hierarchy",
    f"{CG}.items:read:ContainerError:cgroup key {{}}: the kernel refused to read it: {{}} ({{}})": "a readable "
        "regular file of the cgroup whose read fails: the cgroup removed between the lookup and the read (a stop "
        "racing the call)",
    f"{CG}.placement:leave_monitor_cgroup:<re-raise>:": "re-raise of a move refused other than 'gone'",
    f"{CG}.placement:remove:<re-raise>:": "re-raise of an rmdir error other than busy, not empty or gone",
    f"{CG}.runtime:v1_set_frozen:TimeoutError:{{}} did not reach FROZEN within {{}}s": "the kernel's freezer not "
        "finishing within 10 s: a host fault",
    f"{CG}.runtime:v2_set_frozen:TimeoutError:cgroup.events of {{}} did not report frozen {{}} within {{}}s":
        "as v1_set_frozen: the kernel not reporting the freeze",
    f"{CG}.runtime:attach_target:OSError:no leaf cgroup to attach to below {{}}": "would need 1000 cgroups "
        "below the container's that hand controllers down, made by the container itself",
    "lxcframe.plugins.netns.host:cleanup:OSError:": "devices of a dead monitor the kernel refuses to delete or "
        "rename: a host fault no config input produces",
    "lxcframe.plugins.netns.host:_create_pair:<re-raise>:": "re-raise of a netlink error other than a name clash",
    "lxcframe.plugins.netns.host:_create_pair:RuntimeError:no free name for a veth's host end":
        "eight random names out of 36^6 all taken: no input chooses them",
    "lxcframe.plugins.netns.host:_delete_host_end:<re-raise>:": "re-raise of a netlink error other than 'gone'",
    "lxcframe.plugins.netns.child:_configure:<re-raise>:": "re-raise of a route error other than ENETUNREACH",
    "lxcframe.plugins.netns.inspect:read:<re-raise>:": "re-raise of a netlink error other than the EINVAL of a "
        "kernel that does not know the target attribute",
    "lxcframe.plugins.netns.inspect:read:<re-raise>:#2": "re-raise of an OSError other than the ENOPROTOOPT of a "
        "kernel without strict checking",
    "lxcframe.plugins.netns.inspect:_read_by_id:<re-raise _TargetIgnored>:": "internal signal to take the fallback "
        "(the id names another namespace now), caught by read",
    "lxcframe.plugins.netns.inspect:_read_by_id:<re-raise _TargetIgnored>:#2": "internal signal to take the "
        "fallback (a kernel that ignored the target), caught by read",
    "lxcframe.plugins.netns.inspect:_socket_inside:ProcessLookupError:init (pid {}) has exited":
        "init exiting between the caller's running check and opening its netns: a race with a stop",
    "lxcframe.plugins.netns.iproute:Rtnl.__init__:<re-raise>:": "re-raise after closing the socket made inside "
        "the namespace",
    "lxcframe.plugins.netns.pyroute2_import:message_classes:ModuleNotFoundError:No module named {}":
        "pyroute2 not installed: a broken installation (it is a dependency of the package)",
    "lxcframe.plugins.netns.pyroute2_import:complete:<re-raise>:": "re-raise of pyroute2's own import error after "
        "putting the package back as it was",
    "lxcframe.plugins.netns.pyroute2_import:_completing_getattr.__getattr__:AttributeError:module {} has no "
        "attribute {}": "the AttributeError Python's own module look-up gives, for a name pyroute2 does not have",
    "lxcframe.plugins.netns.nsid:assign_nsid:<re-raise>:": "re-raise of a netns id error other than "
        "'already has one'",
    "lxcframe.plugins.netns.nsid:assign_nsid:NetlinkError:the kernel kept no id":
        "the kernel acknowledging an id it then does not report: a kernel fault no input produces",
    "lxcframe.plugins.netns.rawlink:netlink_socket_inside:<re-raise failed[0]>:": "re-raise, in the caller's "
        "thread, of the setns or socket error of the short-lived thread",
    "lxcframe.plugins.netns.rawlink:RtnlSocket.__init__:<re-raise>:": "re-raise after closing the socket",
    "lxcframe.plugins.netns.rawlink:RtnlSocket.request:NetlinkError:": "the kernel refusing a look-up of the "
        "read path (RTM_GETNSID); 'no such id' is handled by get_nsid, the rest are kernel faults",
    "lxcframe.plugins.netns.rawlink:RtnlSocket.dump:NetlinkError:": "a dump the kernel failed after it started "
        "(memory, a namespace going away): a host fault no input produces",
    "lxcframe.plugins.netns.rawlink:RtnlSocket.dump:NetlinkError:#2": "a dump refused at once; the EINVAL of an "
        "unknown target attribute is how the check probe and read detect old kernels",
    "lxcframe.plugins.netns.rawlink:get_nsid:<re-raise>:": "re-raise of a look-up error other than 'no such id'",
    "lxcframe.plugins.console.client:connect:ContainerError:{}: not running":
        "Container checks the state first; only a container stopping between that check and the connect reaches it",
    "lxcframe.plugins.console.client:request:ContainerError:the monitor closed the console connection":
        "the monitor ending between accepting a console request and answering it (a stop racing the request)",
    "lxcframe.plugins.console.client:open_tty:<re-raise>:": "re-raise after closing the connection",
    "lxcframe.plugins.console.ptys:open_pty:<re-raise>:": "re-raise after closing the master",
    "lxcframe.console_service:LogFile._open:LogFileRefused:is {}, not a regular file#2":
        "a file swapped in between the lstat and the open (the race the check after the open closes)",
    "lxcframe.console_service:ConsoleServer.open:<re-raise>:": "re-raise after closing the server",
    "lxcframe.console_service:ConsoleServer.restore:<re-raise>:": "re-raise after closing the descriptors given",
    "lxcframe.plugins.devices:mount_devpts:<re-raise last>:": "re-raise of the last devpts mount error of the chain",
    "lxcframe.plugins.hooks:run_script:<re-raise>:": "re-raise after killing the hook's process group",
    "lxcframe.plugins.mount_injection:_detached_tree:<re-raise>:": "re-raise after closing the tree",
    "lxcframe.plugins.mount_injection:<module>:SystemExit:": "the mount helper's exit status, not an error",
    "lxcframe.plugins.seccomp.builder:build:_stack_error:{}: cannot stack the {} filter: {}":
        "libseccomp refusing a compat ABI of the host: a host fault (lxcframe check reports it)",
    "lxcframe.plugins.seccomp.builder:build:_stack_error:{}: cannot stack the {} filter: {}#2":
        "libseccomp refusing to merge the host's compat ABIs: a host fault (lxcframe check reports it)",
    "lxcframe.plugins.seccomp.builder:_export:<re-raise>:": "re-raise after closing the memfd",
    "lxcframe.plugins.namespaces:lxcframe_child_network:RuntimeError:{}: the monitor handed over no descriptor":
        "a guard: the monitor hands one over at pre-start for every share of the plan, or the start failed there",
    "lxcframe.plugins.namespaces:lxcframe_child_network:OSError:{}: cannot join that {} namespace":
        "setns of a namespace file root opened from a live process, by a single-threaded root child without a "
        "user namespace (refused with lxc.idmap before any start): a kernel refusal only",
    "lxcframe.plugins.namespaces_target:_open_namespace_file:_refuse:cannot open {}: {}":
        "root opening a file that exists and is no directory, by O_PATH and then through /proc/self/fd: a "
        "race (it was removed in between) or a kernel refusal only",
    "lxcframe.plugins.namespaces_target:open_namespace:_refuse:process {} ended while its {} namespace":
        "a race: the process exits between opening its namespace file and asking its pidfd",
    "lxcframe.plugins.seccomp.load:load_program:ValueError:not a seccomp program: {} bytes":
        "the program always comes from the builder; a guard before handing a pointer to the kernel",
}


#: Covered by a test elsewhere in the suite (it needs a host bridge that test sets up): file, test.
ELSEWHERE: dict[str, tuple[str, str]] = {
    f"{OH}:OciHooks.take_request:StageError:{{}}": (
        "oci/test_hooks.py", "test_a_hook_past_its_timeout_fails_create_and_leaves_nothing"),
    f"{OH}:OciHooks.lxcframe_child_pre_pivot:RuntimeError:": (
        "oci/test_hooks.py", "test_a_failing_create_container_hook_fails_create_naming_it"),
    f"{OH}:OciHooks.start_container:RuntimeError:": (
        "oci/test_hooks.py", "test_a_failing_start_container_hook_fails_start"),
    **{f"lxcframe.plugins.namespaces_target:{site}": (
        "test_namespaces.py", "test_a_share_target_that_is_not_running_stops_the_start") for site in (
        "_target_pidfd:_refuse:no process {} is running", "_target_pidfd:_refuse:a container cannot share",
        "_target_pidfd:_refuse:container {} of {} is not", "open_namespace:_refuse:cannot open the {} namespace")},
    **{f"lxcframe.plugins.namespaces_target:_open_namespace_file:_refuse:{site}": (
        "test_namespaces.py", "test_a_namespace_file_target_must_be_a_namespace_of_its_kind") for site in (
        "{} is not a namespace file", "{} is a {} namespace, not a {} one")},
    "lxcframe.plugins.namespaces:_new_time_namespace:OSError:{}: the kernel refused these offsets":
        ("test_namespaces.py", "test_an_offset_the_kernel_refuses_stops_the_start"),
    "lxcframe.attach_options:_descriptor:ContainerError:attach {}: {} is neither a descriptor":
        ("test_attach_options.py", "test_bad_options_are_refused_naming_the_option"),
    "lxcframe.attach_options:_ids:ContainerError:attach {}: {} is not an id":
        ("test_attach_options.py", "test_bad_options_are_refused_naming_the_option"),
    "lxcframe.attach_options:_variables:ContainerError:attach {}: {} is not a string without NUL":
        ("test_attach_options.py", "test_bad_options_are_refused_naming_the_option"),
    "lxcframe.attach_options:attach_options:ContainerError:attach namespaces:":
        ("test_attach_options.py", "test_bad_options_are_refused_naming_the_option"),
    "lxcframe.attach_options:attach_options:ContainerError:attach personality:":
        ("test_attach_options.py", "test_bad_options_are_refused_naming_the_option"),
    "lxcframe.attach_options:attach_options:ContainerError:attach cwd:":
        ("test_attach_options.py", "test_bad_options_are_refused_naming_the_option"),
    "lxcframe.attach_options:attach_options:ContainerError:attach env:":
        ("test_attach_options.py", "test_bad_options_are_refused_naming_the_option"),
    "lxcframe.attach_options:attach_options:ContainerError:attach pass_fds:":
        ("test_attach_options.py", "test_bad_options_are_refused_naming_the_option"),
    "lxcframe.plugins.netns.interfaces:move_in:ContainerError:attach_interface {}: the host's loopback":
        ("test_live_devices.py", "test_interface_refusals"),
    "lxcframe.plugins.netns.interfaces:move_out:ContainerError:detach_interface {}: the container's loopback":
        ("test_live_devices.py", "test_interface_refusals"),
    "lxcframe.container_copy:CopyMethods.snapshot:ContainerError:{}: cannot read the comment file {}: {}":
        ("test_copies.py", "test_what_cannot_be_copied_is_refused_before_anything_is_made"),
    "lxcframe.container_copy:CopyMethods._snapshot:ContainerError:{}: no snapshot {} (it has {})":
        ("test_copies.py", "test_snapshot_change_restore_list_and_destroy"),
    "lxcframe.container_copy:CopyMethods._refuse_if_snapshots:ContainerError:{}: has snapshots":
        ("test_copies.py", "test_snapshot_change_restore_list_and_destroy"),
    "lxcframe.container_copy:CopyMethods._rootfs_to_copy:ContainerError:{}: {} sets no lxc.rootfs.path":
        ("test_copies.py", "test_what_cannot_be_copied_is_refused_before_anything_is_made"),
    "lxcframe.container_copy:CopyMethods._rootfs_to_copy:ContainerError:{}: its rootfs is an overlay":
        ("test_copies.py", "test_what_cannot_be_copied_is_refused_before_anything_is_made"),
    "lxcframe.container_copy:CopyMethods._rootfs_to_copy:ContainerError:{}lxc.rootfs.path: {} is not a directory":
        ("test_copies.py", "test_what_cannot_be_copied_is_refused_before_anything_is_made"),
    "lxcframe.container_copy:CopyMethods._refuse_unless_stopped:ContainerError:{}: is {}: stop it before {}":
        ("test_copies.py", "test_a_running_source_and_an_existing_target_are_refused"),
    "lxcframe.container_copy:CopyMethods._rootfs_to_copy:ContainerError:{}: no such container (no {})":
        ("test_copies.py", "test_a_copy_is_of_the_config_the_object_sees_unsaved_edits_included"),
    "lxcframe.container_copy:_refuse_existing:ContainerError:{}: already exists ({})":
        ("test_copies.py", "test_a_running_source_and_an_existing_target_are_refused"),
    "lxcframe.copying:copy_tree:ContainerError:{}: copying {} failed: {}{}":
        ("test_copies.py", "test_a_failed_copy_leaves_no_target"),
    "lxcframe.rootfs_overlay:parse:ValueError:expected overlay:/LOWER:/UPPER (two absolute paths)":
        ("test_copies.py", "test_an_overlay_rootfs_value_is_checked_at_its_line_and_a_missing_layer_fails_the_start"),
    "lxcframe.rootfs_overlay:parse:ValueError:overlay paths cannot contain {}":
        ("test_copies.py", "test_an_overlay_rootfs_value_is_checked_at_its_line_and_a_missing_layer_fails_the_start"),
    "lxcframe.rootfs_overlay:mount:FileNotFoundError:{}lxc.rootfs.path: the overlay's {} directory is not a directory":
        ("test_copies.py", "test_an_overlay_rootfs_value_is_checked_at_its_line_and_a_missing_layer_fails_the_start"),
    "lxcframe.config.edits:check_values:ConfigError:":
        ("test_config_editing.py", "test_append_and_clear_refuse_unknown_keys_and_bad_values"),
    "lxcframe.config.edits:check_values:ConfigError:#2":
        ("test_config_editing.py", "test_append_and_clear_refuse_unknown_keys_and_bad_values"),
    "lxcframe.config.key_listing:sub_keys:ConfigError:no key an enabled plugin handles is below this prefix":
        ("test_config_editing.py", "test_clear_of_a_nic_a_multi_valued_key_and_get_keys"),
    "lxcframe.config.key_listing:_nic_keys:ConfigError:":
        ("test_config_editing.py", "test_clear_of_a_nic_a_multi_valued_key_and_get_keys"),
    "lxcframe.config.key_listing:_nic_keys:ConfigError:no network entry {} in this config":
        ("test_config_editing.py", "test_clear_of_a_nic_a_multi_valued_key_and_get_keys"),
    "lxcframe.config.writer:remove_entries:ConfigError:not UTF-8 text ({} at byte {})":
        ("test_config_editing.py", "test_saving_a_cleared_config_over_a_file_that_is_no_utf8"),
    "lxcframe.console_service:ConsoleServer.export:ExportError:the console server is closed":
        ("test_console_service.py", "test_export_is_refused_before_collect_and_after_forget"),
    "lxcframe.console_service:ConsoleServer.export:ExportError:the child's pty masters were not collected":
        ("test_console_service.py", "test_export_is_refused_before_collect_and_after_forget"),
    "lxcframe.console_service:ConsoleServer._restore:ExportError:not an exported console":
        ("test_console_service.py", "test_restore_refuses_what_is_no_export_and_closes_what_it_got"),
    "lxcframe.console_service:ConsoleServer._restore:ExportError:{} descriptors given":
        ("test_console_service.py", "test_restore_refuses_what_is_no_export_and_closes_what_it_got"),
    f"{CG}.limits:device_rule:ValueError:{{}}: expected '/dev/PATH ACCESS' (e.g. '/dev/null rwm')":
        ("test_cgroups.py", "test_device_rules_that_cannot_be_written_name_their_line"),
    f"{CG}.limits:device_rule:ValueError:{{}}: {{}}":
        ("test_cgroups.py", "test_device_rules_that_cannot_be_written_name_their_line"),
    f"{CG}.limits:device_rule:ValueError:{{}} is not a character or block device":
        ("test_cgroups.py", "test_device_rules_that_cannot_be_written_name_their_line"),
    f"{CG}.limits:_write:OSError:{{}}: {{}} = {{}}: {{}}":
        ("test_cgroups.py", "test_a_limit_the_kernel_refuses_names_its_line"),
    f"{CG}.fs:write:OSError:writing {{}} to {{}}: {{}}":
        ("test_cgroups.py", "test_a_limit_the_kernel_refuses_names_its_line"),
    f"{CG}.delegated:user_bases:PermissionError:no cgroup delegated to uid {{}} in the {{}} hierarchy":
        ("test_nonroot.py", "test_a_users_refusals_are_one_line_naming_why"),
    f"{CG}:lxcframe_act_for:delegated.not_delegated:":
        ("test_nonroot.py", "test_a_users_refusals_are_one_line_naming_why"),
    "lxcframe.plugins.idmap:lxcframe_child_created:OSError:the rootfs {} belongs to uid {}, not to the container":
        ("test_nonroot.py", "test_a_users_refusals_are_one_line_naming_why"),
    f"{CG}.placement:create:FileExistsError:cgroup {{}} exists already (lxc.cgroup.dir.container/monitor name it ex":
        ("test_cgroups.py", "test_fixed_cgroup_names_that_exist_are_refused"),
    f"{CG}.placement:make_cgroup:<re-raise>:": ("test_cgroups.py", "test_fixed_cgroup_names_that_exist_are_refused"),
    **{f"{CG}.{site}": ("test_cgroup2_live_devices.py",
                        "test_a_rule_denied_and_allowed_again_while_it_runs_replaces_the_program") for site in (
        "live_devices:item:ContainerError:cgroup key {}: the file is write-only",
        "live_devices:item:ContainerError:cgroup key {}: the file is read-only",
        "live_devices:item:ContainerError:cgroup key {} = {}: a value is one line of text",
        "live_devices:item:ContainerError:cgroup key {} = {}: {}",
        "device_record:load:ContainerError:{}: malformed device rule record {}: {}")},
    f"{CG}.items:check_key:ContainerError:cgroup key {{}}: {{}}":
        ("test_cgroup_items.py", "test_keys_that_are_paths_or_no_file_are_refused_and_nothing_is_written"),
    f"{CG}.items:_find:ContainerError:cgroup key {{}}: no such file in the container's cgroup ({{}})":
        ("test_cgroup_items.py", "test_keys_that_are_paths_or_no_file_are_refused_and_nothing_is_written"),
    f"{CG}.items:_refuse_mode:ContainerError:cgroup key {{}}: the file is {{}}-only":
        ("test_cgroup_items.py", "test_keys_that_are_paths_or_no_file_are_refused_and_nothing_is_written"),
    f"{CG}.items:write:ContainerError:cgroup key {{}} = {{}}: a value is one line of text":
        ("test_cgroup_items.py", "test_keys_that_are_paths_or_no_file_are_refused_and_nothing_is_written"),
    f"{CG}.items:write:ContainerError:cgroup key {{}} = {{}}: the kernel refused it: {{}} ({{}})":
        ("test_cgroup_items.py", "test_the_cli_verb_prints_sets_and_fails_as_lxc_cgroup"),
    f"{CG}.placement:_attempt:<re-raise>:": ("test_cgroups.py", "test_fixed_cgroup_names_that_exist_are_refused"),
    "lxcframe.plugins.netns.host:_gateway:RuntimeError:lxc.net.{}.ipv{}.gateway = auto: {} has no global IPv{} add":
        ("test_netns.py", "test_veth_on_a_bridge_and_auto_gateway_without_an_address"),
    "lxcframe.plugins.netns.inspect:get_ips:ContainerError:family must be 'inet', 'inet6' or None, not {}":
        ("test_netns.py", "test_get_ips_refuses_an_unknown_family"),
    "lxcframe.plugins.netns.host:_lower_device:NetlinkError:{}: this kernel has no {} devices, {}":
        ("test_netns_types.py", "test_vlan_device_inside_with_its_id"),
    "lxcframe.plugins.netns.routing:_require:RuntimeError:{} needs sysctl net.ipv{}.conf.{}.{}=1 ({} is not 1)":
        ("test_netns_types.py", "test_l2proxy_needs_forwarding_on_the_link_and_leaves_nothing"),
    "lxcframe.plugins.netns.iproute:_asking:NetlinkError:":
        ("test_netns.py", "test_a_kernel_refusal_fails_the_start_naming_the_request"),
}


def _test_functions() -> set[str]:
    names: set[str] = set()
    for module in ("test_error_paths.py", "test_error_paths_start.py"):
        tree = ast.parse((Path(__file__).parent / module).read_text(encoding="utf-8"))
        names |= {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    return names


def tables() -> dict[str, str]:
    """Every raise id a test claims, with the test."""
    from tests.test_error_paths_start import COVERED_AT_START

    claimed: dict[str, str] = {}
    for name, cases in (("test_bad_config_line_names_file_line_and_key", BAD_LINES),
                        ("test_config_problem_names_file_line_and_key", PROBLEMS)):
        for case in cases:
            claimed[case.site] = name
    for site, (module, test) in ELSEWHERE.items():
        tree = ast.parse((Path(__file__).parent / module).read_text(encoding="utf-8"))
        assert test in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}, (module, test)
        claimed[site] = test
    for table in (COVERED_HERE, COVERED_AT_START):
        for site, test in table.items():
            assert site not in claimed, f"{site} is in two tables"
            claimed[site] = test
    return claimed


def test_every_raise_has_a_test_or_a_reason() -> None:
    sites = raise_sites()
    claimed: dict[str, str] = {}
    unresolved = []
    for key, test in [*tables().items(), *((key, "") for key in ALLOWED)]:
        site = resolve(key)
        if site is None:
            unresolved.append(key)
            continue
        assert site.id not in claimed, f"{site.id} is in the tables twice"
        claimed[site.id] = test
    assert not unresolved, "table entries naming no single raise (reworded or removed?):\n" + "\n".join(
        f"  {key}" for key in unresolved)
    missing = [site for site in sites.values() if site.id not in claimed]
    assert not missing, ("raises without a test in tests/test_error_paths*.py (add a case, or a reason to ALLOWED):\n"
                         + "\n".join(f"  {site.id}  ({site.path}:{site.line})" for site in missing))
    tests = _test_functions() | {test for _, test in ELSEWHERE.values()}
    assert not {test for test in claimed.values() if test and test not in tests}, "tables name missing tests"
    assert all(reason.strip() for reason in ALLOWED.values())


def test_the_walker_sees_what_it_should() -> None:
    """The enumeration itself: ids are stable names, duplicates numbered, messages read through f-strings."""
    sites = raise_sites()
    assert len(sites) > 140
    assert f"{K}:uint:ValueError:expected an unsigned integer#2" in sites
    gateway = resolve(f"{NET}:_gateway.validate:ValueError:expected an IPv{{}} address")
    assert gateway is not None and gateway.template.endswith("or 'dev' (a device route)")
    # A prefix two raises share names neither; an empty message names only the raise without one.
    assert resolve(f"{NET}:inet4:ValueError:") is None and resolve(f"{NET}:inet4:ValueError:{{}} is") is not None
    assert resolve(f"{K}:uint:ValueError:expected an unsigned integer#3") is None
    stage = resolve("lxcframe.plugins.sysctl:lxcframe_pre_start:StageError:{}{}: the container shares")
    assert stage is not None and stage.template.endswith("namespace, so this would change the host")
    assert stage.pattern().search("c:3: lxc.sysctl.net.x: the container shares the host's network namespace, "
                                  "so this would change the host")
    assert not stage.pattern().search("the container shares the host's namespace")
