"""The OCI runtimes the tiers run on, found by path, and the busybox rootfs and bundles they run.

runc is the control and always runs. The runtime under test is ``lxcframe-oci``: the path in
``LXCFRAME_OCI_RUNTIME`` if set, else the one on ``PATH``, else this checkout's ``.venv/bin`` (the
set-up installs it with lxcframe). A missing one fails its cases ("lxcframe-oci is not installed"),
never skips them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
RUNTIME_ENV = "LXCFRAME_OCI_RUNTIME"
NOT_BUILT = "lxcframe-oci is not installed (pip install . puts it beside lxcframe)"


class RuntimeMissing(Exception):
    """The runtime under test is not installed (see :data:`NOT_BUILT`)."""


def runc_path() -> str:
    found = shutil.which("runc") or ("/usr/sbin/runc" if os.access("/usr/sbin/runc", os.X_OK) else None)
    assert found, "runc is missing: apt-get install runc (scripts/setup-host.sh lists it)"
    return found


def lxcframe_oci_path() -> str | None:
    given = os.environ.get(RUNTIME_ENV)
    if given:
        return given
    found = shutil.which("lxcframe-oci")
    if found:
        return found
    venv = REPOSITORY / ".venv" / "bin" / "lxcframe-oci"
    return str(venv) if os.access(venv, os.X_OK) else None


def runtime_params() -> list[Any]:
    """``runc`` (the control) and ``lxcframe-oci`` as pytest params."""
    return [pytest.param("runc", id="runc"), pytest.param("lxcframe-oci", id="lxcframe-oci")]


def resolve(name: str) -> str:
    """The path of the runtime called ``name`` (a :func:`runtime_params` value)."""
    if name == "runc":
        return runc_path()
    path = lxcframe_oci_path()
    if path is None:
        raise RuntimeMissing(NOT_BUILT)
    return path


# --- the busybox rootfs and bundles (docs: the OCI notes, §1.2 and §5) --------------------------------


def make_busybox_rootfs(root: Path) -> Path:
    """A rootfs of busybox-static and its applet links, with /etc/passwd and /etc/group."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    for sub in ("bin", "proc", "sys", "dev", "etc", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    applets = subprocess.run([str(root / "bin" / "busybox"), "--list"], capture_output=True, text=True,
                             check=True, timeout=30).stdout.split()
    for applet in applets:
        link = root / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    return root


def make_bundle(bundle: Path, rootfs: Path, args: list[str], annotations: dict[str, str] | None = None,
                **process: Any) -> Path:
    """A bundle whose config.json is ``runc spec``'s, with no terminal, a writable root at ``rootfs``,
    ``args`` as the process and ``annotations``; ``process`` sets more fields of ``process``."""
    bundle.mkdir(parents=True, exist_ok=True)
    subprocess.run([runc_path(), "spec", "--bundle", str(bundle)], check=True, capture_output=True, timeout=30)
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = args
    config["process"].update(process)
    config["root"] = {"path": str(rootfs), "readonly": False}
    config["annotations"] = dict(annotations or {})
    config_path.write_text(json.dumps(config, indent=2))
    return bundle
