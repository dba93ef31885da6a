"""What this host offers AppArmor, read on demand (never at import) from injectable roots.

:class:`HostPaths` names the sysfs root, the proc root and the parser, so that tests (and ``check``
on an unusual host) can point detection at a faked tree. Every fact keeps the reason it was decided
on, for ``lxcframe check``.
"""

from __future__ import annotations

import os
import re
import shutil

import attrs

from lxcframe import syscalls

_ENABLED = "module/apparmor/parameters/enabled"
_FEATURES = "kernel/security/apparmor/features"
_MOUNT_MASK = f"{_FEATURES}/mount/mask"
_STACK = f"{_FEATURES}/domain/stack"
_DOMAIN_VERSION = f"{_FEATURES}/domain/version"
_NS_STACKED = "kernel/security/apparmor/.ns_stacked"
#: Policy namespaces and stacking arrived with version 1.2 of the domain interface.
_STACK_MIN_VERSION = (1, 2)
#: The uid map of a process in the initial user namespace.
_INITIAL_UID_MAP = ("0", "0", "4294967295")


@attrs.frozen
class HostPaths:
    """Where detection looks: ``/sys``, ``/proc`` and ``apparmor_parser`` unless told otherwise."""

    sysfs: str = "/sys"
    proc: str = "/proc"
    #: The parser to run; ``None`` searches PATH and the sbin directories.
    parser: str | None = None

    def sys(self, relative: str) -> str:
        return os.path.join(self.sysfs, relative)

    def procfs(self, relative: str) -> str:
        return os.path.join(self.proc, relative)

    def parser_path(self) -> str | None:
        if self.parser is not None:
            return self.parser
        # Non-login root shells often lack the sbin directories in PATH.
        search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
        return shutil.which("apparmor_parser", path=search)


@attrs.frozen
class Fact:
    value: bool
    why: str


@attrs.frozen
class KernelFacts:
    """The kernel's AppArmor, as LXC's driver decides it at start."""

    enabled: Fact
    mount_mediation: Fact
    can_stack: Fact
    stacked: Fact
    cgroupns: Fact
    host_unprivileged: Fact
    mac_admin: Fact

    @property
    def policy_namespace(self) -> bool:
        """The container gets a policy namespace of its own (and a label stacked onto it)."""
        return self.can_stack.value and not self.stacked.value

    @property
    def admin(self) -> bool:
        """May unload profiles at stop: an unprivileged runtime can only where its AppArmor is stacked."""
        return self.mac_admin.value and not (self.host_unprivileged.value and not self.stacked.value)


@attrs.frozen
class ParserInfo:
    path: str | None
    version: tuple[int, int, int] | None
    why: str

    @property
    def available(self) -> bool:
        return self.version is not None

    @property
    def supports_unix(self) -> bool:
        # unix rules were added to the policy language in parser 2.10.95.
        return self.version is not None and self.version >= (2, 10, 95)


def _read(path: str, size: int = 4096) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read(size)


def _enabled(paths: HostPaths) -> Fact:
    path = paths.sys(_ENABLED)
    try:
        text = _read(path, 16)
    except FileNotFoundError:
        return Fact(False, f"kernel: AppArmor not enabled ({path} missing)")
    except OSError as err:
        return Fact(False, f"kernel: AppArmor state unknown ({path}: {err.strerror})")
    if text.startswith("Y"):
        return Fact(True, f"kernel: AppArmor enabled ({path} = {text.strip()})")
    return Fact(False, f"kernel: AppArmor disabled ({path} = {text.strip() or 'empty'})")


def _exists(path: str, meaning: str) -> Fact:
    if os.path.exists(path):
        return Fact(True, f"{meaning} ({path} exists)")
    return Fact(False, f"no {meaning} ({path} missing)")


def _is_yes(path: str) -> bool | None:
    try:
        return _read(path, 8).startswith("yes\n")
    except OSError:
        return None


def _can_stack(paths: HostPaths) -> Fact:
    stack = paths.sys(_STACK)
    answer = _is_yes(stack)
    if answer is None:
        return Fact(False, f"no stacking ({stack} missing)")
    if not answer:
        return Fact(False, f"no stacking ({stack} is not 'yes')")
    version_path = paths.sys(_DOMAIN_VERSION)
    try:
        found = re.match(r"\s*(\d+)\.(\d+)", _read(version_path, 32))
    except OSError as err:
        return Fact(False, f"no stacking ({version_path}: {err.strerror})")
    if found is None:
        return Fact(False, f"no stacking ({version_path} unreadable)")
    version = (int(found.group(1)), int(found.group(2)))
    shown = f"{version[0]}.{version[1]}"
    if version < _STACK_MIN_VERSION:
        return Fact(False, f"no stacking (domain version {shown} < 1.2)")
    return Fact(True, f"stacking (domain stack = yes, version {shown})")


def _stacked(paths: HostPaths) -> Fact:
    path = paths.sys(_NS_STACKED)
    if _is_yes(path):
        return Fact(True, f"already stacked ({path} = yes): this runtime is itself in a policy namespace")
    return Fact(False, f"not stacked ({path} missing or not 'yes')")


def _host_unprivileged(paths: HostPaths) -> Fact:
    if os.geteuid() != 0:
        return Fact(True, f"unprivileged runtime (euid {os.geteuid()})")
    path = paths.procfs("self/uid_map")
    try:
        first = _read(path).splitlines()[:1]
    except OSError:
        return Fact(False, f"privileged runtime (euid 0; {path} unreadable)")
    if first and tuple(first[0].split()) != _INITIAL_UID_MAP:
        return Fact(True, f"unprivileged runtime (in a user namespace: {' '.join(first[0].split())})")
    return Fact(False, "privileged runtime (euid 0, initial user namespace)")


def _mac_admin(paths: HostPaths) -> Fact:
    # LXC 3.1 tests CAP_SETGID here, evidently meaning CAP_MAC_ADMIN: unloading policy needs the latter.
    path = paths.procfs("self/status")
    try:
        found = re.search(r"^CapEff:\s*([0-9a-fA-F]+)", _read(path, 65536), re.MULTILINE)
    except OSError as err:
        return Fact(False, f"CAP_MAC_ADMIN unknown ({path}: {err.strerror})")
    if found and int(found.group(1), 16) >> syscalls.cap_number("mac_admin") & 1:
        return Fact(True, "CAP_MAC_ADMIN effective")
    return Fact(False, "no CAP_MAC_ADMIN: generated profiles stay loaded after stop")


def detect_kernel(paths: HostPaths) -> KernelFacts:
    return KernelFacts(
        enabled=_enabled(paths),
        mount_mediation=_exists(paths.sys(_MOUNT_MASK), "mount mediation"),
        can_stack=_can_stack(paths),
        stacked=_stacked(paths),
        cgroupns=_exists(paths.procfs("self/ns/cgroup"), "cgroup namespaces"),
        host_unprivileged=_host_unprivileged(paths),
        mac_admin=_mac_admin(paths),
    )


def parse_parser_version(text: str) -> tuple[int, int, int] | None:
    found = re.search(r"AppArmor parser version (\d+)(?:\.(\d+))?(?:\.(\d+))?", text)
    if found is None:
        return None
    return (int(found.group(1)), int(found.group(2) or 0), int(found.group(3) or 0))


def detect_parser(paths: HostPaths) -> ParserInfo:
    from lxcframe.plugins.apparmor.parser import ParserError, run_version

    path = paths.parser_path()
    if path is None:
        return ParserInfo(None, None, "apparmor_parser not found (PATH, /usr/sbin, /sbin)")
    try:
        output = run_version(path)
    except ParserError as err:
        return ParserInfo(path, None, f"{path} --version failed: {err}")
    version = parse_parser_version(output)
    if version is None:
        return ParserInfo(path, None, f"{path} --version: no 'AppArmor parser version' in its output")
    shown = ".".join(map(str, version))
    unix = "with" if version >= (2, 10, 95) else "without"
    return ParserInfo(path, version, f"{path}, version {shown} ({unix} unix rules)")
