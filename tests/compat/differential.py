"""Comparing the two sides of a differential run (see conftest.py)."""

from __future__ import annotations

import attrs


@attrs.frozen
class Run:
    """What one side of a differential run recorded."""

    entries: tuple[tuple[str, str], ...]
    stderr: str


def assert_same(real: Run, compat: Run) -> None:
    """Entry by entry, so that a failure names the call that differs and shows both sides."""
    labels = [label for label, _ in real.entries]
    assert labels == [label for label, _ in compat.entries], "the two runs recorded different calls"
    differing = [f"{label}: python3-lxc {want} / compat {got}"
                 for (label, want), (_, got) in zip(real.entries, compat.entries, strict=True) if want != got]
    assert not differing, "\n".join(differing) + f"\ncompat stderr:\n{compat.stderr}"


def split_off(run: Run, label: str) -> tuple[str, Run]:
    """The result recorded under ``label``, and the run without it (for a documented difference)."""
    found = [result for name, result in run.entries if name == label]
    assert len(found) == 1, f"{label!r} recorded {len(found)} times"
    return found[0], Run(tuple(entry for entry in run.entries if entry[0] != label), run.stderr)
