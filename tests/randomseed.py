"""A random seed per test run, the same in every xdist worker (they must collect the same tests)."""

from __future__ import annotations

import hashlib
import os
import random


def run_seed(salt: str = "") -> int:
    """Random for each run; printed by tests on failure so a case can be reproduced with a fixed seed."""
    uid = os.environ.get("PYTEST_XDIST_TESTRUNUID") or os.environ.get("TOMOFORGE_TEST_SEED")
    if uid is None:
        uid = str(random.SystemRandom().randrange(10**9))
        os.environ["TOMOFORGE_TEST_SEED"] = uid
    return int(hashlib.sha256((uid + salt).encode()).hexdigest(), 16) % 10**6 + 1
