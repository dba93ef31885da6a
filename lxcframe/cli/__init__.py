"""The ``lxcframe`` command: a thin layer over the library."""
