"""Quick GIL hand-offs: the interval is lowered while any exchange is in flight and the caller's own
comes back when the last one ends, paused waits included."""

from __future__ import annotations

import sys
import threading

import pytest

from lxcframe.handoffs import QUICK_INTERVAL, paused, quick_handoffs


def test_nested_and_paused_blocks_restore_the_callers_interval():
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.004)
    try:
        with quick_handoffs():
            assert sys.getswitchinterval() == pytest.approx(QUICK_INTERVAL)
            with quick_handoffs():
                assert sys.getswitchinterval() == pytest.approx(QUICK_INTERVAL)
            assert sys.getswitchinterval() == pytest.approx(QUICK_INTERVAL)  # the outer one is still in flight
            with paused():
                assert sys.getswitchinterval() == pytest.approx(0.004)  # a long wait: the caller's own interval
            assert sys.getswitchinterval() == pytest.approx(QUICK_INTERVAL)
        assert sys.getswitchinterval() == pytest.approx(0.004)
    finally:
        sys.setswitchinterval(before)


def test_concurrent_exchanges_share_one_lowering():
    before = sys.getswitchinterval()
    inside, release = threading.Barrier(3), threading.Event()
    seen: list[float] = []

    def exchange() -> None:
        with quick_handoffs():
            inside.wait()
            release.wait()
        seen.append(sys.getswitchinterval())

    threads = [threading.Thread(target=exchange) for _ in range(2)]
    for thread in threads:
        thread.start()
    inside.wait()
    assert sys.getswitchinterval() == pytest.approx(QUICK_INTERVAL)
    release.set()
    for thread in threads:
        thread.join()
    assert sys.getswitchinterval() == pytest.approx(before)
