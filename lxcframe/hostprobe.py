"""Facts about the host kernel and userspace, for ``lxcframe check``.

Every probe returns a :class:`Probe` and never raises: a check command must
report everything it can, so any failure is turned into ``supported=False``
with the reason in ``detail``.

pyroute2 is deliberately not used here (importing it costs ~130 ms, a lot for
a quick diagnostic); the one netlink request needed is packed by hand.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
import struct
import subprocess

import attrs

from lxcframe import syscalls
from lxcframe.probe import Probe, never_raises
from lxcframe.probe import describe as _describe
from lxcframe.probe import read_text as _read_text

# Kept as module attributes so that tests can point them elsewhere.
_PROC_NS_DIR = "/proc/self/ns"
_PROC_MOUNTINFO = "/proc/self/mountinfo"
_PROC_STATUS = "/proc/self/status"
_MAX_USER_NAMESPACES = "/proc/sys/user/max_user_namespaces"
_SECCOMP_ACTIONS = "/proc/sys/kernel/seccomp/actions_avail"
_APPARMOR_ENABLED = "/sys/module/apparmor/parameters/enabled"

NAMESPACES: tuple[str, ...] = ("mnt", "uts", "ipc", "user", "pid", "net", "cgroup", "time")


# --------------------------------------------------------------------------
# Namespaces
# --------------------------------------------------------------------------


def namespace_probe(ns: str) -> Probe:
    """Whether namespace type ``ns`` (a name from :data:`NAMESPACES`) exists."""
    name = f"namespace:{ns}"
    try:
        link = os.readlink(os.path.join(_PROC_NS_DIR, ns))
    except FileNotFoundError:
        return Probe(name, False, f"{_PROC_NS_DIR}/{ns} missing: kernel built without it")
    except Exception as exc:
        return Probe(name, False, f"cannot read {_PROC_NS_DIR}/{ns}: {_describe(exc)}")
    if ns != "user":
        return Probe(name, True, f"{_PROC_NS_DIR}/{ns} -> {link}")
    # User namespaces can be compiled in yet disabled by this sysctl.
    try:
        limit = int(_read_text(_MAX_USER_NAMESPACES).strip())
    except Exception as exc:
        return Probe(name, False, f"{link}, but cannot read {_MAX_USER_NAMESPACES}: {_describe(exc)}")
    if limit <= 0:
        return Probe(name, False, f"{link}, but disabled: {_MAX_USER_NAMESPACES} = {limit}")
    return Probe(name, True, f"{_PROC_NS_DIR}/{ns} -> {link}; max_user_namespaces = {limit}")


def namespace_probes() -> list[Probe]:
    """One probe per namespace type."""
    return [namespace_probe(ns) for ns in NAMESPACES]


# --------------------------------------------------------------------------
# cgroups
# --------------------------------------------------------------------------

# Mount options of cgroup v1 that are not controllers (see cgroup1_parse_param).
_V1_NON_CONTROLLER_OPTIONS = frozenset(
    {"rw", "ro", "none", "all", "noprefix", "clone_children", "cpuset_v2_mode", "xattr", "favordynmods"}
)


@attrs.frozen
class CgroupLayout:
    """How cgroups are mounted in the current mount namespace.

    ``mode`` is "unified" (cgroup2 only, or cgroup2 on /sys/fs/cgroup),
    "hybrid" (v1 hierarchies plus a cgroup2 mount), "legacy" (v1 only) or
    "none".
    """

    mode: str
    v1_controllers: tuple[str, ...] = ()
    v1_named: tuple[str, ...] = ()
    v1_mounts: tuple[str, ...] = ()
    unified_mount: str | None = None
    unified_controllers: tuple[str, ...] = ()


def _unescape_mountinfo(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_cgroup_layout(mountinfo: str) -> CgroupLayout:
    """Classify the cgroup mounts listed in a /proc/<pid>/mountinfo text.

    ``unified_controllers`` is left empty: reading it needs the filesystem
    (see :func:`cgroup_layout`).
    """
    controllers: list[str] = []
    named: list[str] = []
    v1_mounts: list[str] = []
    v2_mounts: list[str] = []
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        try:
            # Optional fields (shared:N ...) vary in number; " - " ends them.
            sep = fields.index("-", 6)
            mount_point = _unescape_mountinfo(fields[4])
            fstype = fields[sep + 1]
            super_options = fields[sep + 3]
        except (ValueError, IndexError):
            continue
        if fstype == "cgroup2":
            v2_mounts.append(mount_point)
        elif fstype == "cgroup":
            v1_mounts.append(mount_point)
            for option in super_options.split(","):
                if option.startswith("name="):
                    if option[5:] not in named:
                        named.append(option[5:])
                elif "=" in option or option in _V1_NON_CONTROLLER_OPTIONS:
                    continue
                elif option not in controllers:
                    controllers.append(option)

    unified_mount: str | None = None
    for candidate in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if candidate in v2_mounts:
            unified_mount = candidate
            break
    else:
        if v2_mounts:
            unified_mount = v2_mounts[0]

    if unified_mount == "/sys/fs/cgroup":
        mode = "unified"
    elif v1_mounts and v2_mounts:
        mode = "hybrid"
    elif v1_mounts:
        mode = "legacy"
    elif v2_mounts:
        mode = "unified"
    else:
        mode = "none"
    return CgroupLayout(
        mode=mode,
        v1_controllers=tuple(controllers),
        v1_named=tuple(named),
        v1_mounts=tuple(v1_mounts),
        unified_mount=unified_mount,
    )


def cgroup_layout() -> CgroupLayout:
    """The cgroup layout of the current mount namespace (may raise OSError)."""
    layout = parse_cgroup_layout(_read_text(_PROC_MOUNTINFO))
    if layout.unified_mount is None:
        return layout
    try:
        text = _read_text(os.path.join(layout.unified_mount, "cgroup.controllers"))
    except OSError:
        return layout
    return attrs.evolve(layout, unified_controllers=tuple(text.split()))


@never_raises("cgroup")
def probe_cgroups() -> Probe:
    """cgroup layout: unified, hybrid or legacy, with controllers."""
    layout = cgroup_layout()
    if layout.mode == "none":
        return Probe("cgroup", False, "none: no cgroup or cgroup2 filesystem mounted")
    parts = [layout.mode]
    if layout.v1_mounts:
        v1 = f"v1 controllers: {','.join(layout.v1_controllers) or '(none)'}"
        if layout.v1_named:
            v1 += f"; v1 named hierarchies: {','.join(layout.v1_named)}"
        parts.append(v1)
    if layout.unified_mount is not None:
        parts.append(
            f"cgroup2 at {layout.unified_mount} "
            f"(controllers: {' '.join(layout.unified_controllers) or '(none)'})"
        )
    return Probe("cgroup", True, "; ".join(parts))


# --------------------------------------------------------------------------
# LSMs and seccomp
# --------------------------------------------------------------------------


@never_raises("seccomp")
def probe_seccomp() -> Probe:
    """Kernel seccomp support and a loadable libseccomp."""
    status = _read_text(_PROC_STATUS)
    match = re.search(r"^Seccomp:\s*(\d+)", status, re.MULTILINE)
    library = syscalls.libseccomp_available()
    if match is None:
        kernel = "kernel: no Seccomp line in /proc/self/status (CONFIG_SECCOMP off)"
    else:
        mode = {"0": "disabled", "1": "strict", "2": "filter"}.get(match.group(1), match.group(1))
        kernel = f"kernel: yes (this process: {mode})"
        # Older kernels lack the actions file; not worth failing over.
        with contextlib.suppress(OSError):
            kernel += f"; actions: {_read_text(_SECCOMP_ACTIONS).strip()}"
    lib = f"libseccomp: {library}" if library else "libseccomp: libseccomp.so.2 not found or not loadable"
    return Probe("seccomp", match is not None and library is not None, f"{kernel}; {lib}")


def _find_apparmor_parser() -> str | None:
    # Non-login root shells often lack the sbin directories in PATH.
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which("apparmor_parser", path=search)


@never_raises("apparmor")
def probe_apparmor() -> Probe:
    """AppArmor enabled in the kernel and apparmor_parser installed."""
    try:
        enabled = _read_text(_APPARMOR_ENABLED).strip()
    except FileNotFoundError:
        kernel_ok, kernel = False, f"kernel: not enabled ({_APPARMOR_ENABLED} missing)"
    else:
        kernel_ok = enabled.startswith("Y")
        kernel = f"kernel: {'enabled' if kernel_ok else 'disabled'} ({_APPARMOR_ENABLED} = {enabled})"

    parser = _find_apparmor_parser()
    if parser is None:
        return Probe("apparmor", False, f"{kernel}; apparmor_parser: not found")
    try:
        result = subprocess.run(
            [parser, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Probe("apparmor", False, f"{kernel}; apparmor_parser at {parser} failed: {_describe(exc)}")
    found = re.search(r"version\s+(\S+)", result.stdout + result.stderr)
    version = found.group(1) if found else f"version unknown, exit status {result.returncode}"
    return Probe("apparmor", kernel_ok, f"{kernel}; apparmor_parser: {parser} ({version})")


# --------------------------------------------------------------------------
# Keyrings and netlink
# --------------------------------------------------------------------------


@never_raises("keyrings")
def probe_keyrings() -> Probe:
    """Session keyrings (each container gets its own)."""
    serial = syscalls.session_keyring_id()
    return Probe("keyrings", True, f"keyctl works; current session keyring serial {serial}")


_SOL_NETLINK = 270
_NETLINK_GET_STRICT_CHK = 12


@never_raises("netlink_strict_chk")
def probe_netlink_strict_chk() -> Probe:
    """NETLINK_GET_STRICT_CHK (kernel-side filtering of dump requests)."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        try:
            sock.setsockopt(_SOL_NETLINK, _NETLINK_GET_STRICT_CHK, 1)
        except OSError as exc:
            return Probe("netlink_strict_chk", False, f"setsockopt(NETLINK_GET_STRICT_CHK): {exc}")
    return Probe("netlink_strict_chk", True, "setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1) accepted")


_NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_NLMSG_ERROR = 2
_NLM_F_REQUEST = 1
_RTM_NEWNSID = 88
_RTM_GETNSID = 90
_NETNSA_NSID = 1
_NETNSA_FD = 3


def _parse_nsid(payload: bytes) -> int | None:
    """NETNSA_NSID from an RTM_NEWNSID payload (after the nlmsghdr)."""
    offset = 4  # struct rtgenmsg, padded to 4 bytes
    while offset + 4 <= len(payload):
        length, kind = struct.unpack_from("=HH", payload, offset)
        if length < 4:
            break
        if kind == _NETNSA_NSID and length >= 8:
            value: int = struct.unpack_from("=i", payload, offset + 4)[0]
            return value
        offset += (length + 3) & ~3
    return None


@never_raises("netns_id")
def probe_netns_id() -> Probe:
    """Network namespace ids: send a real RTM_GETNSID for our own netns."""
    ns_fd = os.open(os.path.join(_PROC_NS_DIR, "net"), os.O_RDONLY | os.O_CLOEXEC)
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
            sock.settimeout(5)
            sock.bind((0, 0))
            body = struct.pack("=B3x", socket.AF_UNSPEC) + struct.pack("=HHI", 8, _NETNSA_FD, ns_fd)
            seq = 1
            sock.send(
                _NLMSG_HDR.pack(_NLMSG_HDR.size + len(body), _RTM_GETNSID, _NLM_F_REQUEST, seq, 0) + body
            )
            reply = sock.recv(65536)
    finally:
        os.close(ns_fd)
    if len(reply) < _NLMSG_HDR.size:
        return Probe("netns_id", False, "RTM_GETNSID: short netlink reply")
    length, kind, _flags, _seq, _pid = _NLMSG_HDR.unpack_from(reply)
    payload = reply[_NLMSG_HDR.size : length]
    if kind == _NLMSG_ERROR:
        code = -struct.unpack_from("=i", payload)[0] if len(payload) >= 4 else errno.EIO
        return Probe("netns_id", False, f"RTM_GETNSID refused: {os.strerror(code)}")
    if kind != _RTM_NEWNSID:
        return Probe("netns_id", False, f"RTM_GETNSID: unexpected reply type {kind}")
    nsid = _parse_nsid(payload)
    shown = "not assigned" if nsid is None or nsid < 0 else str(nsid)
    return Probe("netns_id", True, f"RTM_GETNSID works (id of own netns: {shown})")


# --------------------------------------------------------------------------
# Syscalls
# --------------------------------------------------------------------------


def _syscalls_probe(name: str, names: tuple[str, ...], purpose: str) -> Probe:
    try:
        missing = [call for call in names if not syscalls.syscall_supported(call)]
    except Exception as exc:
        return Probe(name, False, f"probe failed: {_describe(exc)}")
    if missing:
        return Probe(name, False, f"missing: {', '.join(missing)} ({purpose})")
    return Probe(name, True, f"{', '.join(names)} available ({purpose})")


def probe_open_tree() -> Probe:
    """open_tree/move_mount: detached bind mounts (new mount API)."""
    return _syscalls_probe(
        "open_tree/move_mount", ("open_tree", "move_mount"), "detached mount trees, kernel >= 5.2"
    )


def probe_idmapped_mounts() -> Probe:
    """mount_setattr, the entry point to idmapped mounts."""
    return _syscalls_probe(
        "mount_setattr",
        ("mount_setattr",),
        "idmapped mounts, kernel >= 5.12; each filesystem must support idmapping too",
    )


def probe_openat2() -> Probe:
    """openat2: symlink-safe rootfs path resolution."""
    return _syscalls_probe("openat2", ("openat2",), "RESOLVE_IN_ROOT lookups, kernel >= 5.6")


def probe_pidfd() -> Probe:
    """pidfd_open/pidfd_send_signal: race-free process handles."""
    return _syscalls_probe(
        "pidfd", ("pidfd_open", "pidfd_send_signal"), "race-free signalling, kernel >= 5.3"
    )


def probe_execveat() -> Probe:
    """execveat: executing an already opened binary."""
    return _syscalls_probe("execveat", ("execveat",), "exec by fd, kernel >= 3.19")


def probe_clone3() -> Probe:
    """clone3: extensible process creation."""
    return _syscalls_probe("clone3", ("clone3",), "clone into cgroup / with pidfd, kernel >= 5.3")


def all_probes() -> list[Probe]:
    """Every probe, in display order."""
    probes = namespace_probes()
    for probe in (
        probe_cgroups,
        probe_seccomp,
        probe_apparmor,
        probe_keyrings,
        probe_netlink_strict_chk,
        probe_netns_id,
        probe_open_tree,
        probe_idmapped_mounts,
        probe_openat2,
        probe_pidfd,
        probe_execveat,
        probe_clone3,
    ):
        probes.append(probe())
    return probes
