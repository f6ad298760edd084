"""X-ray and hot-pixel removal in the manner of IMOD's ccderaser.

A pixel is a peak when it lies more than ``peak_sd`` standard deviations from the mean of its
neighbourhood (a square annulus: the pixel's close surroundings are left out so that a multi-pixel X-ray
does not hide itself). Statistics are computed twice, the second time without the first pass's peaks, so a
cluster of X-rays does not inflate the SD around it. Peaks grow into adjacent pixels that exceed the lower
``grow_sd`` criterion (up to ``grow_radius`` pixels away), and everything found is replaced by
interpolation from the surrounding good pixels (normalised Gaussian convolution).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def box_sum(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Sum over the ``(2r+1)^2`` square around each pixel of ``(..., h, w)`` (zero outside), via cumsums."""
    if radius <= 0:
        return x
    h, w = x.shape[-2:]
    c = F.pad(x.to(torch.float64), (radius + 1, radius, radius + 1, radius)).cumsum(-2).cumsum(-1)
    k = 2 * radius + 1
    return (c[..., k:k + h, k:k + w] - c[..., :h, k:k + w] - c[..., k:k + h, :w] + c[..., :h, :w]).to(x.dtype)


def local_statistics(image: torch.Tensor, weight: torch.Tensor, outer: int, inner: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted mean and SD over the square annulus ``inner < max(|dy|,|dx|) <= outer`` of each pixel."""
    x = image.to(torch.float64)
    wt = weight.to(torch.float64)
    def ring(v: torch.Tensor) -> torch.Tensor:
        return box_sum(v, outer) - box_sum(v, inner)
    n = ring(wt).clamp(min=1e-9)
    s1 = ring(wt * x)
    s2 = ring(wt * x * x)
    mean = s1 / n
    var = (s2 / n - mean ** 2).clamp(min=0)
    return mean, var.sqrt()


def dilate(mask: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """Grow a boolean mask ``(..., h, w)`` by a square of ``radius`` pixels."""
    if radius <= 0:
        return mask
    return box_sum(mask.to(torch.float32), radius) > 0.5


def find_xrays(image: torch.Tensor, *, peak_sd: float = 8.0, grow_sd: float = 4.0, grow_radius: int = 2,
               outer_radius: int = 6, inner_radius: int = 1, dark: bool = False) -> torch.Tensor:
    """Boolean mask ``(..., h, w)`` of X-ray / hot pixels in images ``(..., h, w)``.

    ``peak_sd``: detection threshold in local SDs; ``grow_sd``: lower threshold for pixels adjacent to a
    peak; ``grow_radius``: how far (pixels) a peak may grow; ``dark``: also find peaks below the mean.
    """
    x = image.to(torch.float32)
    good = torch.ones_like(x)
    peaks = torch.zeros_like(x, dtype=torch.bool)
    for _ in range(2):
        mean, sd = local_statistics(x, good, outer_radius, inner_radius)
        sd = torch.where(sd > 0, sd, torch.full_like(sd, float("inf")))
        z = (x - mean) / sd
        z = z.abs() if dark else z
        peaks = z > peak_sd
        good = (~dilate(peaks, inner_radius)).to(x.dtype)
    found = peaks
    for _ in range(grow_radius):
        found = found | (dilate(found, 1) & (z > grow_sd))
    return found


def fill_pixels(image: torch.Tensor, mask: torch.Tensor, *, sigma_px: float = 1.5, max_rounds: int = 8
                ) -> torch.Tensor:
    """Replace masked pixels of ``(..., h, w)`` with a Gaussian-weighted mean of nearby unmasked ones.

    The kernel doubles each round until every masked pixel has good neighbours (large defects fill from
    their edges). Unmasked pixels are returned unchanged.
    """
    x = image.to(torch.float32)
    m = mask.expand_as(x)
    good = (~m).to(torch.float32)
    out = x.clone()
    todo = m.clone()
    sigma = sigma_px
    lead = x.shape[:-2]
    h, w = x.shape[-2:]
    for _ in range(max_rounds):
        if not bool(todo.any()):
            break
        r = max(1, int(3 * sigma))
        t = torch.arange(-r, r + 1, dtype=torch.float32, device=x.device)
        g = torch.exp(-0.5 * (t / sigma) ** 2)
        def blur(v: torch.Tensor, g=g, r=r) -> torch.Tensor:
            v = v.reshape(-1, 1, h, w)
            v = F.conv2d(F.pad(v, (r, r, 0, 0)), g.view(1, 1, 1, -1))
            v = F.conv2d(F.pad(v, (0, 0, r, r)), g.view(1, 1, -1, 1))
            return v.reshape(lead + (h, w))
        num, den = blur(x * good), blur(good)
        ok = todo & (den > 1e-3)
        out = torch.where(ok, num / den.clamp(min=1e-12), out)
        todo = todo & ~ok
        sigma *= 2
    if bool(todo.any()):  # nothing good anywhere near: fall back to the mean of good pixels
        fill = (x * good).sum((-2, -1), keepdim=True) / good.sum((-2, -1), keepdim=True).clamp(min=1)
        out = torch.where(todo, fill.expand_as(out), out)
    return out


def erase_xrays(image: torch.Tensor, *, fixed_mask: torch.Tensor | None = None, **find_kwargs
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Find X-rays in ``(..., h, w)`` and replace them (plus ``fixed_mask`` defects, ``(h, w)``).

    Returns ``(cleaned, mask)``; keyword arguments go to :func:`find_xrays`.
    """
    mask = find_xrays(image, **find_kwargs)
    if fixed_mask is not None:
        mask = mask | fixed_mask.to(mask.device)
    return fill_pixels(image, mask), mask
