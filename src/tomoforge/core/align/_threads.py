"""Run torch on one thread inside the alignment loops.

They are many small FFTs and resamplings: on a shared machine, waking a second thread costs far more than it
gives (measured: 0.6 s on one thread, 18 s on two for the same coarse alignment under load).
"""

from __future__ import annotations

import functools

import torch


def single_threaded(fn):
    """Decorator: torch uses one intra-op thread while ``fn`` runs, then the previous count again."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        n = torch.get_num_threads()
        if n == 1:
            return fn(*args, **kwargs)
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(n)

    return wrapper
