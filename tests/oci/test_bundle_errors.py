"""Bad bundles: every problem is one ``config.json: FIELD: reason`` (all of them raised together), a field no
plugin applies is refused by name, and a value a plugin's validator refuses is reported at its field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lxcframe.errors import ConfigError, ConfigErrors
from lxcframe.oci.bundle import read_bundle
from lxcframe.plugin_manager import Plugins

from .test_bundle import base_config, write


def errors_of(tmp_path: Path, config: dict[str, Any], *, state: bool = True, registry: Any = None) -> list[str]:
    write(tmp_path, config)
    (tmp_path / "state").mkdir(exist_ok=True)
    with pytest.raises(ConfigError) as caught:
        bundle = read_bundle(str(tmp_path), "c1", state_dir=str(tmp_path / "state") if state else None)
        bundle.config(registry or Plugins().key_registry())
    errors = caught.value.errors if isinstance(caught.value, ConfigErrors) else [caught.value]
    prefix = f"{tmp_path}/config.json: "
    messages = [str(Exception.__str__(err)) for err in errors]
    assert all(message.startswith(prefix) for message in messages), messages
    return [message.removeprefix(prefix) for message in messages]


def changed(**changes: Any) -> dict[str, Any]:
    config = base_config()
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = config
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return config


@pytest.mark.parametrize(("changes", "expected"), [
    ({"ociVersion": "2.0.0"}, "ociVersion: '2.0.0': runtime-spec 1.0 to 1.2 are supported"),
    ({"ociVersion": 1}, "ociVersion: expected a string"),
    ({"process__args": []}, "process.args: required: at least the program to run"),
    ({"process__args": ["sh", 3]}, "process.args[1]: expected a string"),
    ({"process__env": ["PATH=/bin", "NOEQUALS"]}, "process.env[1]: 'NOEQUALS': expected NAME=value"),
    ({"process__cwd": "tmp"}, "process.cwd: 'tmp': expected an absolute path"),
    ({"process__user": {"uid": -1, "gid": 0}}, "process.user.uid: -1: expected 0 to 4294967295"),
    ({"process__user": {"uid": 0, "gid": True}}, "process.user.gid: expected an integer"),
    ({"process__rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]}, "process.rlimits[0].type: 'RLIMIT_BOGUS'"),
    ({"process__capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_CHOWN"]}},
     "process.capabilities.effective: not supported unless it equals ['CAP_KILL']"),
    ({"process__capabilities": {"bounding": ["CAP_KILL"], "ambient": ["CAP_CHOWN"]}},
     "process.capabilities.ambient: ['CAP_CHOWN']: not in the bounding set"),
    ({"process__selinuxLabel": "system_u:system_r:container_t"}, "process.selinuxLabel: not supported"),
    ({"process__ioPriority": {"class": "IOPRIO_CLASS_IDLE"}}, "process.ioPriority: not supported: no lxcframe "
                                                             "plugin applies this field"),
    ({"root": {"path": ""}}, "root.path: required"),
    ({"hostname": "not a hostname!"}, "hostname: expected a host name"),
    ({"linux__namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "network", "path": "run/netns/x"}]},
     "linux.namespaces[2].path: 'run/netns/x': a namespace file's path must be absolute"),
    ({"linux__namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "user", "path": "/proc/1/ns/user"}]},
     "linux.namespaces[2].path: sharing the user namespace is not supported"),
    ({"linux__namespaces": [{"type": "mount"}]}, "linux.namespaces: a new pid namespace is required"),
    ({"linux__namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "bogus"}]},
     "linux.namespaces[2].type: 'bogus': expected one of"),
    ({"linux__namespaces": [{"type": "pid"}, {"type": "mount"}], "hostname": "h"},
     "hostname: needs a new UTS namespace"),
    ({"linux__uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]},
     "linux.uidMappings: id maps need a new user namespace"),
    ({"linux__cgroupsPath": "system.slice:docker:abc"}, "linux.cgroupsPath: 'system.slice:docker:abc': systemd's"),
    ({"linux__cgroupsPath": "/a/../b"}, "linux.cgroupsPath: '/a/../b': expected a cgroup path without '..'"),
    ({"linux__resources": {"memory": {"kernel": 1000}}}, "linux.resources.memory.kernel: not supported"),
    ({"linux__resources": {"rdma": {"mlx4_0": {"hcaHandles": 1}}}}, "linux.resources.rdma: not supported"),
    ({"linux__sysctl": {"kernel.panic": "1"}}, "linux.sysctl.kernel.panic: not a namespaced sysctl"),
    ({"linux__readonlyPaths": ["/etc"]}, "linux.readonlyPaths[0]: '/etc': only paths below /proc and /sys"),
    ({"linux__rootfsPropagation": "shared"}, "linux.rootfsPropagation: 'shared': not supported"),
    ({"linux__intelRdt": {"closID": "x"}}, "linux.intelRdt: not supported: no lxcframe plugin applies this field"),
    ({"linux__devices": [{"path": "/dev/x", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600}]},
     "linux.devices[0].fileMode: 600: the host node /dev/"),
    ({"linux__seccomp": {"defaultAction": "SCMP_ACT_TRACE"}},
     "linux.seccomp.defaultAction: SCMP_ACT_TRACE: not supported"),
    ({"linux__seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                         "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}},
     "linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY: not supported"),
    ({"linux__seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_KILL", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}},
     "linux.seccomp.syscalls[0].args[0].index: required: 0 to 5"),
    ({"mounts": [{"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["rro"]}]},
     "mounts[0].options[0]: 'rro': recursive mount attributes are not supported"),
    ({"mounts": [{"destination": "/x", "source": "/tmp", "options": ["bind", "mode=755"]}]},
     "mounts[0].options[1]: 'mode=755': not an option of a bind mount"),
    ({"mounts": [{"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["size=1"]}]},
     "mounts[0].options[0]: 'size=1': not supported on this mount"),
    ({"hooks": {"poststart": [{"path": "bin/true"}]}}, "hooks.poststart[0].path: required: an absolute path"),
    ({"hooks": {"prestart": [{"path": "/bin/true", "timeout": 0}]}},
     "hooks.prestart[0].timeout: 0: expected seconds greater than zero"),
    ({"hooks": {"prestart": [{"path": "/bin/true", "timeout": "5"}]}},
     "hooks.prestart[0].timeout: expected an integer"),
    ({"hooks": {"createRuntime": [{"path": "/bin/true", "env": ["A=1", "NOEQUALS"]}]}},
     "hooks.createRuntime[0].env[1]: 'NOEQUALS': expected NAME=value"),
    ({"hooks": {"createContainer": [{"path": "/bin/true", "args": ["true", 1]}]}},
     "hooks.createContainer[0].args[1]: expected a string"),
    ({"hooks": {"startContainer": [{"path": "/bin/true", "user": "x"}]}},
     "hooks.startContainer[0].user: not supported"),
    ({"hooks": {"afterStart": [{"path": "/bin/true"}]}}, "hooks.afterStart: unknown hook (expected prestart, "),
    ({"annotations": {"a": 1}}, "annotations.a: expected a string"),
    ({"windows": {"layerFolders": ["x"]}}, "windows: not supported: no lxcframe plugin applies this field"),
])
def test_a_bad_field_is_named(tmp_path: Path, changes: dict[str, Any], expected: str) -> None:
    messages = errors_of(tmp_path, changed(**changes))
    assert any(message.startswith(expected) for message in messages), messages


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    messages = errors_of(tmp_path, changed(process__cwd="rel", hostname=5, linux__sysctl={"a": 1}))
    assert sorted(m.split(":")[0] for m in messages) == ["hostname", "linux.sysctl.a", "process.cwd"]


def test_required_fields(tmp_path: Path) -> None:
    messages = errors_of(tmp_path, {"ociVersion": "1.0.0"})
    assert sorted(messages) == ["linux.namespaces: a new mount namespace is required: the rootfs is mounted in a "
                                "mount namespace of the container's",
                                "linux.namespaces: a new pid namespace is required: the container's process is pid 1 "
                                "of a pid namespace of its own",
                                "process: required", "root: required"]


def test_seccomp_needs_a_state_directory(tmp_path: Path) -> None:
    messages = errors_of(tmp_path, changed(linux__seccomp={"defaultAction": "SCMP_ACT_ALLOW"}), state=False)
    assert messages == ["linux.seccomp: the policy is written to the container's state directory, and none was given"]


def test_a_document_that_is_not_json_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{\n  "ociVersion": "1.0.0",\n  "process": {,\n}\n')
    with pytest.raises(ConfigError) as caught:
        read_bundle(str(tmp_path), "c1")
    assert str(caught.value) == f"{tmp_path}/config.json:3: not valid JSON: expected a property name in double quotes"


def test_a_missing_config_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        read_bundle(str(tmp_path), "c1")
    assert str(caught.value) == f"{tmp_path}/config.json: no such file or directory"


def test_a_key_of_a_disabled_plugin_is_kept_as_unhandled_at_its_line(tmp_path: Path) -> None:
    config = changed(process__noNewPrivileges=True)
    write(tmp_path, config)
    registry = Plugins(disable=["caps"]).key_registry()
    loaded = read_bundle(str(tmp_path), "c1").config(registry)
    [unhandled] = loaded.unhandled
    lines = json.dumps(config, indent=2).splitlines()
    assert (unhandled.key, unhandled.path) == ("lxc.no_new_privs", f"{tmp_path}/config.json")
    assert '"noNewPrivileges"' in lines[unhandled.line - 1]
