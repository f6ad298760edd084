"""Reconstruction tests run single-threaded: the test machine's cores are shared, and OpenMP threads
spinning against other processes make small torch ops many times slower."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
