"""Hook specifications of lxcframe, one module per side of the fork.

* :mod:`lxcframe.hooks.setup` – registration: config keys, API extensions, templates, host checks;
  config sources other than LXC files (an OCI bundle).
* :mod:`lxcframe.hooks.host` – hooks that run on the host: in the CLI, the library caller or the monitor.
* :mod:`lxcframe.hooks.child` – hooks that run in the container's init child, after it left the host's
  namespaces and before it executes the payload.

Plugins import :data:`hookimpl` from here to mark their implementations; an implementation takes
any subset of its hookspec's arguments, by name. ``docs/plugins.md`` describes every hook (when it
runs, on which side of the fork, what it receives and returns, how its failures are reported), and
``tests/test_docs_hooks.py`` keeps that document and these hookspecs in step.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "lxcframe"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: Modules holding hookspecs, in the order a reader should meet them.
SPEC_MODULES = ("lxcframe.hooks.setup", "lxcframe.hooks.host", "lxcframe.hooks.child")

__all__ = ["PROJECT_NAME", "SPEC_MODULES", "hookimpl", "hookspec"]
