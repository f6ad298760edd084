"""Matched back-projector and forward projector between a volume slab and the raw tilt images.

The alignment is applied in a single interpolation: each voxel is mapped straight to raw-image pixel
coordinates (tilt, X-axis tilt, then the inverse ``.xf``) and the raw image is sampled there bilinearly.
The forward projector is the exact adjoint of that sampling (``grid_sample``'s input gradient), so
SIRT iterates a matched pair.

Volume voxel ``(z, y, x)`` (0-based) sits at specimen coordinates, in unbinned pixels and relative to the
tilt axis / image centre::

    X = b (x - (w-1)/2),   Y = b (y - (h-1)/2),   Z = b (z - (d-1)/2) - z_shift_px

with ``b`` the binning. ``z_shift_px`` follows IMOD's SHIFT sense: a positive value moves the specimen up
(towards higher z) in the output. The specimen point then projects as in ``core/geometry.py``.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F

from tomoforge.core.geometry import image_center, invert_xf, rotation_x, rotation_y


def voxel_to_raw_affine(tilt_deg: torch.Tensor, xf: torch.Tensor, image_shape: tuple[int, int],
                        volume_shape: tuple[int, int, int], *, binning: float = 1.0,
                        z_shift_px: float = 0.0, x_tilt_deg: float = 0.0) -> torch.Tensor:
    """Affine maps ``(v, 2, 4)`` (float64) from voxel index ``(x, y, z, 1)`` to raw pixel ``(x, y)``.

    tilt_deg: ``(v,)``; xf: ``(v, 2, 3)`` raw-to-aligned; image_shape: ``(h, w)`` of the raw images;
    volume_shape: ``(d, h, w)`` in voxels of ``binning`` raw pixels.
    """
    tilt = torch.as_tensor(tilt_deg, dtype=torch.float64).cpu().reshape(-1)
    xf = torch.as_tensor(xf, dtype=torch.float64).cpu()
    b = float(binning)
    vc = image_center(volume_shape)  # (x, y, z) centre in voxels
    # voxel -> specimen (X, Y, Z) in unbinned pixels: b * (p - vc) - (0, 0, z_shift)
    vox = torch.zeros(3, 4, dtype=torch.float64)
    vox[:, :3] = torch.eye(3, dtype=torch.float64) * b
    vox[:, 3] = -b * vc
    vox[2, 3] -= float(z_shift_px)
    rot = rotation_y(tilt)[..., :2, :] @ rotation_x(float(x_tilt_deg))  # (v, 2, 3) specimen -> aligned
    ic = image_center(image_shape)
    inv = invert_xf(xf)  # aligned -> raw about ic
    a_inv = inv[..., :2, :2]
    lin = a_inv @ rot @ vox[:, :3]  # (v, 2, 3)
    off = (a_inv @ (rot @ vox[:, 3:4]))[..., 0] + inv[..., :2, 2] + ic
    return torch.cat([lin, off[..., None]], -1)


def voxels_to_specimen(points_xyz: torch.Tensor, volume_shape: tuple[int, int, int], *, binning: float = 1.0,
                       z_shift_px: float = 0.0) -> torch.Tensor:
    """Voxel indices ``(n, 3)`` ``(x, y, z)`` of a reconstruction to specimen coordinates ``(n, 3)`` in
    unbinned pixels from the tilt axis (what geometry.project_points takes); inverse of the mapping
    in the module docstring."""
    vc = image_center(volume_shape).to(points_xyz)
    out = (points_xyz.to(torch.float64) - vc) * float(binning)
    out[:, 2] -= float(z_shift_px)
    return out


def _slab_box(aff: torch.Tensor, volume_shape, y0: int, y1: int, image_shape, margin: int = 2):
    """Raw-image crop ``(r0, r1, c0, c1)`` that holds every sample of rows ``y0:y1``; None if outside."""
    d, _, w = volume_shape
    corners = torch.tensor([[x, y, z, 1.0] for x in (0, w - 1) for y in (y0, y1 - 1) for z in (0, d - 1)],
                           dtype=torch.float64)
    uv = corners @ aff.T  # (8, 2)
    h_img, w_img = image_shape
    c0 = max(0, math.floor(uv[:, 0].min().item()) - margin)
    c1 = min(w_img, math.ceil(uv[:, 0].max().item()) + margin + 1)
    r0 = max(0, math.floor(uv[:, 1].min().item()) - margin)
    r1 = min(h_img, math.ceil(uv[:, 1].max().item()) + margin + 1)
    if c0 >= c1 or r0 >= r1:
        return None
    return r0, r1, c0, c1


def _slab_grid(aff: torch.Tensor, volume_shape, y0: int, y1: int, box, device, dtype) -> torch.Tensor:
    """``grid_sample`` grid ``(1, d*(y1-y0), w, 2)`` of the slab's voxels in the crop ``box``."""
    d, _, w = volume_shape
    r0, r1, c0, c1 = box
    hc, wc = r1 - r0, c1 - c0
    # Fold crop offset and align_corners=False normalisation into the affine: g = (2 (u - c0) + 1) / wc - 1.
    scale = torch.tensor([2.0 / wc, 2.0 / hc], dtype=torch.float64)
    shift = torch.tensor([(1.0 - 2.0 * c0) / wc - 1.0, (1.0 - 2.0 * r0) / hc - 1.0], dtype=torch.float64)
    a = aff * scale[:, None]
    a[:, 3] += shift
    a = a.to(device=device, dtype=dtype)
    xs = torch.arange(w, device=device, dtype=dtype)
    ys = torch.arange(y0, y1, device=device, dtype=dtype)
    zs = torch.arange(d, device=device, dtype=dtype)
    # (d, hs, 1) + (w, 1) -> (d, hs, w, 2) in one broadcast add per term (writing through a strided
    # view of the grid is an order of magnitude slower on CPU).
    zy = (zs[:, None, None] * a[:, 2] + a[:, 3]) + ys[None, :, None] * a[:, 1]  # (d, hs, 2)
    grid = zy[:, :, None, :] + xs[:, None] * a[:, 0]  # (d, hs, w, 2)
    return grid.view(1, d * (y1 - y0), w, 2)


def slab_boxes(affines: torch.Tensor, volume_shape, y0: int, y1: int, image_shape) -> list:
    """Per view, the raw-image crop ``(r0, r1, c0, c1)`` that rows ``y0:y1`` touch (None: none)."""
    return [_slab_box(affines[i], volume_shape, y0, y1, image_shape) for i in range(affines.shape[0])]


def sample_view(crop: torch.Tensor, aff: torch.Tensor, volume_shape, y0: int, y1: int, box) -> torch.Tensor:
    """Bilinear samples ``(d, y1-y0, w)`` of one raw view's ``crop`` (rows/cols ``box``) at the voxels."""
    d, _, w = volume_shape
    grid = _slab_grid(aff, volume_shape, y0, y1, box, crop.device, crop.dtype)
    s = F.grid_sample(crop[None, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return s.view(d, y1 - y0, w)


def spread_view(slab: torch.Tensor, aff: torch.Tensor, volume_shape, y0: int, y1: int, box) -> torch.Tensor:
    """Adjoint of :func:`sample_view`: the crop ``(r1-r0, c1-c0)`` that voxels ``slab`` project to."""
    d, _, w = volume_shape
    r0, r1, c0, c1 = box
    grid = _slab_grid(aff, volume_shape, y0, y1, box, slab.device, slab.dtype)
    shape_only = torch.empty((1, 1, r1 - r0, c1 - c0), device=slab.device, dtype=slab.dtype)
    g_in, _ = torch.ops.aten.grid_sampler_2d_backward(slab.reshape(1, 1, d * (y1 - y0), w), shape_only, grid,
                                                      0, 0, False, [True, False])
    return g_in[0, 0]


def backproject_slab(images: torch.Tensor, affines: torch.Tensor, volume_shape: tuple[int, int, int],
                     y0: int, y1: int, *, weights: torch.Tensor | None = None,
                     out: torch.Tensor | None = None) -> torch.Tensor:
    """Sum over views of the raw images sampled at the voxels of rows ``y0:y1``.

    images: ``(v, H, W)`` raw (filtered) views; affines: ``(v, 2, 4)`` from :func:`voxel_to_raw_affine`;
    weights: optional ``(v,)`` per-view factors. Returns (or accumulates into) ``(d, y1-y0, w)``.
    Samples outside a raw image contribute 0.
    """
    d, _, w = volume_shape
    if out is None:
        out = torch.zeros((d, y1 - y0, w), device=images.device, dtype=images.dtype)
    for i, box in enumerate(slab_boxes(affines, volume_shape, y0, y1, images.shape[-2:])):
        if box is None:
            continue
        r0, r1, c0, c1 = box
        crop = images[i, r0:r1, c0:c1]
        if weights is not None:
            crop = crop * weights[i]
        out += sample_view(crop, affines[i], volume_shape, y0, y1, box)
    return out


def forward_project_slab(volume_slab: torch.Tensor, affines: torch.Tensor, y0: int, y1: int,
                         volume_shape: tuple[int, int, int], image_shape: tuple[int, int],
                         out: torch.Tensor | None = None) -> torch.Tensor:
    """Exact adjoint of :func:`backproject_slab`: project a slab ``(d, y1-y0, w)`` into raw views.

    Returns (or accumulates into) ``(v, H, W)``; each voxel spreads its value over the four raw pixels
    that bilinear sampling would have read, with the same weights (the matched transpose).
    """
    v = affines.shape[0]
    if out is None:
        out = torch.zeros((v,) + tuple(image_shape), device=volume_slab.device, dtype=volume_slab.dtype)
    for i, box in enumerate(slab_boxes(affines, volume_shape, y0, y1, image_shape)):
        if box is None:
            continue
        r0, r1, c0, c1 = box
        out[i, r0:r1, c0:c1] += spread_view(volume_slab, affines[i], volume_shape, y0, y1, box)
    return out


# --------------------------------------------------------------------------------- separable fast path
def is_separable(affines: torch.Tensor, tol: float = 1e-9) -> bool:
    """True when raw x depends only on voxel (x, z) and raw y only on voxel y for every view (an
    already-aligned stack: no in-plane rotation, no X-axis tilt). Bilinear sampling then factorises
    into a row interpolation shared by all (x, z) and a column interpolation shared by all y."""
    a = affines
    return bool((a[:, 0, 1].abs() < tol).all() and (a[:, 1, 0].abs() < tol).all()
                and (a[:, 1, 2].abs() < tol).all())


def linear_taps(coord: torch.Tensor, n: int):
    """Indices ``(i0, i1)`` clamped into ``0..n-1`` and weights ``(w0, w1)`` that are 0 for taps outside
    the image (exactly grid_sample's zero padding, per tap)."""
    i0f = coord.floor()
    f = coord - i0f
    i0 = i0f.long()
    w0 = (1 - f) * ((i0 >= 0) & (i0 < n))
    w1 = f * ((i0 + 1 >= 0) & (i0 + 1 < n))
    return i0.clamp(0, n - 1), (i0 + 1).clamp(0, n - 1), w0, w1


def column_matrix(affines: torch.Tensor, volume_shape, width: int, z0: int, z1: int, device,
                  dtype=torch.float32, transpose: bool = False):
    """Sparse CSR ``(nz * w, v * width)``: row ``(z, x)`` holds the two linear-interpolation taps of every
    view along raw x (separable case). Multiplying it with the row-interpolated views ``(v * width, hs)``
    back-projects (and sums over views) in one sparse matmul. ``transpose``: also return its transpose
    (CSR), the matched forward projector."""
    _, _, w = volume_shape
    v = affines.shape[0]
    a = affines.to(device=device, dtype=torch.float64)
    x = torch.arange(w, device=device, dtype=torch.float64)
    z = torch.arange(z0, z1, device=device, dtype=torch.float64)
    u = a[:, 0, 0, None, None] * x + a[:, 0, 2, None, None] * z[:, None] + a[:, 0, 3, None, None]  # (v,nz,w)
    i0, i1, w0, w1 = linear_taps(u, width)
    base = (torch.arange(v, device=device) * width)[:, None, None]
    cols = torch.stack([i0 + base, i1 + base], -1).permute(1, 2, 0, 3).reshape(-1)
    vals = torch.stack([w0, w1], -1).permute(1, 2, 0, 3).reshape(-1).to(dtype)
    n_rows = (z1 - z0) * w
    # int32 indices halve the matrix's memory whenever they fit.
    idx = torch.int32 if max(v * width, n_rows * 2 * v) < 2**31 - 1 else torch.int64
    cols = cols.to(idx)
    crow = torch.arange(0, n_rows * 2 * v + 1, 2 * v, device=device, dtype=idx)
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        m = torch.sparse_csr_tensor(crow, cols, vals, size=(n_rows, v * width), check_invariants=False)
        return (m, m.t().to_sparse_csr()) if transpose else m


def interpolate_rows(images: torch.Tensor, affines: torch.Tensor, y0: int, y1: int) -> torch.Tensor:
    """Separable case: each view's rows at the slab's raw y, ``(v * W, hs)`` (transposed for the matmul)."""
    v, h, w = images.shape
    a = affines.to(device=images.device, dtype=torch.float64)
    y = torch.arange(y0, y1, device=images.device, dtype=torch.float64)
    coord = a[:, 1, 1, None] * y + a[:, 1, 3, None]  # (v, hs)
    i0, i1, w0, w1 = linear_taps(coord, h)
    vi = torch.arange(v, device=images.device)[:, None]
    rows = images[vi, i0] * w0[..., None].to(images.dtype) + images[vi, i1] * w1[..., None].to(images.dtype)
    return rows.transpose(1, 2).reshape(v * w, y1 - y0)  # (v, hs, W) -> (v*W, hs)
