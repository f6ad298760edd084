"""Slab bookkeeping: which Y rows go together, and where a finished slab is written.

For a tilt about Y every volume row Y depends on one aligned image row, so rows can be reconstructed in
independent slabs and memory stays bounded by one slab plus the views.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

SlabSink = Callable[[int, int, torch.Tensor], None]


def slab_ranges(height: int, rows: int) -> Iterator[tuple[int, int]]:
    """Half-open row ranges ``(y0, y1)`` of at most ``rows`` rows covering ``0:height``."""
    rows = max(1, int(rows))
    for y0 in range(0, height, rows):
        yield y0, min(height, y0 + rows)


def rows_per_slab(volume_shape: tuple[int, int, int], max_slab_bytes: int, bytes_per_voxel: int = 4) -> int:
    """Rows such that one slab (and its sampling grid, twice its size) stays near ``max_slab_bytes``."""
    d, h, w = volume_shape
    per_row = d * w * bytes_per_voxel * 3
    return max(1, min(h, int(max_slab_bytes // max(per_row, 1))))


def make_sink(volume_shape: tuple[int, int, int], out=None, on_slab: SlabSink | None = None,
              device=None) -> tuple[object, SlabSink]:
    """Destination for slabs: ``out`` (numpy array or memmap, or torch tensor ``(d, h, w)``), a callback,
    or (neither given) a new torch tensor. Returns ``(result, sink)``; ``result`` is what the caller gets.
    """
    if out is not None and tuple(out.shape) != tuple(volume_shape):
        raise ValueError(f"output has shape {tuple(out.shape)}, expected {tuple(volume_shape)}")
    if out is None and on_slab is None:
        out = torch.zeros(volume_shape, dtype=torch.float32, device=device)

    def sink(y0: int, y1: int, slab: torch.Tensor) -> None:
        if isinstance(out, np.ndarray):
            out[:, y0:y1, :] = slab.detach().cpu().numpy().astype(out.dtype, copy=False)
        elif out is not None:
            out[:, y0:y1, :].copy_(slab)
        if on_slab is not None:
            on_slab(y0, y1, slab)

    return out, sink
