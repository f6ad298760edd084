"""Shared fixtures: the real-data corpus beside the repo, and small temporary projects."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REALDATA = REPO_ROOT.parent / "shared" / "realdata"


@pytest.fixture
def realdata() -> Path:
    """Path to ../shared/realdata; skips the test with a reason when it is absent."""
    if not REALDATA.is_dir():
        pytest.skip(f"real-data corpus not found at {REALDATA} (../shared/realdata beside the repo)")
    return REALDATA
