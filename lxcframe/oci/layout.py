"""Where the OCI runtime mode keeps its state: names shared by the entry point (which must stay cheap to
import) and the commands."""

#: Where containers' state lives without ``--root`` (runc's is /run/runc).
DEFAULT_ROOT = "/run/lxcframe-oci"
#: The directory below ``--root`` that is lxcframe's run directory (the server's socket, state records).
RUN_DIR = ".run"
