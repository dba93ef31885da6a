"""Running a test's function in a forked child, so that what it changes (namespaces, mounts,
capabilities, prctl state) never reaches the pytest process."""

from __future__ import annotations

import os
import pickle
import signal
import traceback
from collections.abc import Callable
from typing import Any

import pytest


def run_in_child(func: Callable[[], Any], timeout: int = 30) -> Any:
    """Run ``func`` in a forked child and return its (picklable) result.

    An exception in the child fails the test with the child's traceback.
    SIGALRM bounds the child's lifetime so a hang cannot wedge the suite.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            os.close(read_fd)
            signal.alarm(timeout)
            try:
                outcome: tuple[str, Any] = ("ok", func())
            except BaseException:
                outcome = ("error", traceback.format_exc())
            data = pickle.dumps(outcome)
            while data:
                data = data[os.write(write_fd, data) :]
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks = []
    with os.fdopen(read_fd, "rb") as reader:
        while chunk := reader.read(65536):
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"child died: status {status}"
    kind, value = pickle.loads(b"".join(chunks))
    if kind == "error":
        pytest.fail(f"child raised:\n{value}")
    return value
