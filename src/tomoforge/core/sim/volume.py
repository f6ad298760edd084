"""Voxelize a :class:`Specimen` into a truth volume ``(d, h, w)`` (potential above ice, V, voxel averages).

Voxel ``(k, j, i)`` has its centre at ``((i, j, k) - (N - 1) / 2) * voxel_a`` Å from the volume centre,
the same origin as every position in the specimen, so a projection of this volume with
core/geometry.projection_matrices is a view of the simulated specimen (minus texture and gold absorption).
"""

from __future__ import annotations

import math

import torch

from tomoforge.core.sim.specimen import Specimen


def _axis(n: int, voxel_a: float) -> torch.Tensor:
    return (torch.arange(n, dtype=torch.float64) - (n - 1) / 2) * voxel_a


def voxelize(spec: Specimen, shape_zyx: tuple[int, int, int], voxel_a: float, chunk: int = 20000) -> torch.Tensor:
    """Truth volume ``(d, h, w)`` float32."""
    d, h, w = shape_zyx
    vol = torch.zeros(d * h * w, dtype=torch.float64)
    half = torch.tensor([(w - 1) / 2, (h - 1) / 2, (d - 1) / 2], dtype=torch.float64)
    dims = torch.tensor([w, h, d])

    # Gaussian blobs, integrated over each voxel (separable error functions)
    c = spec.blob_xyz_a / voxel_a + half  # voxel coordinates (x, y, z)
    s = spec.blob_sigma_a / voxel_a
    p_half = (3.5 * s).ceil().long().clamp_min(1)
    inside = ((c > -4 * s[:, None]) & (c < dims + 4 * s[:, None])).all(1)
    mass = spec.blob_peak_v * (2 * math.pi) ** 1.5 * s ** 3  # V voxel^3
    for p in torch.unique(p_half[inside]).tolist():
        sel = torch.nonzero(inside & (p_half == p)).flatten()
        offs = torch.arange(-p, p + 1, dtype=torch.float64)
        for st in range(0, len(sel), chunk):
            idx = sel[st:st + chunk]
            cc, ss = c[idx], s[idx]
            g = cc.round()[:, :, None] + offs  # (n, 3, P)
            wts = torch.special.ndtr((g + 0.5 - cc[:, :, None]) / ss[:, None, None]) - torch.special.ndtr(
                (g - 0.5 - cc[:, :, None]) / ss[:, None, None])
            val = mass[idx, None, None, None] * wts[:, 2, :, None, None] * wts[:, 1, None, :, None] * \
                wts[:, 0, None, None, :]
            gi = g.long()
            iz = gi[:, 2, :, None, None].expand_as(val)
            iy = gi[:, 1, None, :, None].expand_as(val)
            ix = gi[:, 0, None, None, :].expand_as(val)
            ok = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h) & (iz >= 0) & (iz < d)
            vol.index_add_(0, ((iz * h + iy) * w + ix)[ok], val[ok])

    # shells: radial partial-volume fraction of each voxel
    vol3 = vol.view(d, h, w)
    ax, ay, az = _axis(w, voxel_a), _axis(h, voxel_a), _axis(d, voxel_a)
    for i in range(len(spec.sphere_xyz_a)):
        x0, y0, z0 = spec.sphere_xyz_a[i].tolist()
        r_out, r_in = float(spec.sphere_r_out_a[i]), float(spec.sphere_r_in_a[i])
        rng_idx = []
        for a, c0 in ((az, z0), (ay, y0), (ax, x0)):
            sel = torch.nonzero((a >= c0 - r_out - voxel_a) & (a <= c0 + r_out + voxel_a)).flatten()
            rng_idx.append(sel)
        if any(len(r) == 0 for r in rng_idx):
            continue
        zz, yy, xx = (a[r] for a, r in zip((az, ay, ax), rng_idx, strict=True))
        dist = torch.sqrt((zz - z0)[:, None, None] ** 2 + (yy - y0)[None, :, None] ** 2 + (xx - x0)[None, None, :] ** 2)
        frac = ((r_out - dist) / voxel_a + 0.5).clamp(0, 1)
        if r_in > 0:
            frac = frac - ((r_in - dist) / voxel_a + 0.5).clamp(0, 1)
        z_sl = slice(int(rng_idx[0][0]), int(rng_idx[0][-1]) + 1)
        y_sl = slice(int(rng_idx[1][0]), int(rng_idx[1][-1]) + 1)
        x_sl = slice(int(rng_idx[2][0]), int(rng_idx[2][-1]) + 1)
        vol3[z_sl, y_sl, x_sl] += float(spec.sphere_v[i]) * frac
    return vol3.to(torch.float32)


def ring_map(radius_a: float, box_px: int, voxel_a: float, peak_v: float = 2.5) -> torch.Tensor:
    """Reference map ``(box, box, box)`` of one C6 ring in its own frame (symmetry axis along Z)."""
    from tomoforge.core.sim.specimen import c6_ring_blobs

    xyz, sig, amp = c6_ring_blobs(radius_a, peak_v)
    spec = Specimen.empty()
    spec.add_blobs(xyz, sig, amp)
    return voxelize(spec, (box_px, box_px, box_px), voxel_a)
