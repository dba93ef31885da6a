"""What the host offers the seccomp plugin, for ``lxcframe check``: the kernel's seccomp and the
stacking of compat ABIs through libseccomp.

Imported by the check hook only; neither probe raises (:func:`lxcframe.probe.never_raises`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable

from lxcframe import syscalls
from lxcframe.probe import Probe, never_raises, read_text

# Module attributes, so that tests can point them elsewhere.
PROC_STATUS = "/proc/self/status"
SECCOMP_ACTIONS = "/proc/sys/kernel/seccomp/actions_avail"

_MODES = {"0": "disabled", "1": "strict", "2": "filter"}


@never_raises("seccomp:kernel")
def probe_kernel() -> Probe:
    """Seccomp in the kernel (the ``Seccomp:`` line of /proc/self/status) and its filter actions."""
    match = re.search(r"^Seccomp:\s*(\d+)", read_text(PROC_STATUS), re.MULTILINE)
    if match is None:
        return Probe("seccomp:kernel", False, f"no Seccomp line in {PROC_STATUS}: kernel built without CONFIG_SECCOMP")
    mode = _MODES.get(match.group(1), match.group(1))
    detail = f"seccomp in the kernel (this process: {mode})"
    # Kernels before 4.14 lack the actions file; the filters lxcframe builds work without it.
    with contextlib.suppress(OSError):
        detail += f"; actions: {read_text(SECCOMP_ACTIONS).strip()}"
    return Probe("seccomp:kernel", True, detail)


@never_raises("seccomp:stacking")
def probe_stacking(library_problem: Callable[[], str | None]) -> Probe:
    """libseccomp loadable (``library_problem`` says why not), and the compat ABIs a filter of this
    host's architecture also covers."""
    problem = library_problem()
    if problem is not None:
        return Probe("seccomp:stacking", False, problem)
    from lxcframe.plugins.seccomp import builder
    from lxcframe.plugins.seccomp.policy import host_arch

    version = syscalls.libseccomp_available() or "libseccomp"
    arch = host_arch()
    if not builder.STACKS.get(arch):
        return Probe("seccomp:stacking", True, f"{version}; {arch} has no compat ABI to stack")
    stacked, failed = builder.stackable(arch)
    native = builder.STACKS[arch][1]
    detail = f"{version}; {native} filters also cover " + (", ".join(stacked) or "nothing")
    if failed:
        detail += f" (cannot stack {failed})"
    return Probe("seccomp:stacking", bool(stacked) and not failed, detail)
