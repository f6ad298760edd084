"""CTF tests run torch on one thread: on a shared 2-core machine, two threads per process oversubscribe
the cores and small FFT-heavy fits become 10-50x slower."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
