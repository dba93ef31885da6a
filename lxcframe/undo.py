"""A host-side finaliser stack: each stage pushes the undo of what it created; failure unwinds in reverse."""

from __future__ import annotations

import threading
from collections.abc import Callable

from lxcframe.errors import UndoErrors


class UndoStack:
    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], object]]] = []
        self._lock = threading.Lock()

    def push(self, what: str, undo: Callable[[], object]) -> None:
        """Remember how to undo ``what``; undos run last-pushed first."""
        with self._lock:
            self._steps.append((what, undo))

    def __len__(self) -> int:
        return len(self._steps)

    def descriptions(self) -> list[str]:
        return [what for what, _ in self._steps]

    def unwind(self) -> None:
        """Run every undo in reverse order, all of them even if some fail; then raise the failures together."""
        failures: list[tuple[str, BaseException]] = []
        while True:
            with self._lock:
                if not self._steps:
                    break
                what, undo = self._steps.pop()
            try:
                undo()
            except Exception as err:
                failures.append((what, err))
        if failures:
            raise UndoErrors(failures)
