"""Weighted back-projection (IMOD ``tilt`` without local alignments), slab by slab."""

from __future__ import annotations

import torch

from tomoforge.core.reconstruct.projector import (
    backproject_slab,
    column_matrix,
    interpolate_rows,
    is_separable,
    voxel_to_raw_affine,
)
from tomoforge.core.reconstruct.slabs import SlabSink, make_sink, rows_per_slab, slab_ranges
from tomoforge.core.reconstruct.weighting import filter_views


def select_views(stack: torch.Tensor, tilt_deg, xf, exclude=None):
    """Drop excluded views: returns ``(stack, tilt_deg, xf)`` of the kept views (float64 geometry)."""
    tilt = torch.as_tensor(tilt_deg, dtype=torch.float64).reshape(-1)
    xf = torch.as_tensor(xf, dtype=torch.float64)
    if stack.shape[0] != tilt.numel() or xf.shape[0] != tilt.numel():
        raise ValueError(f"{stack.shape[0]} views, {tilt.numel()} tilt angles and {xf.shape[0]} transforms")
    if exclude is None:
        return stack, tilt, xf
    keep = ~torch.as_tensor(exclude, dtype=torch.bool).reshape(-1)
    if not bool(keep.any()):
        raise ValueError("every view is excluded")
    idx = torch.nonzero(keep)[:, 0]
    return stack[idx.to(stack.device)], tilt[idx], xf[idx]


def reconstruct_wbp(stack: torch.Tensor, tilt_deg, xf, volume_shape: tuple[int, int, int], *,
                    filter: str = "ramp", binning: float = 1.0, z_shift_px: float = 0.0,
                    x_tilt_deg: float = 0.0, exclude=None, cutoff: float | None = None,
                    falloff: float = 0.035, sirt_iterations: int = 10, pad_factor: float = 1.5,
                    out=None, on_slab: SlabSink | None = None, slab_rows: int | None = None,
                    max_slab_bytes: int = 128 << 20, max_matrix_bytes: int = 1 << 30,
                    force_2d: bool = False):
    """Reconstruct a tomogram ``(d, h, w)`` (Z, Y, X) from raw views by weighted back-projection.

    stack: ``(v, H, W)`` raw (unaligned) views; the device of ``stack`` is used throughout.
    tilt_deg: ``(v,)``; xf: ``(v, 2, 3)`` raw-to-aligned ``.xf`` transforms (core/geometry.py).
    volume_shape: ``(d, h, w)`` in output voxels of ``binning`` raw pixels (``d`` is the thickness).
    filter: ``ramp`` | ``hamming`` | ``cosine`` | ``sirt-like`` (``sirt_iterations`` equivalent SIRT
    iterations). cutoff/falloff: optional IMOD RADIAL Gaussian roll-off, cycles per output voxel.
    z_shift_px: unbinned pixels, IMOD SHIFT sense (positive moves the specimen up in the output).
    x_tilt_deg: extra tilt about X applied to the specimen before projection (geometry.project_points).
    exclude: optional ``(v,)`` boolean mask of views to leave out.
    out: optional ``(d, h, w)`` numpy array / memmap / tensor to fill; on_slab: optional callback
    ``(y0, y1, slab)`` receiving each finished ``(d, y1-y0, w)`` slab (for streaming to disk).
    An already-aligned stack (no rotation in ``xf``, no X tilt) takes a separable path: the same bilinear
    weights, applied as a row interpolation and one sparse matmul (``max_matrix_bytes`` bounds its
    matrix); ``force_2d`` disables it (for tests).
    Returns ``out`` (a new float32 tensor when neither ``out`` nor ``on_slab`` is given; None when only
    ``on_slab`` is).
    """
    d, h, w = (int(n) for n in volume_shape)
    if min(d, h, w) < 1:
        raise ValueError(f"volume shape {volume_shape} must be positive")
    stack, tilt, xf = select_views(stack, tilt_deg, xf, exclude)
    filtered = filter_views(stack, xf, tilt, kind=filter, binning=binning, cutoff=cutoff, falloff=falloff,
                            sirt_iterations=sirt_iterations, thickness_vox=d, pad_factor=pad_factor)
    aff = voxel_to_raw_affine(tilt, xf, tuple(stack.shape[-2:]), (d, h, w), binning=binning,
                              z_shift_px=z_shift_px, x_tilt_deg=x_tilt_deg)
    result, sink = make_sink((d, h, w), out, on_slab, device=stack.device)
    rows = slab_rows or rows_per_slab((d, h, w), max_slab_bytes)
    if is_separable(aff) and not force_2d:
        _wbp_separable(filtered, aff, (d, h, w), rows, sink, max_matrix_bytes)
        return result
    for y0, y1 in slab_ranges(h, rows):
        slab = backproject_slab(filtered, aff, (d, h, w), y0, y1)
        sink(y0, y1, slab)
    return result


def _wbp_separable(filtered: torch.Tensor, aff: torch.Tensor, volume_shape, rows: int, sink,
                   max_matrix_bytes: int) -> None:
    """Aligned input: per slab, interpolate rows once, then one sparse matmul per block of z does every
    view's column interpolation and the sum over views (same values as the 2D bilinear path)."""
    d, h, w = volume_shape
    v, _, width = filtered.shape
    nnz_per_z = w * 2 * v
    z_block = max(1, min(d, int(max_matrix_bytes // (nnz_per_z * 8))))
    blocks = [(z0, min(d, z0 + z_block)) for z0 in range(0, d, z_block)]
    cached = len(blocks) == 1
    if not cached:  # the matrix is rebuilt for every slab: make slabs taller to amortise that
        rows = max(rows, min(h, 64))
    mats = [column_matrix(aff, volume_shape, width, *blocks[0], filtered.device)] if cached else None
    for y0, y1 in slab_ranges(h, rows):
        r = interpolate_rows(filtered, aff, y0, y1)  # (v*W, hs)
        slab = torch.empty((d, y1 - y0, w), device=filtered.device, dtype=filtered.dtype)
        for k, (z0, z1) in enumerate(blocks):
            m = mats[k] if cached else column_matrix(aff, volume_shape, width, z0, z1, filtered.device)
            slab[z0:z1] = (m @ r).view(z1 - z0, w, y1 - y0).transpose(1, 2)
        sink(y0, y1, slab)
