"""``import lxcframe.compat.lxc`` stays cheap: python3-lxc's module imports in milliseconds, and
scripts import it at their top whether or not they touch a container."""

import subprocess
import sys

#: What the first container call imports (the native Container, its config reader, the plugins).
HEAVY = ("attr", "attrs", "pluggy", "structlog", "lxcframe.container", "lxcframe.config", "lxcframe.plugin_manager")


def test_importing_the_module_loads_nothing_heavy():
    shown = subprocess.run(
        [sys.executable, "-c", "import sys, lxcframe.compat.lxc as lxc; "
                               "print(' '.join(sorted(m for m in sys.modules)))"],
        capture_output=True, text=True, check=True, timeout=60)
    loaded = shown.stdout.split()
    assert "lxcframe.compat.lxc" in loaded
    assert [name for name in loaded if name.split(".")[0] in HEAVY or name.startswith(HEAVY)] == []
