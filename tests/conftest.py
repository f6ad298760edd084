"""Shared fixtures: the real-data corpus beside the repo, and small temporary projects."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (see tomoforge/__init__.py)

sys.path.insert(0, str(Path(__file__).resolve().parent))  # shared helpers such as sessions.py

REPO_ROOT = Path(__file__).resolve().parents[1]
REALDATA = REPO_ROOT.parent / "shared" / "realdata"


@pytest.fixture
def realdata() -> Path:
    """Path to ../shared/realdata; skips the test with a reason when it is absent."""
    if not REALDATA.is_dir():
        pytest.skip(f"real-data corpus not found at {REALDATA} (../shared/realdata beside the repo)")
    return REALDATA


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One torch thread per test process: pytest-xdist already runs a process per core, and small FFTs on a
    shared 2-core machine get much slower with more threads."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

