"""Drop-in modules for code written against other container APIs (``lxcframe.compat.lxc``: python3-lxc)."""
