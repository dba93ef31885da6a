"""Fixtures of the OCI tiers: the busybox rootfs, and runtimes driven with private roots (tier 0)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .harness import Oci
from .runtimes import make_busybox_rootfs, resolve


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One busybox rootfs for the session's bundles (each container mounts over it, never writes it)."""
    return make_busybox_rootfs(tmp_path_factory.mktemp("oci-rootfs") / "rootfs")


@pytest.fixture
def oci(tmp_path: Path) -> Iterator[Callable[[str], Oci]]:
    """``oci(name)``: the runtime called ``name`` with a private root; all its containers deleted at teardown."""
    made: list[Oci] = []

    def make(name: str) -> Oci:
        runtime = Oci(resolve(name), tmp_path / f"{name}-{len(made)}")
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.cleanup()
