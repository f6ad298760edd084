"""Analytic projection of a :class:`Specimen` into one raw view, split into height bins.

Each object is projected along the beam exactly: a 3D Gaussian gives a 2D Gaussian, integrated over each
pixel with error functions; a uniform spherical shell gives its chord length, averaged over 3x3 sub-pixels.
The result is a stack ``(k, h, w)`` of projected phase (rad) and absorption, one image per height bin, so that
the CTF can use the right defocus for every object (tilted images and thick specimens).

Raw coordinates follow core/geometry.project_points: an object's raw position is
``invert_xf(xf)`` applied to its aligned projection. The canvas has a margin ``m`` on every side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from tomoforge.core.geometry import image_center, project_points, rotation_y
from tomoforge.core.sim.specimen import Specimen


@dataclass
class HeightBins:
    """Bin centres ``h0 + i * step`` (Å), height measured along the beam toward the source."""

    h0_a: float
    step_a: float
    n: int

    def centres(self) -> torch.Tensor:
        return self.h0_a + self.step_a * torch.arange(self.n, dtype=torch.float64)

    def split(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Lower bin index and the weights of the lower and upper bin (linear interpolation)."""
        if self.n == 1:
            z = torch.zeros_like(h, dtype=torch.long)
            return z, torch.ones_like(h), torch.zeros_like(h)
        f = ((h - self.h0_a) / self.step_a).clamp(0, self.n - 1 - 1e-9)
        i = f.floor().long()
        w1 = f - i
        return i, 1 - w1, w1


def heights_a(xyz_a: torch.Tensor, tilt_deg: float) -> torch.Tensor:
    """Height of points ``(n, 3)`` along the beam at a tilt: ``-X sin(theta) + Z cos(theta)`` (Å)."""
    r = rotation_y(float(tilt_deg))
    return xyz_a.to(torch.float64) @ r[2]


def raw_positions_px(xyz_a: torch.Tensor, tilt_deg: float, xf: torch.Tensor, image_shape: tuple[int, int],
                     pixel_size_a: float) -> torch.Tensor:
    """Raw pixel coordinates ``(n, 2)`` (x, y) of points given in Å from the volume centre."""
    t = torch.tensor([float(tilt_deg)], dtype=torch.float64)
    return project_points(xyz_a / pixel_size_a, t, xf.reshape(1, 2, 3), image_shape)[0]


def _splat(buf: torch.Tensor, bins: torch.Tensor, iy: torch.Tensor, ix: torch.Tensor, val: torch.Tensor) -> None:
    """Add ``val`` at ``(bins, iy, ix)`` of ``buf`` ``(k, h, w)``, dropping what falls outside."""
    k, h, w = buf.shape
    ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    flat = (bins * h + iy) * w + ix
    buf.view(-1).index_add_(0, flat[ok], val[ok].to(buf.dtype))


def blob_half_width(sigma_px: torch.Tensor) -> torch.Tensor:
    """Patch half-width (px) drawn around a Gaussian: 3 sigma leaves 0.3 % of its integral out."""
    return (3.0 * sigma_px).ceil().long().clamp_min(1)


def render_blobs(buf: torch.Tensor, uv: torch.Tensor, sigma_px: torch.Tensor, weight: torch.Tensor,
                 bin_index: torch.Tensor, pad: int, max_values: int = 4_000_000) -> None:
    """Add pixel-integrated 2D Gaussians ``weight`` (integral, rad px²) at raw ``uv`` ``(n, 2)``.

    ``buf`` ``(k, H + 2 pad, W + 2 pad)`` is the canvas padded by ``pad`` >= 2 * the largest half-width, and
    every centre lies within ``half-width`` of the canvas, so no patch leaves ``buf`` (no masking needed).
    ``bin_index`` ``(n,)``: the height bin of each blob (nearest).
    """
    if len(uv) == 0:
        return
    _, hh, ww = buf.shape
    flat_buf = buf.view(-1)
    half = blob_half_width(sigma_px)
    for p in torch.unique(half).tolist():
        sel = torch.nonzero(half == p).flatten()
        offs = torch.arange(-p, p + 1, dtype=torch.float64)
        chunk = max(256, max_values // (2 * p + 1) ** 2)  # bounded memory at any pixel size
        for s in range(0, len(sel), chunk):
            idx = sel[s:s + chunk]
            u, v, sg = uv[idx, 0], uv[idx, 1], sigma_px[idx]
            cu, cv = u.round(), v.round()
            gx = cu[:, None] + offs  # (n, P)
            gy = cv[:, None] + offs
            wx = torch.special.ndtr((gx + 0.5 - u[:, None]) / sg[:, None]) - torch.special.ndtr(
                (gx - 0.5 - u[:, None]) / sg[:, None])
            wy = torch.special.ndtr((gy + 0.5 - v[:, None]) / sg[:, None]) - torch.special.ndtr(
                (gy - 0.5 - v[:, None]) / sg[:, None])
            wy = (wy * weight[idx, None]).to(buf.dtype)
            val = (wy[:, :, None] * wx.to(buf.dtype)[:, None, :]).flatten()
            row = (bin_index[idx, None] * hh + gy.long() + pad) * ww  # (n, P)
            flat = (row[:, :, None] + (gx.long() + pad)[:, None, :]).flatten()
            flat_buf.index_add_(0, flat, val)


def chord_a(r_a: torch.Tensor, r_in: torch.Tensor, r_out: torch.Tensor) -> torch.Tensor:
    """Path length (Å) through a shell ``r_in..r_out`` of a ray at distance ``r_a`` from its centre."""
    out = 2 * (r_out ** 2 - r_a ** 2).clamp_min(0).sqrt()
    return out - 2 * (r_in ** 2 - r_a ** 2).clamp_min(0).sqrt()


def render_spheres(phase: torch.Tensor, absorb: torch.Tensor, uv: torch.Tensor, spec: Specimen,
                   idx: torch.Tensor, px_a: float, sigma_e: float, bins: HeightBins, h: torch.Tensor,
                   sub: int = 3) -> None:
    """Add shells/spheres ``idx`` of ``spec`` (raw centres ``uv``), sub-pixel average of the chord.

    Spheres under 20 px radius (beads) are averaged over ``sub`` x ``sub`` sub-pixels; big shells once.
    """
    for j in range(len(idx)):
        i = int(idx[j])
        r_in, r_out = spec.sphere_r_in_a[i], spec.sphere_r_out_a[i]
        p = int(math.ceil(float(r_out) / px_a)) + 1
        ns = sub if p < 20 else 1
        offs = (torch.arange(ns, dtype=torch.float64) + 0.5) / ns - 0.5
        cu, cv = float(uv[j, 0].round()), float(uv[j, 1].round())
        g = torch.arange(-p, p + 1, dtype=torch.float64)
        gx = cu + g
        gy = cv + g
        # sub-pixel sample positions, flattened to 2D (small many-dimensional tensors are slow in torch)
        dx = ((gx[:, None] + offs).flatten() - uv[j, 0]) * px_a
        dy = ((gy[:, None] + offs).flatten() - uv[j, 1]) * px_a
        r = torch.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)
        npx = len(g)
        c = chord_a(r, r_in, r_out).reshape(npx, ns, npx, ns).mean(dim=(1, 3))
        if not torch.any(c > 0):
            continue
        b0, w0, w1 = bins.split(h[j:j + 1])
        iy = gy.long()[:, None].expand(c.shape)
        ix = gx.long()[None, :].expand(c.shape)
        for b, wgt in ((b0, w0), (b0 + 1, w1)):
            if float(wgt) == 0 or int(b) >= bins.n:
                continue
            bb = b.expand(c.shape)
            _splat(phase, bb, iy, ix, c * (sigma_e * float(spec.sphere_v[i]) * float(wgt)))
            if float(spec.sphere_absorption_per_a[i]):
                _splat(absorb, bb, iy, ix, c * (float(spec.sphere_absorption_per_a[i]) * float(wgt)))


def project_view(spec: Specimen, tilt_deg: float, xf: torch.Tensor, image_shape: tuple[int, int],
                 pixel_size_a: float, sigma_e: float, margin_px: int, bin_step_a: float | None,
                 texture: torch.Tensor | None = None, slab_tilt_deg: float = 0.0,
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Projected phase and absorption ``(k, H, W)`` on the canvas ``H = h + 2 m``, and bin heights ``(k,)`` Å.

    ``bin_step_a=None`` puts everything into one bin at height 0 (no defocus gradient).
    ``texture`` ``(H, W)`` is an extra phase image placed at the slab mid-plane height of each pixel.
    ``slab_tilt_deg`` is the tilt at which the slab is perpendicular to the beam (lamella pretilt).
    """
    h_img, w_img = image_shape
    m = margin_px
    big_h, big_w = h_img + 2 * m, w_img + 2 * m
    mag = float(torch.linalg.det(xf[:2, :2]).abs().sqrt())
    px_raw = pixel_size_a * mag  # a raw pixel covers this many Å of specimen

    # cull: objects whose projection reaches the canvas
    uv_b = raw_positions_px(spec.blob_xyz_a, tilt_deg, xf, image_shape, pixel_size_a) + m
    s_px = spec.blob_sigma_a / px_raw
    hw = blob_half_width(s_px)
    keep_b = ((uv_b[:, 0] > -hw) & (uv_b[:, 0] < big_w - 1 + hw) & (uv_b[:, 1] > -hw)
              & (uv_b[:, 1] < big_h - 1 + hw))
    uv_s = raw_positions_px(spec.sphere_xyz_a, tilt_deg, xf, image_shape, pixel_size_a) + m
    r_px = spec.sphere_r_out_a / px_raw + 2
    keep_s = ((uv_s[:, 0] > -r_px) & (uv_s[:, 0] < big_w + r_px) & (uv_s[:, 1] > -r_px)
              & (uv_s[:, 1] < big_h + r_px))
    hb = heights_a(spec.blob_xyz_a[keep_b], tilt_deg)
    hs = heights_a(spec.sphere_xyz_a[keep_s], tilt_deg)

    # texture heights: the slab mid-plane under each canvas pixel
    ht = None
    if texture is not None:
        # aligned x of every canvas pixel: first row of the xf (cheaper than apply_xf on all pixels)
        c = image_center(image_shape)
        xs = torch.arange(big_w, dtype=torch.float64) - m - c[0]
        ys = torch.arange(big_h, dtype=torch.float64) - m - c[1]
        a = xf.to(torch.float64)
        x_al = ((a[0, 0] * xs[None, :] + a[0, 1] * ys[:, None]) + a[0, 2]).flatten() * pixel_size_a
        ht = -x_al * math.tan(math.radians(tilt_deg - slab_tilt_deg))

    if bin_step_a is None:
        bins = HeightBins(0.0, 1.0, 1)
    else:
        all_h = [x for x in (hb, hs, ht) if x is not None and len(x)]
        lo = min(float(x.min()) for x in all_h) if all_h else 0.0
        hi = max(float(x.max()) for x in all_h) if all_h else 0.0
        n = int(math.floor((hi - lo) / bin_step_a)) + 2
        bins = HeightBins(lo, bin_step_a, n)

    # blobs go into a padded canvas (no bounds checks), nearest height bin
    pad = 2 * int(hw[keep_b].max()) + 2 if bool(keep_b.any()) else 0
    padded = torch.zeros(bins.n, big_h + 2 * pad, big_w + 2 * pad, dtype=torch.float32)
    # a 3D Gaussian of peak V and width s integrates to V (2 pi)^1.5 s^3 (V Å^3); per raw pixel area
    weight = sigma_e * spec.blob_peak_v[keep_b] * (2 * math.pi) ** 1.5 * spec.blob_sigma_a[keep_b] ** 3 / px_raw ** 2
    b0, w0, w1 = bins.split(hb)
    render_blobs(padded, uv_b[keep_b], s_px[keep_b], weight, b0 + (w1 > 0.5).long(), pad)
    phase = padded[:, pad:pad + big_h, pad:pad + big_w].contiguous()
    del padded
    absorb = torch.zeros_like(phase)
    render_spheres(phase, absorb, uv_s[keep_s], spec, torch.nonzero(keep_s).flatten(), px_raw, sigma_e, bins, hs)
    if texture is not None:
        b0, w0, w1 = bins.split(ht)
        flat_pix = torch.arange(big_h * big_w)
        pv = phase.view(-1)
        tex = texture.flatten().to(torch.float64)
        pv.index_add_(0, b0 * big_h * big_w + flat_pix, (tex * w0).to(phase.dtype))
        if bins.n > 1:
            pv.index_add_(0, (b0 + 1).clamp_max(bins.n - 1) * big_h * big_w + flat_pix, (tex * w1).to(phase.dtype))
    return phase, absorb, bins.centres()
