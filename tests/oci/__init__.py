"""Tests of the OCI runtime mode."""
