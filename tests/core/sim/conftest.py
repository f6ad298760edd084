import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The simulator tests run many small tensor ops: on a shared 2-core machine one thread is much faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
