"""Power spectra from tiles, and their smooth radial background.

Spectra live on the unshifted rfft grid of a ``box`` tile: ``(box, box//2+1)``. The background is the
part of the amplitude spectrum that does not oscillate with the CTF; it is removed before fitting so the
cross-correlation sees only the Thon rings.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def tile_grid(shape: tuple[int, int], box: int, overlap: float = 0.5) -> torch.Tensor:
    """Top-left corners ``(n, 2)`` ``(y, x)`` of ``box`` tiles covering an image ``(h, w)`` evenly."""
    h, w = shape
    if box > min(h, w):
        raise ValueError(f"box {box} is larger than the image {h}x{w}")
    step = max(1, int(round(box * (1.0 - overlap))))

    def starts(n: int) -> list[int]:
        count = max(1, math.ceil((n - box) / step) + 1)
        if count == 1:
            return [(n - box) // 2]
        return [round(i * (n - box) / (count - 1)) for i in range(count)]

    ys, xs = starts(h), starts(w)
    return torch.tensor([(y, x) for y in ys for x in xs], dtype=torch.long)


def tile_centres(corners: torch.Tensor, box: int, shape: tuple[int, int]) -> torch.Tensor:
    """Centres ``(n, 2)`` ``(x, y)`` of tiles with top-left ``corners`` ``(n, 2)`` ``(y, x)``, relative to the
    image centre ``((w-1)/2, (h-1)/2)``."""
    h, w = shape
    return torch.stack([corners[:, 1] + (box - 1) / 2 - (w - 1) / 2,
                        corners[:, 0] + (box - 1) / 2 - (h - 1) / 2], -1).to(torch.float64)


def extract_tiles(image: torch.Tensor, box: int, overlap: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut ``image`` ``(h, w)`` into tiles ``(n, box, box)``; returns the tiles and their centres (x, y)."""
    corners = tile_grid(tuple(image.shape[-2:]), box, overlap)
    tiles = torch.stack([image[y:y + box, x:x + box] for y, x in corners.tolist()])
    return tiles, tile_centres(corners, box, tuple(image.shape[-2:]))


def image_tile_spectra(image: torch.Tensor, box: int, overlap: float = 0.5,
                       chunk: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Power spectra ``(n, box, box//2+1)`` of the tiles of ``image`` ``(h, w)`` and their centres ``(n, 2)``.

    Cuts and transforms ``chunk`` tiles at a time (no full copy of all tiles).
    """
    shape = tuple(image.shape[-2:])
    corners = tile_grid(shape, box, overlap)
    out = torch.empty(len(corners), box, box // 2 + 1, dtype=torch.float32, device=image.device)
    cl = corners.tolist()
    for i in range(0, len(cl), chunk):
        tiles = torch.stack([image[y:y + box, x:x + box] for y, x in cl[i:i + chunk]])
        out[i:i + chunk] = tile_power_spectra(tiles, chunk)
    return out, tile_centres(corners, box, shape)


def edge_taper(box: int, width: int | None = None, device=None, dtype=torch.float32) -> torch.Tensor:
    """Separable cosine edge taper ``(box, box)``: 1 inside, falling to 0 over ``width`` pixels."""
    width = max(1, box // 16) if width is None else width
    ramp = torch.ones(box, device=device, dtype=dtype)
    t = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(width, device=device, dtype=dtype) + 0.5) / width)
    ramp[:width] = t
    ramp[box - width:] = t.flip(0)
    return ramp[:, None] * ramp[None, :]


def tile_power_spectra(tiles: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """Power spectra ``(..., box, box//2+1)`` of tiles ``(..., box, box)``: mean removed, edges tapered.

    Works through ``chunk`` tiles at a time so the intermediate arrays stay in cache.
    """
    box = tiles.shape[-1]
    lead = tiles.shape[:-2]
    flat = tiles.reshape(-1, box, box)
    taper = edge_taper(box, device=tiles.device)
    out = torch.empty(flat.shape[0], box, box // 2 + 1, dtype=torch.float32, device=tiles.device)
    for i in range(0, flat.shape[0], chunk):
        t = flat[i:i + chunk].to(torch.float32)
        t = (t - t.mean(dim=(-2, -1), keepdim=True)) * taper
        f = torch.view_as_real(torch.fft.rfft2(t))
        re, im = f[..., 0], f[..., 1]
        torch.addcmul(re * re, im, im, out=out[i:i + chunk])  # |F|^2 without abs()'s square root
    out[:, 0, 0] = 0.0
    return out.reshape(*lead, box, box // 2 + 1)


def radius_grid(box: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Radial frequency ``(box, box//2+1)`` of the rfft grid in Fourier pixels (Nyquist = box/2)."""
    ky = torch.fft.fftfreq(box, device=device, dtype=dtype) * box
    kx = torch.fft.rfftfreq(box, device=device, dtype=dtype) * box
    return torch.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)


def radial_average(values: torch.Tensor, radius: torch.Tensor, n_bins: int,
                   weight: torch.Tensor | None = None) -> torch.Tensor:
    """Average ``values`` ``(..., h, w)`` in linearly interpolated integer-radius bins: ``(..., n_bins)``.

    ``radius`` ``(h, w)`` is in bin units; bins with no data are filled from their neighbours.
    """
    r0 = radius.floor().long()
    f = (radius - r0).to(values.dtype)
    wt = torch.ones_like(radius, dtype=values.dtype) if weight is None else weight.to(values.dtype)
    flat = values.reshape(-1, radius.numel())
    total = torch.zeros(flat.shape[0], n_bins + 1, dtype=values.dtype, device=values.device)
    count = torch.zeros(n_bins + 1, dtype=values.dtype, device=values.device)
    for idx, frac in ((r0, 1 - f), (r0 + 1, f)):
        i = idx.clamp(0, n_bins).reshape(-1)
        w = (frac * wt).reshape(-1) * (idx.reshape(-1) <= n_bins)
        total.index_add_(1, i, flat * w)
        count.index_add_(0, i, w)
    prof = total[:, :n_bins] / count[:n_bins].clamp_min(1e-12)
    empty = count[:n_bins] < 1e-6
    if empty.any():
        good = torch.nonzero(~empty).squeeze(1)
        nearest = good[(torch.arange(n_bins, device=values.device)[:, None] - good[None, :]).abs().argmin(1)]
        prof = prof[:, nearest]
    return prof.reshape(values.shape[:-2] + (n_bins,))


def sample_profile(profile: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of a 1D ``profile`` ``(n,)`` at fractional bin positions ``radius`` (any shape)."""
    n = profile.shape[-1]
    r = radius.clamp(0, n - 1)
    r0 = r.floor().long().clamp(max=n - 2)
    f = r - r0
    return profile[r0] * (1 - f) + profile[r0 + 1] * f


def running_mean(profile: torch.Tensor, half_width: torch.Tensor) -> torch.Tensor:
    """Mean of profiles ``(..., n)`` over ``[i - hw_i, i + hw_i]`` with a per-bin half width ``(n,)`` (bins)."""
    n = profile.shape[-1]
    c = torch.cumsum(profile.to(torch.float64), -1)
    c = torch.cat([torch.zeros_like(c[..., :1]), c], -1)
    idx = torch.arange(n, device=profile.device, dtype=torch.float64)
    hw = half_width.to(torch.float64).clamp_min(0.5)
    lo = (idx - hw).clamp(0, n)
    hi = (idx + hw + 1).clamp(0, n)

    def cum(x):  # cumulative sum at fractional positions
        x0 = x.floor().long().clamp(max=n - 1)
        return c[..., x0] + (x - x0) * (c[..., (x0 + 1).clamp(max=n)] - c[..., x0])

    return ((cum(hi) - cum(lo)) / (hi - lo).clamp_min(1e-9)).to(profile.dtype)


def smooth_background(profile: torch.Tensor, half_width: torch.Tensor, n_iter: int = 3) -> torch.Tensor:
    """Background under an oscillating 1D ``profile``: repeated running means over ``half_width`` bins.

    Repeating the box filter makes it close to a Gaussian, which leaves less ripple from the rings.
    """
    b = profile
    for _ in range(n_iter):
        b = running_mean(b, half_width / math.sqrt(n_iter))
    return b


def rescale_spectra(power: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Resample spectra ``(n, box, box//2+1)`` at radially scaled frequencies: ``out(k) = in(k * scale(k))``.

    ``scale`` ``(n, box, box//2+1)``, positive: a scaled frequency stays in the kx >= 0 half plane, so the
    rfft half (rows re-centred) is all that is sampled.
    """
    n, box, wr = power.shape
    half = torch.fft.fftshift(power, dim=-2)  # rows: ky from -box//2 .. , centre at row box//2
    ky = torch.fft.fftfreq(box, device=power.device) * box
    kx = torch.fft.rfftfreq(box, device=power.device) * box
    gx = (kx[None, None, :] * scale) * (2.0 / (wr - 1)) - 1.0
    gy = (ky[None, :, None] * scale + box // 2) * (2.0 / (box - 1)) - 1.0
    grid = torch.stack([gx, gy], -1).to(half.dtype)
    out = F.grid_sample(half[:, None], grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out[:, 0]
