"""``linux`` of a bundle: namespaces, id maps, time offsets, device nodes, sysctl, masked and read-only
paths, personality; ``resources``/``cgroupsPath`` and ``seccomp`` are left to their own modules."""

from __future__ import annotations

import contextlib
import os
import stat
from typing import Any

from lxcframe.oci.bundle_cgroups import translate as translate_cgroups
from lxcframe.oci.bundle_fields import Translation
from lxcframe.oci.bundle_mounts import escape, mount_entry
from lxcframe.oci.bundle_seccomp import translate as translate_seccomp

#: runtime-spec namespace types and LXC's names for them.
NAMESPACES = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts", "user": "user",
              "cgroup": "cgroup", "time": "time"}
KNOWN_LINUX = ("namespaces", "uidMappings", "gidMappings", "timeOffsets", "devices", "cgroupsPath", "resources",
               "sysctl", "seccomp", "maskedPaths", "readonlyPaths", "rootfsPropagation", "mountLabel",
               "personality")
#: rootfsPropagation values the container's mounts match: lxcframe makes / a recursive slave, so
#: nothing mounted inside reaches the host (runc's default rprivate keeps the host's mounts out too).
PROPAGATIONS = ("", "slave", "rslave", "private", "rprivate")
#: Where a read-only path may lie: on the filesystems the runtime mounted itself, where the bind's
#: source (resolved from outside the container) cannot be a symlink of the rootfs pointing at the host.
READONLY_UNDER = ("/proc/", "/sys/")


def namespaces(out: Translation, linux: dict[str, Any]) -> None:
    """``linux.namespaces``: ``lxc.namespace.clone`` for the new ones, ``lxc.namespace.share.NS`` for those
    joined by path (a pid for ``/proc/PID/ns/NS``, else the file). A type not listed is the runtime's, as
    the spec says."""
    field = "linux.namespaces"
    cloned: list[str] = []
    for at, entry in out.objects(linux, "namespaces", "linux"):
        kind = out.string(entry, "type", at)
        if kind is None:
            if "type" not in entry:
                out.fail(f"{at}.type", "required")
            continue
        name = NAMESPACES.get(kind)
        if name is None:
            out.fail(f"{at}.type", f"{kind!r}: expected one of {', '.join(NAMESPACES)}")
            continue
        if name in cloned or out.values_of(f"lxc.namespace.share.{name}"):
            out.fail(f"{at}.type", f"{kind!r}: listed twice")
            continue
        path = out.string(entry, "path", at)
        out.refuse_unknown(entry, at, ("type", "path"))
        if not path:
            cloned.append(name)
            continue
        if not path.startswith("/"):
            out.fail(f"{at}.path", f"{path!r}: a namespace file's path must be absolute")
            continue
        # /proc/PID/ns/NS by its pid, proven alive while its namespace is opened; any other file as it is
        # (a namespace bound elsewhere, as CNI and containerd's CRI keep a pod's network namespace).
        out.add(f"lxc.namespace.share.{name}", _proc_ns_pid(path, name) or path, f"{at}.path")
    for required, kind, why in (("mnt", "mount", "the rootfs is mounted in a mount namespace of the container's"),
                                ("pid", "pid", "the container's process is pid 1 of a pid namespace of its own")):
        if required not in cloned:
            out.fail(field, f"a new {kind} namespace is required: {why}")
    out.new_namespaces = set(cloned)
    if cloned:
        out.add("lxc.namespace.clone", " ".join(cloned), field)


def _proc_ns_pid(path: str, name: str) -> str | None:
    """The pid of a ``/proc/PID/ns/NAME`` path (``None`` for any other path)."""
    parts = path.split("/")
    if len(parts) == 5 and parts[:2] == ["", "proc"] and parts[2].isdigit() and parts[3] == "ns" \
            and parts[4] == name:
        return parts[2]
    return None


def translate(out: Translation, linux: dict[str, Any]) -> None:
    """Everything of ``linux`` but the namespaces (read first: the others depend on them)."""
    _idmaps(out, linux)
    _time_offsets(out, linux)
    _devices(out, linux)
    translate_cgroups(out, linux)
    for at, value in _string_map(out, linux, "sysctl"):
        out.add(f"lxc.sysctl.{at.removeprefix('linux.sysctl.')}", value, at)
    translate_seccomp(out, linux)
    _masked(out, linux)
    _readonly(out, linux)
    propagation = out.string(linux, "rootfsPropagation", "linux")
    if propagation is not None and propagation not in PROPAGATIONS:
        out.fail("linux.rootfsPropagation", f"{propagation!r}: not supported (the container's mounts are a "
                 "recursive slave of the host's: expected rslave, slave, rprivate or private)")
    out.refuse_present(linux, "mountLabel", "linux", "not supported: lxcframe has no SELinux support")
    _personality(out, linux)
    out.refuse_unknown(linux, "linux", KNOWN_LINUX)


def _string_map(out: Translation, parent: dict[str, Any], name: str) -> list[tuple[str, str]]:
    found = []
    for key, value in out.obj(parent, name, "linux").items():
        at = f"linux.{name}.{key}"
        if isinstance(value, str):
            found.append((at, value))
        else:
            out.fail(at, "expected a string")
    return found


def _idmaps(out: Translation, linux: dict[str, Any]) -> None:
    for name, kind in (("uidMappings", "u"), ("gidMappings", "g")):
        for at, item in out.objects(linux, name, "linux"):
            numbers = [out.uint(item, part, at) for part in ("containerID", "hostID", "size")]
            out.refuse_unknown(item, at, ("containerID", "hostID", "size"))
            if None in numbers:
                for part in ("containerID", "hostID", "size"):
                    if part not in item:
                        out.fail(f"{at}.{part}", "required")
                continue
            out.add("lxc.idmap", f"{kind} {numbers[0]} {numbers[1]} {numbers[2]}", at)
    mapped = bool(linux.get("uidMappings") or linux.get("gidMappings"))
    if mapped and "user" not in out.new_namespaces:
        out.fail("linux.uidMappings", "id maps need a new user namespace (linux.namespaces has no 'user')")


def _time_offsets(out: Translation, linux: dict[str, Any]) -> None:
    offsets = out.obj(linux, "timeOffsets", "linux")
    for clock, key in (("monotonic", "lxc.time.offset.monotonic"), ("boottime", "lxc.time.offset.boot")):
        at = f"linux.timeOffsets.{clock}"
        offset = out.obj(offsets, clock, "linux.timeOffsets")
        if not offset:
            continue
        secs = out.integer(offset, "secs", at) or 0
        nanos = out.uint(offset, "nanosecs", at) or 0
        out.refuse_unknown(offset, at, ("secs", "nanosecs"))
        out.add(key, f"{secs * 10**9 + nanos}ns", at)
    out.refuse_unknown(offsets, "linux.timeOffsets", ("monotonic", "boottime"))
    if offsets and "time" not in out.new_namespaces:
        out.fail("linux.timeOffsets", "needs a new time namespace (linux.namespaces has no 'time')")


_DEVICE_KINDS = {"c": stat.S_ISCHR, "u": stat.S_ISCHR, "b": stat.S_ISBLK, "p": stat.S_ISFIFO}


def _devices(out: Translation, linux: dict[str, Any]) -> None:
    """``linux.devices``: the host's node of the same number is bound into the container's /dev (as runc
    does in a user namespace); its mode and owner must be the ones asked for, since a bind keeps them."""
    for at, device in out.objects(linux, "devices", "linux"):
        path = out.string(device, "path", at)
        kind = out.string(device, "type", at)
        major = out.integer(device, "major", at, 0, 2**32 - 1)
        minor = out.integer(device, "minor", at, 0, 2**32 - 1)
        mode = out.uint(device, "fileMode", at)
        uid, gid = out.uint(device, "uid", at), out.uint(device, "gid", at)
        out.refuse_unknown(device, at, ("path", "type", "major", "minor", "fileMode", "uid", "gid"))
        if not path or not path.startswith("/dev/"):
            out.fail(f"{at}.path", "required: a path below /dev")
            continue
        if kind not in _DEVICE_KINDS:
            out.fail(f"{at}.type", "required: one of c, b, u, p")
            continue
        if kind != "p" and (major is None or minor is None):
            out.fail(at, "major and minor are required for a c, b or u device")
            continue
        host = _host_node(path, kind, major or 0, minor or 0)
        if host is None:
            out.fail(at, f"no host node of type {kind} {major}:{minor} to bind at {path} (lxcframe binds the "
                     "host's device nodes)")
            continue
        info = os.stat(host)
        wanted = {"fileMode": (mode, stat.S_IMODE(info.st_mode)), "uid": (uid, info.st_uid),
                  "gid": (gid, info.st_gid)}
        for name, (asked, has) in wanted.items():
            if asked is not None and asked != has:
                out.fail(f"{at}.{name}", f"{asked:o}: the host node {host} has {has:o}, which its bind keeps"
                         if name == "fileMode" else f"{asked}: the host node {host} has {has}, which its bind keeps")
        out.add("lxc.mount.entry", mount_entry(host, path, "none", "bind,create=file"), at)


def _host_node(path: str, kind: str, major: int, minor: int) -> str | None:
    """The host's node for the device: at ``path`` itself, else one of /dev/char, /dev/block or /dev with
    that number."""
    test = _DEVICE_KINDS[kind]
    candidates = [path]
    if kind != "p":
        candidates.append(f"/dev/char/{major}:{minor}" if kind in "cu" else f"/dev/block/{major}:{minor}")
        with contextlib.suppress(OSError), os.scandir("/dev") as found:
            candidates.extend(sorted(entry.path for entry in found))
    for candidate in candidates:
        try:
            info = os.stat(candidate)
        except OSError:
            continue
        if test(info.st_mode) and (kind == "p" or (os.major(info.st_rdev), os.minor(info.st_rdev)) == (major, minor)):
            return candidate
    return None


def _masked(out: Translation, linux: dict[str, Any]) -> None:
    """``/dev/null`` over a file, an empty read-only tmpfs over a directory; a path that is not there is
    skipped (``optional``), as runc skips it. Under /proc and /sys the host's tree tells a file from a
    directory (the container's are the same kernel's), elsewhere the rootfs does."""
    for at, path in out.strings(linux, "maskedPaths", "linux"):
        if not path.startswith("/"):
            out.fail(at, f"{path!r}: expected an absolute path")
            continue
        if _is_directory(out, path):
            out.add("lxc.mount.entry", mount_entry("tmpfs", path, "tmpfs", "ro,nosuid,nodev,noexec,optional"), at)
        else:
            out.add("lxc.mount.entry", mount_entry("/dev/null", path, "none", "bind,optional"), at)


def _is_directory(out: Translation, path: str) -> bool:
    if path.startswith(READONLY_UNDER):
        return os.path.isdir(path)
    return os.path.isdir(os.path.join(out.rootfs, path.lstrip("/"))) and not os.path.islink(
        os.path.join(out.rootfs, path.lstrip("/")))


def _readonly(out: Translation, linux: dict[str, Any]) -> None:
    from lxcframe.state import rootfs_mountpoint

    for at, path in out.strings(linux, "readonlyPaths", "linux"):
        clean = os.path.normpath(path)
        if not clean.startswith(READONLY_UNDER) or clean != path.rstrip("/"):
            out.fail(at, f"{path!r}: only paths below /proc and /sys can be made read-only (the bind's source "
                     "is found from outside the container)")
            continue
        # The source is the container's own path, as the child sees it before the pivot.
        source = rootfs_mountpoint().rstrip("/") + clean
        out.add("lxc.mount.entry", f"{escape(source)} {escape(clean.lstrip('/'))} none bind,ro,optional 0 0", at)


#: runtime-spec personality domains and the lxc.arch value that gives each.
PERSONALITIES = {"LINUX": "linux64", "LINUX32": "linux32"}


def _personality(out: Translation, linux: dict[str, Any]) -> None:
    personality = out.obj(linux, "personality", "linux")
    if not personality:
        return
    domain = out.string(personality, "domain", "linux.personality")
    if domain not in PERSONALITIES:
        out.fail("linux.personality.domain", f"{domain!r}: expected LINUX or LINUX32")
    else:
        out.add("lxc.arch", PERSONALITIES[domain], "linux.personality.domain")
    out.refuse_present(personality, "flags", "linux.personality", "not supported: lxc.arch sets the domain only")
    out.refuse_unknown(personality, "linux.personality", ("domain", "flags"))
