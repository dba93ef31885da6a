"""An OCI bundle is just another config source: ``config.json`` translated into LXC's ``lxc.*`` keys.

Every field becomes the key an LXC config would write for it, validated by the plugin that owns the key,
so each feature plugin applies a bundle unchanged. Each translated key keeps the JSON field it came from
and that field's line: a bad field is reported as ``config.json: FIELD: reason`` by the translation, and
a plugin's later complaint names ``config.json:LINE:`` as for any config file. A field no plugin applies
is refused, naming it, rather than dropped.

This module reads the document, ``root`` and ``process``; its siblings translate ``linux``
(:mod:`.bundle_linux`), ``mounts`` and ``hooks`` (:mod:`.bundle_mounts`), ``linux.resources`` and
``cgroupsPath`` (:mod:`.bundle_cgroups`) and ``linux.seccomp`` (:mod:`.bundle_seccomp`).
"""

from __future__ import annotations

import json
import os
import shlex
from typing import Any

import attrs

from lxcframe.config.keys import KeyRegistry
from lxcframe.config.model import ContainerConfig, build_config
from lxcframe.config.parser import RawEntry
from lxcframe.config.source import ConfigSource
from lxcframe.errors import ConfigError, ConfigErrors
from lxcframe.oci.bundle_fields import Entry, StateFile, Translation, field_error
from lxcframe.oci.bundle_json import JsonDoc, read_json
from lxcframe.oci.bundle_linux import namespaces as translate_namespaces
from lxcframe.oci.bundle_linux import translate as translate_linux
from lxcframe.oci.bundle_mounts import hooks as translate_hooks
from lxcframe.oci.bundle_mounts import mounts as translate_mounts
from lxcframe.oci.oci_hooks import BundleHooks

CONFIG_NAME = "config.json"
#: The runtime-spec versions whose config.json this reads (1.0 to 1.2, any patch level or suffix).
SUPPORTED_MAJOR = 1
SUPPORTED_MINORS = (0, 1, 2)
#: Written in the state directory when the bundle has a seccomp policy.
SECCOMP_FILE = "seccomp.policy"

__all__ = ["CONFIG_NAME", "Bundle", "Entry", "load_bundle", "read_bundle"]


@attrs.frozen
class Bundle:
    """A bundle's config.json, read and translated; :meth:`config` validates it into a :class:`ContainerConfig`."""

    #: The bundle directory, absolute.
    directory: str
    #: Its config.json, absolute: what errors and the config's locations name.
    config_path: str
    container_id: str
    oci_version: str
    #: ``process.args`` exactly (an argument may hold blanks, which ``lxc.init.cmd`` cannot say).
    args: tuple[str, ...]
    #: ``process.terminal``: the process gets a pty (its master goes to ``--console-socket``).
    terminal: bool
    #: ``process.consoleSize`` (rows, columns) of that pty, if given.
    console_size: tuple[int, int] | None
    #: ``process.user.umask``: no key sets it; the runtime sets it before the start forks (init inherits it).
    umask: int | None
    #: The root filesystem, absolute.
    rootfs: str
    annotations: tuple[tuple[str, str], ...]
    entries: tuple[Entry, ...]
    #: Files the keys name in the state directory (written there by :func:`read_bundle`).
    files: tuple[StateFile, ...] = ()
    #: ``hooks``, run by lxcframe-oci (:mod:`lxcframe.oci.oci_hooks`), not by a key.
    hooks: BundleHooks = attrs.field(factory=BundleHooks)
    doc: JsonDoc | None = attrs.field(default=None, repr=False, eq=False)

    def lines(self) -> list[tuple[str, str]]:
        """The translated keys as (key, value) pairs, in order: what a config file of this bundle holds
        (``lxc.init.cmd`` there is split at blanks: start it with :attr:`args` as the command)."""
        return [(entry.key, entry.value) for entry in self.entries]

    def values(self, key: str) -> list[str]:
        return [entry.value for entry in self.entries if entry.key == key]

    def config(self, registry: KeyRegistry) -> ContainerConfig:
        """Validate the translated keys with the plugins' validators.

        A value its key refuses is reported at its JSON field; a key no enabled plugin handles is kept
        as unhandled (a start refuses it, naming ``config.json:LINE``), as for an LXC config.
        """
        config = build_config(self.checked_entries(registry), registry, self.config_path)
        cmd = config.single.get("lxc.init.cmd")
        if cmd is not None:
            # The validator split the joined text at blanks; the command is the argument list as given.
            single = dict(config.single)
            single["lxc.init.cmd"] = attrs.evolve(cmd, value=self.args)
            config = attrs.evolve(config, single=single)
        return config

    def checked_entries(self, registry: KeyRegistry) -> list[RawEntry]:
        """The translated keys as config lines at their field's line in config.json, each value checked
        by its key's validator first: a refused one is reported at its JSON field (all of them at once)."""
        errors: list[ConfigError] = []
        raw: list[RawEntry] = []
        for entry in self.entries:
            spec = registry.lookup(entry.key)
            if spec is not None and entry.value != "":
                try:
                    spec.validator(entry.value)
                except ValueError as err:
                    errors.append(field_error(self.config_path, entry.field, f"{err} (as {entry.key})"))
                    continue
            line = self.doc.line(entry.field) if self.doc is not None else 1
            raw.append(RawEntry(entry.key, entry.value, self.config_path, line))
        if errors:
            raise ConfigErrors(errors)
        return raw

    def source(self, registry: KeyRegistry) -> ConfigSource:
        """The bundle as a config source (what plugin ``oci`` answers): its checked lines, and what the
        runtime does itself (the exact arguments, the terminal, the umask, the annotations)."""
        return ConfigSource(self.config_path, tuple(self.checked_entries(registry)), directory=self.directory,
                            args=self.args, terminal=self.terminal, console_size=self.console_size,
                            umask=self.umask, annotations=self.annotations, hooks=self.hooks)


def load_bundle(bundle_dir: str, container_id: str, registry: KeyRegistry | None = None, *,
                state_dir: str | None = None) -> ContainerConfig:
    """The container config of the OCI bundle at ``bundle_dir``.

    ``registry`` is the enabled plugins' keys (default: the builtin and installed plugins'). ``state_dir``
    is the container's own directory (``--root/ID``), where the files a translation needs go (a
    seccomp policy); a bundle that needs one cannot load without it. A bundle with ``hooks`` is refused:
    no key runs them (lxcframe-oci does, at the points of its lifecycle).
    """
    if registry is None:
        from lxcframe.plugin_manager import Plugins

        registry = Plugins().key_registry()
    bundle = read_bundle(bundle_dir, container_id, state_dir=state_dir)
    if bundle.hooks:
        raise field_error(bundle.config_path, "hooks", "not supported outside lxcframe-oci, which runs them at the "
                          "points of its lifecycle")
    return bundle.config(registry)


def read_bundle(bundle_dir: str, container_id: str, *, state_dir: str | None = None) -> Bundle:
    """Read ``bundle_dir/config.json`` and translate it (every problem found is raised together); the
    files the keys name are written to ``state_dir``."""
    directory = os.path.abspath(bundle_dir)
    config_path = os.path.join(directory, CONFIG_NAME)
    doc = read_json(config_path, config_path)
    out = Translation(doc, directory, None if state_dir is None else os.path.abspath(state_dir))
    data = out.object_at("", doc.data)
    version = _oci_version(out, data)
    _root(out, data)
    # linux first: the namespaces decide what hostname, sysctl and the mounts may do.
    linux = out.obj(data, "linux", "")
    translate_namespaces(out, linux)
    process = _process(out, data)
    _hostname(out, data)
    translate_mounts(out, data)
    translate_linux(out, linux)
    hooks = translate_hooks(out, data)
    annotations = _annotations(out, data)
    out.refuse_unknown(data, "", KNOWN_TOP)
    out.raise_errors()
    _write_files(out)
    return Bundle(directory, config_path, container_id, version, *process, out.rootfs, annotations,
                  tuple(out.entries), tuple(out.files), hooks, doc)


def _write_files(out: Translation) -> None:
    if not out.files:
        return
    if out.state_dir is None:
        raise ConfigError("the translated config needs files in the container's state directory, and none "
                          "was given", path=out.doc.path)
    for item in out.files:
        path = os.path.join(out.state_dir, item.name)
        temporary = f"{path}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(item.text)
        os.replace(temporary, path)


KNOWN_TOP = ("ociVersion", "root", "process", "hostname", "domainname", "mounts", "hooks", "annotations",
             "linux")


def _oci_version(out: Translation, data: dict[str, Any]) -> str:
    version = out.string(data, "ociVersion", "")
    if version is None:
        if "ociVersion" not in data:
            out.fail("ociVersion", "required")
        return ""
    numbers = version.split("-", 1)[0].split("+", 1)[0].split(".")
    try:
        major, minor = int(numbers[0]), int(numbers[1])
    except (ValueError, IndexError):
        out.fail("ociVersion", f"{version!r}: expected a version such as 1.0.2")
        return version
    if major != SUPPORTED_MAJOR or minor not in SUPPORTED_MINORS:
        out.fail("ociVersion", f"{version!r}: runtime-spec 1.0 to 1.2 are supported")
    return version


def _root(out: Translation, data: dict[str, Any]) -> None:
    if "root" not in data:
        out.fail("root", "required")
        return
    root = out.obj(data, "root", "")
    path = out.string(root, "path", "root")
    if not path:
        out.fail("root.path", "required")
        return
    out.rootfs = os.path.normpath(os.path.join(out.directory, path))
    out.add("lxc.rootfs.path", out.rootfs, "root.path")
    if out.boolean(root, "readonly", "root"):
        out.add("lxc.rootfs.options", "ro", "root.readonly")
    out.refuse_unknown(root, "root", ("path", "readonly"))


KNOWN_PROCESS = ("terminal", "consoleSize", "cwd", "env", "args", "user", "capabilities", "rlimits",
                 "noNewPrivileges", "apparmorProfile", "oomScoreAdj")


def _process(out: Translation, data: dict[str, Any]) -> tuple[tuple[str, ...], bool, tuple[int, int] | None,
                                                                int | None]:
    if "process" not in data:
        # runtime-spec: required for start; a bundle without one has nothing to run.
        out.fail("process", "required")
        return (), False, None, None
    process = out.obj(data, "process", "")
    args = [arg for _, arg in out.strings(process, "args", "process")]
    if not args:
        out.fail("process.args", "required: at least the program to run")
    else:
        out.add("lxc.init.cmd", command_text(args), "process.args")
    for at, item in out.strings(process, "env", "process"):
        if "=" not in item or item.startswith("="):
            out.fail(at, f"{item!r}: expected NAME=value")
        else:
            out.add("lxc.environment", item, at)
    cwd = out.string(process, "cwd", "process")
    if cwd is None:
        out.fail("process.cwd", "required")
    elif not cwd.startswith("/"):
        out.fail("process.cwd", f"{cwd!r}: expected an absolute path")
    else:
        out.add("lxc.init.cwd", cwd, "process.cwd")
    umask = _user(out, process)
    _capabilities(out, process)
    _rlimits(out, process)
    if out.boolean(process, "noNewPrivileges", "process"):
        out.add("lxc.no_new_privs", "1", "process.noNewPrivileges")
    profile = out.string(process, "apparmorProfile", "process")
    if profile:
        out.add("lxc.apparmor.profile", profile, "process.apparmorProfile")
    score = out.integer(process, "oomScoreAdj", "process", -1000, 1000)
    if score is not None:
        out.add("lxc.proc.oom_score_adj", str(score), "process.oomScoreAdj")
    terminal = bool(out.boolean(process, "terminal", "process"))
    size = out.obj(process, "consoleSize", "process")
    height = out.uint(size, "height", "process.consoleSize", 16)
    width = out.uint(size, "width", "process.consoleSize", 16)
    console_size = (height, width) if height is not None and width is not None else None
    out.refuse_present(process, "commandLine", "process", "Windows only")
    out.refuse_present(process, "selinuxLabel", "process", "not supported: lxcframe has no SELinux support")
    out.refuse_unknown(process, "process", (*KNOWN_PROCESS, "commandLine", "selinuxLabel"))
    return tuple(args), terminal, console_size, umask


def command_text(args: list[str]) -> str:
    """``lxc.init.cmd``'s text for the argument list: shell-quoted, or each argument as a JSON string when
    one holds a line break (a script), which a config line cannot. Only the text: a start runs
    :attr:`Bundle.args` as they are."""
    text = shlex.join(args)
    if text.splitlines() == [text]:
        return text
    return " ".join(json.dumps(arg) for arg in args)


def _user(out: Translation, process: dict[str, Any]) -> int | None:
    if "user" not in process:
        out.fail("process.user", "required")
        return None
    user = out.obj(process, "user", "process")
    for name in ("uid", "gid"):
        number = out.uint(user, name, "process.user")
        if number is None:
            if name not in user:
                out.fail(f"process.user.{name}", "required")
            continue
        out.add(f"lxc.init.{name}", str(number), f"process.user.{name}")
        if name == "uid":
            out.uid = number
    groups = []
    for index, item in enumerate(out.array(user, "additionalGids", "process.user")):
        if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < 2**32 - 1:
            groups.append(str(item))
        else:
            out.fail(f"process.user.additionalGids[{index}]", "expected a gid")
    if groups:
        out.add("lxc.init.groups", ",".join(groups), "process.user.additionalGids")
    out.refuse_present(user, "username", "process.user", "Windows only")
    out.refuse_unknown(user, "process.user", ("uid", "gid", "umask", "additionalGids", "username"))
    return out.uint(user, "umask", "process.user")


def _capabilities(out: Translation, process: dict[str, Any]) -> None:
    """``bounding`` is ``lxc.cap.keep``. What the other sets may say follows from how init gets its
    capabilities: root gets every one the bounding set has, effective and permitted (so ambient or
    inheritable ones of that set add nothing it lacks); any other uid loses all of them when it takes
    its ids, and nothing raises ambient or inheritable ones for it."""
    field = "process.capabilities"
    if process.get("capabilities") is None:
        return
    caps = out.obj(process, "capabilities", "process")
    sets: dict[str, set[str]] = {}
    for name in ("bounding", "effective", "permitted", "inheritable", "ambient"):
        sets[name] = set()
        for at, cap in out.strings(caps, name, field):
            if not cap.upper().startswith("CAP_"):
                out.fail(at, f"{cap!r}: expected a capability name such as CAP_KILL")
                continue
            sets[name].add(cap.upper())
    out.refuse_unknown(caps, field, sets)
    bounding = sets["bounding"]
    out.add("lxc.cap.keep", " ".join(sorted(bounding)) if bounding else "none", f"{field}.bounding")
    root = out.uid == 0
    for name in ("effective", "permitted"):
        wanted = bounding if root else set()
        if name in caps and sets[name] != wanted:
            who = ("uid 0 gets every capability of the bounding set" if root
                   else "a uid other than 0 keeps no capability")
            out.fail(f"{field}.{name}", f"not supported unless it equals {sorted(wanted) or 'nothing'}: {who}")
    for name in ("inheritable", "ambient"):
        if root and not sets[name] <= bounding:
            out.fail(f"{field}.{name}", f"{sorted(sets[name] - bounding)}: not in the bounding set")
        elif not root and sets[name]:
            out.fail(f"{field}.{name}", f"not supported: no lxcframe plugin raises {name} capabilities")


def _rlimits(out: Translation, process: dict[str, Any]) -> None:
    from lxcframe.plugins.prlimit import RESOURCES

    seen: set[str] = set()
    for at, limit in out.objects(process, "rlimits", "process"):
        kind = out.string(limit, "type", at)
        if kind is None:
            out.fail(f"{at}.type", "required")
            continue
        name = kind.upper().removeprefix("RLIMIT_").lower()
        if not kind.upper().startswith("RLIMIT_") or name not in RESOURCES:
            out.fail(f"{at}.type", f"{kind!r}: expected one of {', '.join('RLIMIT_' + r.upper() for r in RESOURCES)}")
            continue
        if name in seen:
            out.fail(f"{at}.type", f"{kind!r}: set twice")
            continue
        seen.add(name)
        soft, hard = out.uint(limit, "soft", at, 64), out.uint(limit, "hard", at, 64)
        if soft is None or hard is None:
            for which, value in (("soft", soft), ("hard", hard)):
                if value is None and which not in limit:
                    out.fail(f"{at}.{which}", "required")
            continue
        out.refuse_unknown(limit, at, ("type", "soft", "hard"))
        out.add(f"lxc.prlimit.{name}", f"{_rlimit(soft)}:{_rlimit(hard)}", at)


def _rlimit(value: int) -> str:
    # RLIM_INFINITY as the spec writes it (2^64 - 1) is what lxc.prlimit calls unlimited.
    return "unlimited" if value == 2**64 - 1 else str(value)


def _hostname(out: Translation, data: dict[str, Any]) -> None:
    hostname = out.string(data, "hostname", "")
    domain = out.string(data, "domainname", "")
    if "uts" not in out.new_namespaces:
        for name, value in (("hostname", hostname), ("domainname", domain)):
            if value:
                out.fail(name, "needs a new UTS namespace (linux.namespaces has no 'uts' without a path)")
        return
    if hostname:
        out.add("lxc.uts.name", hostname, "hostname")
    else:
        import socket

        # runtime-spec: without a hostname the new UTS namespace keeps the one it was made with, the
        # runtime's; lxcframe would give it the container's name.
        out.add("lxc.uts.name", socket.gethostname(), "hostname")
    if domain:
        out.add("lxc.sysctl.kernel.domainname", domain, "domainname")


def _annotations(out: Translation, data: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """Kept for ``state``; none changes how the container runs (unknown ones are ignored, as the spec says)."""
    annotations = out.obj(data, "annotations", "")
    kept = []
    for key, value in annotations.items():
        if isinstance(value, str):
            kept.append((key, value))
        else:
            out.fail(f"annotations.{key}", "expected a string")
    return tuple(kept)
