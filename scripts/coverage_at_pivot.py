"""Run by a .pth file of the test venv in every Python process while the suite runs under coverage
(scripts/test.sh).

A container's child process saves its coverage data when it leaves, but by then it has pivoted into
the container's root, where the data file cannot be written. In every forked process this wraps
``lxcframe.syscalls.pivot_root`` so that the data measured so far is saved just before it, while the
host's files are still in reach. It imports nothing of lxcframe itself: a process that never
imported lxcframe is left as it is.
"""

import contextlib
import os
import sys


def _save_before_pivot() -> None:
    syscalls = sys.modules.get("lxcframe.syscalls")
    if syscalls is None or getattr(syscalls.pivot_root, "saves_coverage", False):
        return
    real_pivot_root = syscalls.pivot_root

    def pivot_root(new_root, put_old):  # type: ignore[no-untyped-def]
        import coverage

        current = coverage.Coverage.current()
        if current is not None:
            with contextlib.suppress(Exception):  # an id-mapped child may not write here: lose its lines
                current.save()
        return real_pivot_root(new_root, put_old)

    pivot_root.saves_coverage = True  # type: ignore[attr-defined]
    syscalls.pivot_root = pivot_root


os.register_at_fork(after_in_child=_save_before_pivot)
