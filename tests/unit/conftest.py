"""Tests of pure logic: no root, no containers, no host state. ``tox -e mutation`` runs only these,
once per mutant, so each must be quick and must not depend on the order it runs in."""
