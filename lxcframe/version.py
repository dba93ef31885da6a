"""The project's version, kept apart so that `lxcframe --version` imports nothing else."""

__version__ = "0.1.0"
