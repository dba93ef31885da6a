"""Operations on a running (or dead) container's cgroups, from what its start recorded.

These run in whichever process asks (``freeze``, ``stop -k``, ``info``, ``attach``, cleanup after a
dead monitor); the record in the state file says where the cgroups are.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable

from lxcframe.plugins.cgroup import device_program, fs
from lxcframe.plugins.cgroup.layout import V1, V2
from lxcframe.plugins.cgroup.placement import Placed, remove

FREEZE_TIMEOUT = 10.0
MAX_ATTACH_LEAVES = 1000


# --- freezing ------------------------------------------------------------------------------------


def v1_freezer(placed: list[Placed]) -> Placed | None:
    return next((p for p in placed if p.kind == V1 and "freezer" in p.controllers), None)


def v1_set_frozen(freezer: Placed, frozen: bool, timeout: float = FREEZE_TIMEOUT) -> None:
    """Write ``FROZEN``/``THAWED`` to ``freezer.state``; freezing waits until it reads ``FROZEN``."""
    state = freezer.path(freezer.payload, "freezer.state")
    if not frozen:
        fs.write(state, "THAWED")
        return
    deadline = time.monotonic() + timeout
    while True:
        # While FREEZING a task may fork or be in an uninterruptible wait: asking again finishes it.
        fs.write(state, "FROZEN")
        if fs.read(state) == "FROZEN":
            return
        if time.monotonic() >= deadline:
            fs.write(state, "THAWED")
            raise TimeoutError(errno.ETIMEDOUT, f"{state} did not reach FROZEN within {timeout:g}s")
        time.sleep(0.01)


def v1_is_frozen(freezer: Placed) -> bool:
    return fs.read_or_none(freezer.path(freezer.payload, "freezer.state")) == "FROZEN"


def unified(placed: list[Placed]) -> Placed | None:
    return next((p for p in placed if p.kind == V2), None)


def v2_can_freeze(unified_cg: Placed) -> bool:
    return os.path.exists(unified_cg.path(unified_cg.payload, "cgroup.freeze"))


def v2_set_frozen(unified_cg: Placed, frozen: bool, timeout: float = FREEZE_TIMEOUT) -> None:
    """Write ``cgroup.freeze`` and wait until ``cgroup.events`` says ``frozen`` accordingly."""
    fs.write(unified_cg.path(unified_cg.payload, "cgroup.freeze"), "1" if frozen else "0")
    deadline = time.monotonic() + timeout
    while v2_is_frozen(unified_cg) != frozen:
        if time.monotonic() >= deadline:
            raise TimeoutError(errno.ETIMEDOUT, f"cgroup.events of {unified_cg.payload} did not report "
                               f"frozen {int(frozen)} within {timeout:g}s")
        time.sleep(0.01)


def v2_is_frozen(unified_cg: Placed) -> bool:
    text = fs.read_or_none(unified_cg.path(unified_cg.payload, "cgroup.events")) or ""
    return fs.keyed(text).get("frozen") == "1"


# --- killing ---------------------------------------------------------------------------------------


def v2_kill(unified_cg: Placed) -> bool:
    """SIGKILL everything in the payload tree at once through ``cgroup.kill``; ``False`` without it."""
    path = unified_cg.path(unified_cg.payload, "cgroup.kill")
    if not os.path.exists(path):
        return False
    fs.write(path, "1")
    return True


def signal_payload(placed: list[Placed], signum: int) -> int:
    """Signal every process of the payload trees; returns how many were signalled."""
    return fs.signal_all((p.path(p.payload) for p in placed), signum)


def kill_frozen(placed: list[Placed], signum: int, set_frozen: Callable[[bool], None] | None) -> None:
    """Signal every process while the container is frozen, so none can fork a new one meanwhile.

    ``set_frozen`` freezes (``True``) or thaws the container; ``None`` when no freezer can be used.
    """
    if set_frozen is None:
        signal_payload(placed, signum)
        return
    set_frozen(True)
    try:
        signal_payload(placed, signum)
    finally:
        # Thawing lets the signals act: a task frozen by the v1 freezer does not even die before.
        set_frozen(False)


# --- info, attach, cleanup -------------------------------------------------------------------------


def _int(path: str) -> int | None:
    text = fs.read_or_none(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def stats(placed: list[Placed]) -> dict[str, object]:
    """Memory (bytes), process count and CPU time (ns) of the container, where a controller tells;
    cgroup2's numbers first, as for freezing and killing, then the v1 controllers'."""
    data: dict[str, object] = {}
    for p in sorted(placed, key=lambda p: p.kind != V2):
        if p.kind == V1:
            for key, controller, leaf in (("memory", "memory", "memory.usage_in_bytes"),
                                          ("pids", "pids", "pids.current"), ("cpu_ns", "cpuacct", "cpuacct.usage")):
                if controller in p.controllers and key not in data:
                    value = _int(p.path(p.payload, leaf))
                    if value is not None:
                        data[key] = value
        else:
            for key, leaf in (("memory", "memory.current"), ("pids", "pids.current")):
                value = _int(p.path(p.payload, leaf))
                if value is not None and key not in data:
                    data[key] = value
            usage = fs.keyed(fs.read_or_none(p.path(p.payload, "cpu.stat")) or "").get("usage_usec")
            if usage is not None and usage.isdigit() and "cpu_ns" not in data:
                data["cpu_ns"] = int(usage) * 1000
        if "blkio_bytes" not in data:
            blkio = block_io_bytes(p)
            if blkio is not None:
                data["blkio_bytes"] = blkio
    return data


def block_io_bytes(p: Placed) -> int | None:
    """Bytes the container read and wrote on block devices (lxc-info's "BlkIO use"): the sum of
    ``rbytes``/``wbytes`` of cgroup2's ``io.stat``, or v1's ``blkio.throttle.io_service_bytes`` "Total"
    (v1 kernels count a device there only while a throttle rule names it, as LXC reads the same file);
    ``None`` where the hierarchy has no such file."""
    if p.kind == V2:
        text = fs.read_or_none(p.path(p.payload, "io.stat"))
        if text is None:
            return None
        total = 0
        for line in text.splitlines():  # "8:0 rbytes=N wbytes=N rios=N …" per device
            for field in line.split()[1:]:
                key, _, value = field.partition("=")
                if key in ("rbytes", "wbytes") and value.isdigit():
                    total += int(value)
        return total
    if "blkio" not in p.controllers:
        return None
    # The recursive file counts the container's own sub-cgroups too (a nested container's, a systemd's).
    text = fs.read_or_none(p.path(p.payload, "blkio.throttle.io_service_bytes_recursive"))
    if text is None:
        text = fs.read_or_none(p.path(p.payload, "blkio.throttle.io_service_bytes"))
    if text is None:
        return None
    for line in reversed(text.splitlines()):
        words = line.split()
        if len(words) == 2 and words[0] == "Total" and words[1].isdigit():
            return int(words[1])
    return 0  # no device used yet: the file lists nothing but a zero Total on some kernels, nothing on others


def _is_leaf_for_processes(directory: str) -> bool:
    # cgroup2 puts no process into a cgroup that hands controllers down to children.
    return not (fs.read_or_none(os.path.join(directory, "cgroup.subtree_control")) or "")


def attach_target(p: Placed) -> str:
    """The ``cgroup.procs`` an attached process joins in this hierarchy.

    On cgroup2, once the container made its cgroup a parent with controllers enabled (as systemd
    does), a process can no longer join it (EBUSY): it joins a leaf ``lxc`` (``lxc-1`` …) below.
    """
    directory = p.path(p.init)
    if p.kind == V1 or _is_leaf_for_processes(directory):
        return os.path.join(directory, "cgroup.procs")
    for index in range(MAX_ATTACH_LEAVES):
        leaf = os.path.join(directory, "lxc" if index == 0 else f"lxc-{index}")
        try:
            os.mkdir(leaf, 0o755)
        except FileExistsError:
            if not _is_leaf_for_processes(leaf):
                continue
        return os.path.join(leaf, "cgroup.procs")
    raise OSError(errno.EBUSY, f"no leaf cgroup to attach to below {directory}")


def cleanup(placed: list[Placed]) -> list[str]:
    """Remove every recorded cgroup; returns the errors (each hierarchy is tried).

    The device programs on the unified payload cgroup are detached first: the kernel would only
    release them some time after the removed cgroup is freed."""
    errors = []
    for p in placed:
        try:
            # A non-root caller attached none, and bpf(2) would refuse it even the query.
            if p.kind == V2 and p.payload in p.created and os.geteuid() == 0:
                device_program.detach_all(p.path(p.payload))
            remove(p)
        except OSError as err:
            errors.append(f"{p.hierarchy.display}: {err}")
    return errors

