"""SIRT with the matched projector pair, slab by slab along Y.

Update (row/column-sum normalised, Gilbert 1972; what IMOD's and tomo3d's SIRT do)::

    x <- x + lambda * C A^T R (b - A x),   R = 1 / (A 1),  C = 1 / (A^T 1)

``A`` maps voxels to raw pixels (the alignment sits inside ``A``, so the data are never resampled).
A slab only sees the raw pixels its rows project to; pixels at the slab edge also receive rays from the
neighbouring rows, so each slab is iterated with ``halo_rows`` extra rows on both sides that are then
discarded (errors from the cut travel about one row per iteration).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tomoforge.core.reconstruct.projector import (
    column_matrix,
    is_separable,
    linear_taps,
    sample_view,
    slab_boxes,
    spread_view,
    voxel_to_raw_affine,
)
from tomoforge.core.reconstruct.slabs import SlabSink, make_sink, rows_per_slab, slab_ranges
from tomoforge.core.reconstruct.wbp import select_views

# Pixels whose rays cross less than this many voxels (the rim of the volume's shadow) are ignored: their
# 1/row-sum weights would be huge and would dominate the update.
MIN_RAY_VOXELS = 0.5


def bin_views(images: torch.Tensor, binning: int) -> torch.Tensor:
    """Average ``binning`` x ``binning`` blocks of ``(v, H, W)``; trailing rows/columns that do not fill a
    block are dropped (binned pixel ``j`` is centred on raw ``b j + (b-1)/2``)."""
    if binning == 1:
        return images
    return F.avg_pool2d(images[:, None], binning)[:, 0]


def binned_affine(affines: torch.Tensor, binning: int) -> torch.Tensor:
    """Voxel-to-raw affines ``(v, 2, 4)`` re-expressed in the pixels of :func:`bin_views`."""
    out = affines.clone() / binning
    out[..., 3] -= (binning - 1) / (2 * binning)
    return out


def sirt_slab(data: torch.Tensor, affines: torch.Tensor, volume_shape, y0: int, y1: int, iterations: int,
              relaxation: float = 1.0, x0: torch.Tensor | None = None) -> tuple[torch.Tensor, list[float]]:
    """Run SIRT on rows ``y0:y1`` alone. data: ``(v, H, W)`` mean-subtracted views.

    Returns the slab ``(d, y1-y0, w)`` and the R-weighted squared residual ``sum (b - Ax)^2 / (A 1)``
    before each iteration and after the last (``iterations + 1`` values, non-increasing for
    ``0 < relaxation < 2``).
    """
    d, _, w = volume_shape
    dev, dt = data.device, data.dtype
    hs = y1 - y0
    boxes = [(i, b) for i, b in enumerate(slab_boxes(affines, volume_shape, y0, y1, data.shape[-2:]))
             if b is not None]
    ones = torch.ones((d, hs, w), device=dev, dtype=dt)
    crops, rinv, colsum = [], [], torch.zeros((d, hs, w), device=dev, dtype=dt)
    for i, (r0, r1, c0, c1) in boxes:
        box = (r0, r1, c0, c1)
        rowsum = spread_view(ones, affines[i], volume_shape, y0, y1, box)
        hit = rowsum > MIN_RAY_VOXELS
        rinv.append(torch.where(hit, 1.0 / rowsum.clamp(min=1e-30), torch.zeros_like(rowsum)))
        crops.append(data[i, r0:r1, c0:c1] * hit)
        colsum += sample_view(torch.ones_like(rowsum), affines[i], volume_shape, y0, y1, box)
    cinv = torch.where(colsum > 1e-6, 1.0 / colsum.clamp(min=1e-30), torch.zeros_like(colsum))
    x = torch.zeros((d, hs, w), device=dev, dtype=dt) if x0 is None else x0.clone()
    history = []
    for it in range(iterations + 1):
        update = torch.zeros_like(x) if it < iterations else None
        err = 0.0
        for k, (i, box) in enumerate(boxes):
            resid = crops[k] - spread_view(x, affines[i], volume_shape, y0, y1, box) * (rinv[k] > 0)
            weighted = resid * rinv[k]
            err += float((resid * weighted).sum())
            if update is not None:
                update += sample_view(weighted, affines[i], volume_shape, y0, y1, box)
        history.append(err)
        if update is not None:
            x += relaxation * cinv * update
    return x, history


def sirt_slab_separable(data: torch.Tensor, affines: torch.Tensor, volume_shape, y0: int, y1: int,
                        iterations: int, relaxation: float, mats) -> tuple[torch.Tensor, list[float]]:
    """:func:`sirt_slab` for an aligned stack (see projector.is_separable): the same bilinear projector
    pair as a row interpolation and the sparse column matrix ``mats = (M, M^T)``; same update."""
    d, _, w = volume_shape
    v, h_img, w_img = data.shape
    m, mt = mats
    dev, dt = data.device, data.dtype
    hs = y1 - y0
    a = affines.to(device=dev, dtype=torch.float64)
    coord = a[:, 1, 1, None] * torch.arange(y0, y1, device=dev, dtype=torch.float64) + a[:, 1, 3, None]
    i0, i1, w0, w1 = linear_taps(coord, h_img)  # (v, hs)
    r0, r1 = int(i0.min()), int(i1.max()) + 1
    i0, i1 = i0 - r0, i1 - r0
    w0, w1 = w0.to(dt)[..., None], w1.to(dt)[..., None]
    vi = torch.arange(v, device=dev)[:, None].expand(v, hs)
    window = data[:, r0:r1]  # (v, nr, W)

    def forward(x):  # (d*w, hs) -> (v, nr, W)
        rows = (mt @ x).view(v, w_img, hs).transpose(1, 2)  # (v, hs, W)
        out = torch.zeros((v, r1 - r0, w_img), device=dev, dtype=dt)
        out.index_put_((vi, i0), rows * w0, accumulate=True)
        out.index_put_((vi, i1), rows * w1, accumulate=True)
        return out

    def back(img):  # (v, nr, W) -> (d*w, hs)
        rows = img[vi, i0] * w0 + img[vi, i1] * w1  # (v, hs, W)
        return m @ rows.transpose(1, 2).reshape(v * w_img, hs)

    rowsum = forward(torch.ones((d * w, hs), device=dev, dtype=dt))
    hit = rowsum > MIN_RAY_VOXELS
    rinv = torch.where(hit, 1.0 / rowsum.clamp(min=1e-30), torch.zeros_like(rowsum))
    b = window * hit
    colsum = back(torch.ones_like(window))
    cinv = torch.where(colsum > 1e-6, 1.0 / colsum.clamp(min=1e-30), torch.zeros_like(colsum))
    x = torch.zeros((d * w, hs), device=dev, dtype=dt)
    history = []
    for it in range(iterations + 1):
        resid = (b - forward(x)) * hit
        weighted = resid * rinv
        history.append(float((resid * weighted).sum()))
        if it < iterations:
            x += relaxation * cinv * back(weighted)
    return x.view(d, w, hs).transpose(1, 2).contiguous(), history


def reconstruct_sirt(stack: torch.Tensor, tilt_deg, xf, volume_shape: tuple[int, int, int], *,
                     iterations: int = 10, relaxation: float = 1.0, binning: int = 1,
                     z_shift_px: float = 0.0, x_tilt_deg: float = 0.0, exclude=None,
                     halo_rows: int | None = None, out=None, on_slab: SlabSink | None = None,
                     slab_rows: int | None = None, max_slab_bytes: int = 64 << 20,
                     residuals: list | None = None, force_2d: bool = False):
    """SIRT tomogram ``(d, h, w)`` from raw views; arguments as :func:`reconstruct_wbp`.

    binning: integer; views are block-averaged first. halo_rows: rows iterated beyond each slab
    (default ``iterations + 2``). residuals: optional list that receives, per iteration, the
    R-weighted squared reprojection error summed over slabs (``iterations + 1`` values).
    An aligned stack (no rotation in ``xf``, no X tilt) uses the separable sparse-matmul projector pair
    (same weights); ``force_2d`` disables that (for tests).
    """
    d, h, w = (int(n) for n in volume_shape)
    if min(d, h, w) < 1:
        raise ValueError(f"volume shape {volume_shape} must be positive")
    if int(binning) != binning or binning < 1:
        raise ValueError(f"SIRT needs an integer binning >= 1, got {binning}")
    binning = int(binning)
    stack, tilt, xf = select_views(stack, tilt_deg, xf, exclude)
    aff = voxel_to_raw_affine(tilt, xf, tuple(stack.shape[-2:]), (d, h, w), binning=binning,
                              z_shift_px=z_shift_px, x_tilt_deg=x_tilt_deg)
    data = bin_views(stack.float(), binning)
    data = data - data.mean(dim=(-2, -1), keepdim=True)
    aff = binned_affine(aff, binning)
    halo = iterations + 2 if halo_rows is None else int(halo_rows)
    result, sink = make_sink((d, h, w), out, on_slab, device=stack.device)
    rows = slab_rows or rows_per_slab((d, h, w), max_slab_bytes)
    total: list[float] = [0.0] * (iterations + 1)
    mats = None
    if is_separable(aff) and not force_2d:
        mats = column_matrix(aff, (d, h, w), data.shape[-1], 0, d, data.device, transpose=True)
        rows_at = aff[:, 1, 1, None] * torch.arange(h, dtype=torch.float64) + aff[:, 1, 3, None]
        if halo_rows is None and bool(((rows_at - rows_at.round()).abs() < 1e-6).all()):
            halo = 0  # every output row reads exactly one image row: slabs are independent
    for y0, y1 in slab_ranges(h, rows):
        ya, yb = max(0, y0 - halo), min(h, y1 + halo)
        if mats is not None:
            slab, hist = sirt_slab_separable(data, aff, (d, h, w), ya, yb, iterations, relaxation, mats)
        else:
            slab, hist = sirt_slab(data, aff, (d, h, w), ya, yb, iterations, relaxation)
        total = [a + b for a, b in zip(total, hist, strict=True)]
        sink(y0, y1, slab[:, y0 - ya:y1 - ya])
    if residuals is not None:
        residuals.extend(total)
    return result
