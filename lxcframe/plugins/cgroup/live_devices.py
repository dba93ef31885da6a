"""``devices.allow``/``devices.deny``/``devices.list`` of a running container whose devices a cgroup2
device program controls, as LXC's ``lxc-cgroup NAME devices.allow 'c 1:7 rwm'`` on such a host.

cgroup2 has no ``devices.*`` files. Where the container has no v1 devices hierarchy (a pure cgroup2
host), or a device program was attached to it (its ``lxc.cgroup2.devices`` rules, on a hybrid host,
where the v1 file is written as well, as before), the rule is folded into the recorded policy
(:mod:`.device_record`), the program of the result is attached, and only then the old one detached:
with ``BPF_F_ALLOW_MULTI`` both apply for that moment, which can only deny more, and there is no
moment with neither. ``devices.list`` shows the recorded policy as cgroup v1 shows its list. A
container with no program yet (no rule given at start, every device allowed) starts from
``devices.allow = a``.

Changes are serialised by an exclusive ``flock`` on the payload cgroup's directory, which the stop
takes as well before it detaches every program (:func:`.device_program.detach_all`): a change that
got it after the stop finds the container no longer running and attaches nothing.
"""

from __future__ import annotations

import fcntl
import os

from lxcframe import state as st
from lxcframe.errors import ContainerError
from lxcframe.plugins.cgroup import device_program, device_record, items, runtime
from lxcframe.plugins.cgroup.device_rules import ALLOW, DENY, DevicePolicy, fold_into, parse_rule, rule_text, v1_list
from lxcframe.plugins.cgroup.layout import V1
from lxcframe.plugins.cgroup.placement import Placed

LIST = "devices.list"
KEYS = (ALLOW, DENY, LIST)
#: What a container with no device program has: every device allowed.
ALLOW_ALL = DevicePolicy(True, ())


def item(state: st.ContainerState, placed: list[Placed], key: str, value: str | None) -> str | None:
    """Read (``value`` ``None``) or write a device key through the device program; ``None`` when the
    container's devices are not the program's (the v1 file is read or written as any other)."""
    unified = runtime.unified(placed)
    if key not in KEYS or unified is None or os.geteuid() != 0:
        return None  # bpf(2) is root's: a non-root caller attached no program
    record = device_record.load(state.runtime_dir, state.name)
    v1_devices = any(p.kind == V1 and "devices" in p.controllers for p in placed)
    if record is None and v1_devices:
        return None
    if value is None:
        if key != LIST:
            raise ContainerError(f"cgroup key {key!r}: the file is write-only")
        return "\n".join(v1_list(record.policy if record is not None else ALLOW_ALL))
    if key == LIST:
        raise ContainerError(f"cgroup key {key!r}: the file is read-only")
    if not value.replace("\t", " ").isprintable():
        raise ContainerError(f"cgroup key {key!r} = {value!r}: a value is one line of text, without control "
                             "characters")
    try:
        rule = parse_rule(key, value)
    except ValueError as err:
        raise ContainerError(f"cgroup key {key!r} = {value!r}: {err}") from None
    if v1_devices:
        # The v1 kernel takes no device path: the rule as its numbers.
        items.write(placed, key, rule_text(rule) if rule is not None else "a")
    _change(state, unified, key, value)
    return ""


def _change(state: st.ContainerState, unified: Placed, key: str, value: str) -> None:
    directory = unified.path(unified.payload)
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ContainerError(f"{state.name}: not running (its cgroup {directory} is gone)") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        now = st.read_state(state.lxcpath, state.name)
        if now is None or now.state not in (st.RUNNING, st.FROZEN):
            raise ContainerError(f"{state.name}: {now.state.lower() if now is not None else 'not running'}")
        record = device_record.load(state.runtime_dir, state.name)
        policy = fold_into(record.policy if record is not None else ALLOW_ALL, key, parse_rule(key, value))
        try:
            prog_id = device_program.attach(directory, policy)
        except OSError as err:
            raise ContainerError(f"cgroup key {key!r} = {value!r}: cannot attach the cgroup2 device program to "
                                 f"{directory}: {err.strerror}") from None
        try:
            device_record.save(state.runtime_dir, device_record.DeviceRecord(policy, prog_id))
        except BaseException:
            device_program.detach(directory, prog_id)  # the old program and record stay as they were
            raise
        if record is not None:
            device_program.detach(directory, record.program)
    finally:
        os.close(fd)
