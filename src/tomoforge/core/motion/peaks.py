"""Subpixel peak of a (periodic) cross-correlation map."""

from __future__ import annotations

import torch


def find_peak(cc: torch.Tensor, max_shift_px: float | None = None) -> torch.Tensor:
    """Position ``(..., 2)`` as ``(dy, dx)`` of the maximum of periodic maps ``(..., h, w)``.

    Index 0 is zero shift; indices past half wrap to negative shifts. The subpixel offset comes from a
    parabola through the peak and its two neighbours along each axis (exact at zero offset, which is where
    the iterative alignment converges). ``max_shift_px`` limits the search radius.
    """
    h, w = cc.shape[-2:]
    fy = torch.fft.fftfreq(h, 1 / h, device=cc.device)
    fx = torch.fft.fftfreq(w, 1 / w, device=cc.device)
    search = cc
    if max_shift_px is not None:
        inside = (fy[:, None] ** 2 + fx[None, :] ** 2) <= max_shift_px ** 2
        search = cc.masked_fill(~inside, float("-inf"))
    flat = search.reshape(cc.shape[:-2] + (h * w,)).argmax(-1)
    iy, ix = flat // w, flat % w

    def at(dy: int, dx: int) -> torch.Tensor:
        idx = ((iy + dy) % h) * w + (ix + dx) % w
        return cc.reshape(cc.shape[:-2] + (h * w,)).gather(-1, idx[..., None])[..., 0]

    c0 = at(0, 0)
    sub = []
    for lo, hi in ((at(-1, 0), at(1, 0)), (at(0, -1), at(0, 1))):
        denom = lo - 2 * c0 + hi
        d = torch.where(denom < 0, 0.5 * (lo - hi) / denom.clamp(max=-1e-30), torch.zeros_like(c0))
        sub.append(d.clamp(-0.5, 0.5))
    return torch.stack([fy[iy] + sub[0], fx[ix] + sub[1]], -1)
