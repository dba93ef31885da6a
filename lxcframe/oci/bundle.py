"""An OCI bundle is just another config source: ``config.json`` translated into LXC's ``lxc.*`` keys.

Every field becomes the key an LXC config would write for it, validated by the plugin that owns the key,
so each feature plugin applies a bundle unchanged. Each translated key keeps the JSON field it came from
and that field's line: a bad field is reported as ``config.json: FIELD: reason`` by the translation, and
a plugin's later complaint names ``config.json:LINE:`` as for any config file. A field no plugin applies
is refused, naming it, rather than dropped.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable
from typing import Any

import attrs

from lxcframe.config.keys import KeyRegistry
from lxcframe.config.model import ContainerConfig, build_config
from lxcframe.config.parser import RawEntry, check_entry
from lxcframe.errors import ConfigError, ConfigErrors
from lxcframe.oci.bundle_json import JsonDoc, read_json

CONFIG_NAME = "config.json"
#: The runtime-spec versions whose config.json this reads (1.0 to 1.2, any patch level or suffix).
SUPPORTED_MAJOR = 1
SUPPORTED_MINORS = (0, 1, 2)


@attrs.frozen
class Entry:
    """One translated ``key = value`` and the JSON field it came from."""

    key: str
    value: str
    field: str


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
    #: ``process.terminal``: the caller allocates a pty (``--console-socket``).
    terminal: bool
    #: The root filesystem, absolute.
    rootfs: str
    annotations: tuple[tuple[str, str], ...]
    entries: tuple[Entry, ...]
    doc: JsonDoc = attrs.field(repr=False)

    def lines(self) -> list[tuple[str, str]]:
        """The translated keys as (key, value) pairs, in order: what a config file of this bundle holds
        (``lxc.init.cmd`` there is split at blanks: start it with :attr:`args` as the command)."""
        return [(entry.key, entry.value) for entry in self.entries]

    def config(self, registry: KeyRegistry) -> ContainerConfig:
        """Validate the translated keys with the plugins' validators.

        A value its key refuses is reported at its JSON field; a key no enabled plugin handles is kept
        as unhandled (a start refuses it, naming ``config.json:LINE``), as for an LXC config.
        """
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
            raw.append(RawEntry(entry.key, entry.value, self.config_path, self.doc.line(entry.field)))
        if errors:
            raise ConfigErrors(errors)
        config = build_config(raw, registry, self.config_path)
        cmd = config.single.get("lxc.init.cmd")
        if cmd is not None:
            # The validator split the joined text at blanks; the command is the argument list as given.
            single = dict(config.single)
            single["lxc.init.cmd"] = attrs.evolve(cmd, value=self.args)
            config = attrs.evolve(config, single=single)
        return config


def field_error(config_path: str, field: str, why: str) -> ConfigError:
    """``config.json: FIELD: why``."""
    return ConfigError(why, path=config_path, key=field)


def load_bundle(bundle_dir: str, container_id: str, registry: KeyRegistry | None = None, *,
                state_dir: str | None = None) -> ContainerConfig:
    """The container config of the OCI bundle at ``bundle_dir``.

    ``registry`` is the enabled plugins' keys (default: the builtin plugins'). ``state_dir`` is the
    container's own directory (``--root/ID``), where files a translation writes go (a seccomp policy).
    """
    if registry is None:
        from lxcframe.plugin_manager import Plugins

        registry = Plugins().key_registry()
    return read_bundle(bundle_dir, container_id, state_dir=state_dir).config(registry)


def read_bundle(bundle_dir: str, container_id: str, *, state_dir: str | None = None) -> Bundle:
    """Read ``bundle_dir/config.json`` and translate it (every problem found is raised together)."""
    directory = os.path.abspath(bundle_dir)
    config_path = os.path.join(directory, CONFIG_NAME)
    doc = read_json(config_path, config_path)
    out = _Translation(doc, directory, state_dir)
    data = out.object_at("", doc.data)
    version = _oci_version(out, data)
    rootfs = _root(out, data)
    args, terminal = _process(out, data)
    _hostname(out, data)
    _namespaces(out, data)
    annotations = _annotations(out, data)
    out.refuse_unknown(data, "", KNOWN_TOP)
    out.raise_errors()
    return Bundle(directory, config_path, container_id, version, args, terminal, rootfs, annotations,
                  tuple(out.entries), doc)


class _Translation:
    """The keys translated so far and the problems found, each at its field."""

    def __init__(self, doc: JsonDoc, directory: str, state_dir: str | None) -> None:
        self.doc = doc
        self.directory = directory
        self.state_dir = state_dir
        self.entries: list[Entry] = []
        self.errors: list[ConfigError] = []

    def add(self, key: str, value: str, field: str) -> None:
        try:
            check_entry(key, value)
        except ConfigError as err:
            self.fail(field, err.reason)
            return
        self.entries.append(Entry(key, value, field))

    def fail(self, field: str, why: str) -> None:
        self.errors.append(field_error(self.doc.path, field, why))

    def raise_errors(self) -> None:
        if self.errors:
            raise ConfigErrors(self.errors)

    # --- typed access: a wrong type is an error at its field, and the caller gets a safe default ---

    def object_at(self, field: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(field or "(document)", "expected a JSON object")
            return {}
        return value

    def get(self, parent: dict[str, Any], name: str, field: str, kind: type | tuple[type, ...],
            what: str) -> Any:
        """``parent[name]`` if it is of ``kind`` (None when absent or wrong, the latter reported)."""
        if name not in parent or parent[name] is None:
            return None
        value = parent[name]
        # bool is an int to Python, never to JSON's readers.
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
            self.fail(join(field, name), f"expected {what}")
            return None
        return value

    def string(self, parent: dict[str, Any], name: str, field: str) -> str | None:
        return self.get(parent, name, field, str, "a string")

    def boolean(self, parent: dict[str, Any], name: str, field: str) -> bool | None:
        return self.get(parent, name, field, bool, "true or false")

    def uint(self, parent: dict[str, Any], name: str, field: str, bits: int = 32) -> int | None:
        value = self.get(parent, name, field, int, "an unsigned integer")
        if value is not None and not 0 <= value < 2**bits:
            self.fail(join(field, name), f"expected an unsigned integer below 2^{bits}")
            return None
        return value

    def integer(self, parent: dict[str, Any], name: str, field: str) -> int | None:
        return self.get(parent, name, field, int, "an integer")

    def obj(self, parent: dict[str, Any], name: str, field: str) -> dict[str, Any] | None:
        return self.get(parent, name, field, dict, "a JSON object")

    def array(self, parent: dict[str, Any], name: str, field: str) -> list[Any]:
        return self.get(parent, name, field, list, "a JSON array") or []

    def strings(self, parent: dict[str, Any], name: str, field: str) -> list[str]:
        found = []
        for index, item in enumerate(self.array(parent, name, field)):
            if isinstance(item, str):
                found.append(item)
            else:
                self.fail(f"{join(field, name)}[{index}]", "expected a string")
        return found

    def refuse_unknown(self, parent: dict[str, Any], field: str, known: Iterable[str]) -> None:
        """A field no translation reads: refused, not dropped (the container would run without it)."""
        known = set(known)
        for name in parent:
            if name not in known:
                self.fail(join(field, name), "not supported: no lxcframe plugin applies this field")

    def refuse_present(self, parent: dict[str, Any], name: str, field: str, why: str) -> None:
        if parent.get(name) not in (None, "", [], {}):
            self.fail(join(field, name), why)


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def join(field: str, name: str) -> str:
    return f"{field}.{name}" if field else name


KNOWN_TOP = ("ociVersion", "root", "process", "hostname", "domainname", "mounts", "hooks", "annotations",
             "linux")


def _oci_version(out: _Translation, data: dict[str, Any]) -> str:
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


def _root(out: _Translation, data: dict[str, Any]) -> str:
    root = out.obj(data, "root", "")
    if root is None:
        out.fail("root", "required")
        return ""
    path = out.string(root, "path", "root")
    if not path:
        out.fail("root.path", "required")
        return ""
    full = os.path.normpath(os.path.join(out.directory, path))
    out.add("lxc.rootfs.path", full, "root.path")
    if out.boolean(root, "readonly", "root"):
        out.add("lxc.rootfs.options", "ro", "root.readonly")
    out.refuse_unknown(root, "root", ("path", "readonly"))
    return full


KNOWN_PROCESS = ("terminal", "consoleSize", "cwd", "env", "args", "commandLine", "user", "capabilities",
                 "rlimits", "noNewPrivileges", "apparmorProfile", "oomScoreAdj", "selinuxLabel", "ioPriority",
                 "scheduler", "execCPUAffinity")


def _process(out: _Translation, data: dict[str, Any]) -> tuple[tuple[str, ...], bool]:
    process = out.obj(data, "process", "")
    if process is None:
        # A bundle without one can be created but not started (runtime-spec: process is required for start).
        out.fail("process", "required")
        return (), False
    args = out.strings(process, "args", "process")
    if not args:
        out.fail("process.args", "required: at least the program to run")
    else:
        out.add("lxc.init.cmd", shlex.join(args), "process.args")
    for index, item in enumerate(out.strings(process, "env", "process")):
        if "=" not in item or item.startswith("="):
            out.fail(f"process.env[{index}]", f"{item!r}: expected NAME=value")
            continue
        out.add("lxc.environment", item, f"process.env[{index}]")
    cwd = out.string(process, "cwd", "process")
    if cwd is None:
        out.fail("process.cwd", "required")
    elif not cwd.startswith("/"):
        out.fail("process.cwd", f"{cwd!r}: expected an absolute path")
    else:
        out.add("lxc.init.cwd", cwd, "process.cwd")
    _user(out, process)
    terminal = bool(out.boolean(process, "terminal", "process"))
    out.refuse_present(process, "commandLine", "process", "Windows only")
    out.refuse_unknown(process, "process", ("terminal", "cwd", "env", "args", "user", "consoleSize"))
    return tuple(args), terminal


def _user(out: _Translation, process: dict[str, Any]) -> None:
    user = out.obj(process, "user", "process")
    if user is None:
        out.fail("process.user", "required")
        return
    uid = out.uint(user, "uid", "process.user")
    gid = out.uint(user, "gid", "process.user")
    if uid is None and "uid" not in user:
        out.fail("process.user.uid", "required")
    if gid is None and "gid" not in user:
        out.fail("process.user.gid", "required")
    if uid is not None:
        out.add("lxc.init.uid", str(uid), "process.user.uid")
    if gid is not None:
        out.add("lxc.init.gid", str(gid), "process.user.gid")
    groups = []
    for index, item in enumerate(out.array(user, "additionalGids", "process.user")):
        if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < 2**32 - 1:
            groups.append(str(item))
        else:
            out.fail(f"process.user.additionalGids[{index}]", "expected a gid")
    if groups:
        out.add("lxc.init.groups", ",".join(groups), "process.user.additionalGids")
    out.refuse_present(user, "username", "process.user", "Windows only")
    out.refuse_unknown(user, "process.user", ("uid", "gid", "additionalGids", "username"))


def _hostname(out: _Translation, data: dict[str, Any]) -> None:
    hostname = out.string(data, "hostname", "")
    if hostname:
        out.add("lxc.uts.name", hostname, "hostname")


#: runtime-spec namespace types and LXC's names for them.
NAMESPACES = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts", "user": "user",
              "cgroup": "cgroup", "time": "time"}


def _namespaces(out: _Translation, data: dict[str, Any]) -> None:
    linux = out.obj(data, "linux", "") or {}
    field = "linux.namespaces"
    cloned: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(out.array(linux, "namespaces", "linux")):
        at = f"{field}[{index}]"
        entry = out.object_at(at, item)
        kind = out.string(entry, "type", at)
        if kind is None:
            if "type" not in entry:
                out.fail(f"{at}.type", "required")
            continue
        name = NAMESPACES.get(kind)
        if name is None:
            out.fail(f"{at}.type", f"{kind!r}: expected one of {', '.join(NAMESPACES)}")
            continue
        if name in seen:
            out.fail(f"{at}.type", f"{kind!r}: listed twice")
            continue
        seen.add(name)
        path = out.string(entry, "path", at)
        out.refuse_unknown(entry, at, ("type", "path"))
        if not path:
            cloned.append(name)
            continue
        pid = _proc_ns_pid(path, name)
        if pid is None:
            out.fail(f"{at}.path", f"{path!r}: only /proc/PID/ns/{name} can be joined (lxc.namespace.share "
                     "takes a pid)")
            continue
        out.add(f"lxc.namespace.share.{name}", pid, f"{at}.path")
    for required, why in (("mnt", "the rootfs is mounted in a mount namespace of the container's own"),
                          ("pid", "the container's process is pid 1 of a pid namespace of its own")):
        if required not in cloned:
            out.fail(field, f"a new {'mount' if required == 'mnt' else required} namespace is required: {why}")
    if cloned:
        out.add("lxc.namespace.clone", " ".join(cloned), field)


def _proc_ns_pid(path: str, name: str) -> str | None:
    """The pid of a ``/proc/PID/ns/NAME`` path (``None`` for any other path)."""
    parts = path.split("/")
    proc_name = {"mnt": "mnt", "net": "net"}.get(name, name)
    if len(parts) == 5 and parts[:2] == ["", "proc"] and parts[2].isdigit() and parts[3] == "ns" \
            and parts[4] == proc_name:
        return parts[2]
    return None


def _annotations(out: _Translation, data: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """Kept for ``state``; none changes how the container runs (unknown ones are ignored, as the spec says)."""
    annotations = out.obj(data, "annotations", "") or {}
    kept = []
    for key, value in annotations.items():
        if isinstance(value, str):
            kept.append((key, value))
        else:
            out.fail(f"annotations.{key}", "expected a string")
    return tuple(kept)
