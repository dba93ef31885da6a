"""OCI runtime mode: bundles, container state and the runc-style command line."""
