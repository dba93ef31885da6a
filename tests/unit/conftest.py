"""Tests of pure logic: no root, no containers, no host state. ``tox -e mutation`` runs only these,
once per mutant, so each must be quick and must not depend on the order it runs in.

Under mutmut every mutant must meet the same examples, or a mutant could be killed or missed by luck:
the ``mutation`` profile draws them deterministically and keeps no example database. It is loaded when
mutmut runs the tests, or when ``HYPOTHESIS_PROFILE=mutation`` asks for it (to replay a mutmut run).
"""

from __future__ import annotations

import os
import sys

from hypothesis import settings

settings.register_profile("mutation", derandomize=True, database=None, deadline=None, print_blob=False)

if "mutmut" in sys.modules or "MUTANT_UNDER_TEST" in os.environ or os.environ.get("HYPOTHESIS_PROFILE") == "mutation":
    settings.load_profile("mutation")
