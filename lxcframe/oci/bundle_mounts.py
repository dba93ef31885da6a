"""``mounts`` and ``hooks`` of a bundle.

The mounts the runtime-spec's defaults name are the ones lxcframe's plugins make themselves: ``/dev``
(tmpfs) is ``lxc.autodev``, which also makes the default device nodes, ``/dev/pts`` is the devices
plugin's devpts, ``/sys`` a ``sys`` token and ``/sys/fs/cgroup`` a ``cgroup`` token of
``lxc.mount.auto``. Every other mount is an ``lxc.mount.entry``, in order, with ``create=`` making its
target as runc does.

Hooks become no keys: they are checked here and run by lxcframe-oci at the spec's points, with the
state on stdin (:mod:`lxcframe.oci.oci_hooks`).
"""

from __future__ import annotations

import os
from typing import Any

from lxcframe.oci.bundle_fields import Translation, join
from lxcframe.oci.oci_hooks import HOOK_NAMES, BundleHooks, Hook

KNOWN_MOUNT = ("destination", "type", "source", "options")
#: Options the spec (1.1) defines and no plugin applies.
_REFUSED_OPTIONS = {
    "idmap": "idmapped mounts", "ridmap": "idmapped mounts", "tmpcopyup": "copying up into a tmpfs",
    "nosymfollow": "nosymfollow", "symfollow": "symfollow",
}
_RECURSIVE = {"rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec", "rnodiratime", "rdiratime",
              "rrelatime", "rnorelatime", "rnoatime", "ratime", "rstrictatime", "rnostrictatime", "rnosymfollow",
              "rsymfollow"}
#: Propagation a fresh mount of the container may ask for: nothing mounted inside reaches the host anyway.
_PROPAGATION = {"private", "rprivate", "slave", "rslave"}
#: Options of the spec's /sys and /sys/fs/cgroup mounts that the lxc.mount.auto tokens give anyway.
_AUTO_OPTIONS = {"nosuid", "noexec", "nodev", "relatime", "ro", "rw", *_PROPAGATION}
#: Options of the spec's /dev/pts mount that the devices plugin's devpts has.
_DEVPTS_OPTIONS = {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "mode=620", "gid=5",
                   *_PROPAGATION}
#: Options of the spec's /dev tmpfs that autodev's has (its size aside).
_DEV_OPTIONS = {"nosuid", "strictatime", "mode=755", "mode=0755", "noexec", *_PROPAGATION}


def escape(field: str) -> str:
    """A field of an fstab line: blanks and backslashes as octal escapes, as the reader undoes them."""
    return "".join(f"\\{ord(ch):03o}" if ch in " \t\n\\" else ch for ch in field)


def mount_entry(source: str, target: str, fstype: str, options: str) -> str:
    """An ``lxc.mount.entry`` value; the target is taken inside the rootfs."""
    return f"{escape(source)} {escape(target.lstrip('/') or '.')} {escape(fstype)} {escape(options)} 0 0"


def mounts(out: Translation, data: dict[str, Any]) -> None:
    for at, mount in out.objects(data, "mounts", ""):
        destination = out.string(mount, "destination", at)
        fstype = out.string(mount, "type", at) or ""
        source = out.string(mount, "source", at) or ""
        options = [option for _, option in out.strings(mount, "options", at)]
        out.refuse_present(mount, "uidMappings", at, "not supported: idmapped mounts")
        out.refuse_present(mount, "gidMappings", at, "not supported: idmapped mounts")
        out.refuse_unknown(mount, at, (*KNOWN_MOUNT, "uidMappings", "gidMappings"))
        if not destination:
            out.fail(join(at, "destination"), "required")
            continue
        # runc takes a relative destination from the container's /.
        target = os.path.normpath("/" + destination.lstrip("/"))
        if _refused(out, at, options):
            continue
        if not _made_by_plugins(out, at, target, fstype, options):
            _entry(out, at, target, fstype, source, options)


def _refused(out: Translation, at: str, options: list[str]) -> bool:
    refused = False
    for index, option in enumerate(options):
        if option in _REFUSED_OPTIONS:
            out.fail(f"{at}.options[{index}]", f"{option!r}: not supported ({_REFUSED_OPTIONS[option]})")
            refused = True
        elif option in _RECURSIVE:
            out.fail(f"{at}.options[{index}]", f"{option!r}: recursive mount attributes are not supported")
            refused = True
    return refused


def _made_by_plugins(out: Translation, at: str, target: str, fstype: str, options: list[str]) -> bool:
    """Whether the mount is one a plugin makes (translated here to its key); False for a plain entry."""
    if target == "/sys" and fstype == "sysfs":
        _only(out, at, options, _AUTO_OPTIONS)
        out.add("lxc.mount.auto", "sys:ro" if "ro" in options else "sys:rw", at)
        return True
    if target == "/sys/fs/cgroup" and fstype in ("cgroup", "cgroup2"):
        _only(out, at, options, _AUTO_OPTIONS)
        # force: the runtime mounts it whatever capabilities the container keeps, as the spec asks.
        out.add("lxc.mount.auto", f"cgroup:{'ro' if 'ro' in options else 'rw'}:force", at)
        return True
    if target == "/dev" and fstype == "tmpfs":
        sizes = [option for option in options if option.startswith("size=")]
        _only(out, at, [option for option in options if option not in sizes], _DEV_OPTIONS)
        out.add("lxc.autodev", "1", at)
        if sizes:
            size = _bytes(sizes[-1].removeprefix("size="))
            if size is None:
                out.fail(f"{at}.options", f"{sizes[-1]!r}: expected size=BYTES with an optional k, m or g")
            else:
                out.add("lxc.autodev.tmpfs.size", str(size), at)
        return True
    if target == "/dev/pts" and fstype == "devpts":
        # The devices plugin mounts the container's devpts (and /dev/ptmx) unless lxc.pty.max = 0.
        _only(out, at, options, _DEVPTS_OPTIONS)
        return True
    return False


def _only(out: Translation, at: str, options: list[str], allowed: set[str]) -> None:
    for index, option in enumerate(options):
        if option not in allowed:
            out.fail(f"{at}.options[{index}]", f"{option!r}: not supported on this mount (lxcframe makes it "
                     f"with {', '.join(sorted(allowed))})")


def _bytes(text: str) -> int | None:
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    scale = units.get(text[-1:].lower(), 1)
    digits = text[:-1] if text[-1:].lower() in units else text
    return int(digits) * scale if digits.isascii() and digits.isdigit() else None


def _entry(out: Translation, at: str, target: str, fstype: str, source: str, options: list[str]) -> None:
    bind = fstype == "bind" or "bind" in options or "rbind" in options
    if bind:
        if not source:
            out.fail(join(at, "source"), "required for a bind mount")
            return
        # runtime-spec: a bind's source is absolute or relative to the bundle.
        source = os.path.normpath(os.path.join(out.directory, source))
        words = [option for option in options if option not in ("bind", "rbind")]
        unknown = [option for option in words if not _is_flag(option)]
        for option in unknown:
            out.fail(f"{at}.options[{options.index(option)}]", f"{option!r}: not an option of a bind mount")
        if unknown:
            return
        create = "dir" if os.path.isdir(source) else "file"
        kind = "rbind" if "rbind" in options else "bind"
        out.add("lxc.mount.entry", mount_entry(source, target, "none", ",".join([kind, *words, f"create={create}"])),
                at)
        return
    if not fstype:
        out.fail(join(at, "type"), "required unless the mount is a bind")
        return
    out.add("lxc.mount.entry", mount_entry(source or fstype, target, fstype,
                                           ",".join([*options, "create=dir"])), at)


def _is_flag(option: str) -> bool:
    from lxcframe.mount_options import parse_options

    try:
        return parse_options([option]).data is None
    except ValueError:
        return False


def hooks(out: Translation, data: dict[str, Any]) -> BundleHooks:
    """``hooks``: checked here, run by lxcframe-oci at the spec's points (:mod:`lxcframe.oci.oci_hooks`)."""
    table = out.obj(data, "hooks", "")
    found: list[tuple[str, tuple[Hook, ...]]] = []
    for name, value in table.items():
        if name not in HOOK_NAMES:
            if value:
                out.fail(f"hooks.{name}", f"unknown hook (expected {', '.join(HOOK_NAMES)})")
            continue
        each = [hook for at, item in out.objects(table, name, "hooks") if (hook := _hook(out, at, item)) is not None]
        if each:
            found.append((name, tuple(each)))
    found.sort(key=lambda item: HOOK_NAMES.index(item[0]))
    return BundleHooks(tuple(found))


def _hook(out: Translation, at: str, item: dict[str, Any]) -> Hook | None:
    out.refuse_unknown(item, at, ("path", "args", "env", "timeout"))
    path = out.string(item, "path", at)
    if not path or not path.startswith("/"):
        out.fail(join(at, "path"), "required: an absolute path")
        return None
    args = tuple(arg for _, arg in out.strings(item, "args", at))
    env = None
    if item.get("env") is not None:
        env = []
        for where, variable in out.strings(item, "env", at):
            if "=" not in variable or variable.startswith("="):
                out.fail(where, f"{variable!r}: expected NAME=value")
            else:
                env.append(variable)
    timeout = out.integer(item, "timeout", at)
    if timeout is not None and timeout <= 0:
        # runtime-spec: "timeout ... MUST be greater than zero".
        out.fail(join(at, "timeout"), f"{timeout}: expected seconds greater than zero")
        return None
    return Hook(path, args, None if env is None else tuple(env), timeout)
