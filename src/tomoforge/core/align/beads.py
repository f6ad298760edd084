"""Gold-bead detection by template matching.

A bead of diameter ``D`` projects as a dark disk with profile ``sqrt(r^2 - rho^2)`` at any tilt. Each image is
scored against that template: the normalised cross-correlation (shape) and the least-squares amplitude of the
template (contrast, in units of its own robust spread over the image). Protein blobs are smaller, weaker and
irregular, so they fail the amplitude test or prefer a smaller template.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class BeadMaps:
    """Per-pixel scores for images ``(v, h, w)``."""

    ncc: torch.Tensor  # normalised cross-correlation with the bead template, in [-1, 1]
    snr: torch.Tensor  # template amplitude / robust spread of the amplitude map (dark beads positive)


def bead_template(diameter_px: float, size: int | None = None) -> torch.Tensor:
    """Dark-positive projected-sphere template ``(s, s)`` (s odd, about 2.2 diameters), zero-mean, with a
    ring of background around the disk so a flat patch scores zero."""
    r = diameter_px / 2
    s = size or int(2 * round(1.1 * diameter_px) + 1)
    c = (s - 1) / 2
    yy, xx = torch.meshgrid(torch.arange(s, dtype=torch.float32), torch.arange(s, dtype=torch.float32), indexing="ij")
    rho = torch.sqrt((xx - c) ** 2 + (yy - c) ** 2)
    t = torch.sqrt((r ** 2 - rho ** 2).clamp_min(0)) / max(r, 1e-6)
    return -(t - t.mean())


def _correlate_same(images: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``sum_k kernel(k) image(p + k)`` for images ``(v, h, w)``, zero padding (FFT)."""
    v, h, w = images.shape
    kh, kw = kernel.shape
    ph, pw = h + kh, w + kw
    fi = torch.fft.rfft2(images, s=(ph, pw))
    k = torch.zeros(ph, pw, dtype=images.dtype, device=images.device)
    k[:kh, :kw] = kernel.flip(0, 1)
    fk = torch.fft.rfft2(torch.roll(k, (-(kh // 2), -(kw // 2)), (0, 1)))
    return torch.fft.irfft2(fi * fk, s=(ph, pw))[:, :h, :w]


def _box_sum(images: torch.Tensor, size: int) -> torch.Tensor:
    x = F.pad(images[:, None], [size // 2] * 4, mode="replicate")
    return F.avg_pool2d(x, size, stride=1)[:, 0] * size * size


def bead_maps(images: torch.Tensor, diameter_px: float) -> BeadMaps:
    """Score maps of ``images`` ``(v, h, w)`` for beads of ``diameter_px``."""
    img = images.float()
    img = img - img.mean(dim=(-2, -1), keepdim=True)
    t = bead_template(diameter_px).to(img.device)
    s = t.shape[-1]
    corr = _correlate_same(img, t)
    n = s * s
    m1 = _box_sum(img, s)
    m2 = _box_sum(img * img, s)
    var = (m2 - m1 * m1 / n).clamp_min(1e-12)
    tn = t.norm()
    ncc = corr / (tn * var.sqrt())
    amp = corr / (tn * tn)
    flat = amp.reshape(amp.shape[0], -1)
    med = flat.median(dim=1, keepdim=True).values
    mad = (flat - med).abs().median(dim=1, keepdim=True).values * 1.4826
    snr = ((amp.reshape(amp.shape[0], -1) - med) / mad.clamp_min(1e-12)).reshape(amp.shape)
    return BeadMaps(ncc=ncc, snr=snr)


def local_maxima(score: torch.Tensor, radius: int, threshold: float, border: int = 0) -> torch.Tensor:
    """Pixel positions ``(k, 2)`` (x, y) of maxima of ``score`` ``(h, w)`` above ``threshold``, at least
    ``radius`` apart, ``border`` pixels away from the edges; strongest first."""
    k = 2 * radius + 1
    mx = F.max_pool2d(score[None, None], k, stride=1, padding=radius)[0, 0]
    peak = (score >= mx) & (score > threshold)
    if border:
        peak[:border] = False
        peak[-border:] = False
        peak[:, :border] = False
        peak[:, -border:] = False
    yy, xx = torch.nonzero(peak, as_tuple=True)
    order = torch.argsort(score[yy, xx], descending=True)
    return torch.stack([xx[order], yy[order]], 1)


def subpixel_peak(score: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """Parabolic sub-pixel refinement of integer maxima ``xy`` ``(k, 2)`` on ``score`` ``(h, w)``."""
    h, w = score.shape
    x = xy[:, 0].clamp(1, w - 2)
    y = xy[:, 1].clamp(1, h - 2)
    out = xy.to(torch.float64).clone()
    for axis, (a, b) in enumerate(((score[y, x - 1], score[y, x + 1]), (score[y - 1, x], score[y + 1, x]))):
        c = score[y, x]
        den = a - 2 * c + b
        off = torch.where(den < 0, 0.5 * (a - b) / den.where(den < 0, torch.ones_like(den)), torch.zeros_like(den))
        out[:, axis] = out[:, axis] + off.clamp(-0.5, 0.5).to(torch.float64)
    return out


def detect_beads(image: torch.Tensor, diameter_px: float, *, max_beads: int | None = None,
                 min_ncc: float = 0.5, min_snr: float | None = None, maps: BeadMaps | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Beads in one image ``(h, w)``: positions ``(k, 2)`` (x, y, sub-pixel) and their SNR, strongest first.

    Candidates must look like the template (NCC >= ``min_ncc``) and be dark enough: SNR above ``min_snr``,
    by default the larger of 6 and 0.55 x the median SNR of the three strongest candidates (beads are uniform, so the
    weak tail is protein).
    """
    mp = maps or bead_maps(image[None], diameter_px)
    ncc, snr = mp.ncc[0], mp.snr[0]
    r = max(1, int(round(0.8 * diameter_px)))
    cand = local_maxima(snr * (ncc >= min_ncc), r, 0.0, border=max(1, int(diameter_px / 2)))
    if len(cand) == 0:
        return torch.zeros(0, 2, dtype=torch.float64), torch.zeros(0)
    vals = snr[cand[:, 1], cand[:, 0]]
    if min_snr is None:
        top = vals[:3]
        min_snr = max(6.0, 0.55 * float(top.median()))
    keep = vals >= min_snr
    cand, vals = cand[keep], vals[keep]
    if max_beads is not None:
        cand, vals = cand[:max_beads], vals[:max_beads]
    return subpixel_peak(snr, cand), vals


def estimate_bead_diameter(image: torch.Tensor, diameters_px=None) -> float | None:
    """The template diameter (px) whose strongest matches are strongest, or None when nothing stands out."""
    if diameters_px is None:
        diameters_px = [d for d in (3, 4, 5, 6, 8, 10, 12, 14, 17, 20, 24, 28, 34, 40) if d < min(image.shape) / 4]
    best, best_score = None, 0.0
    for d in diameters_px:
        mp = bead_maps(image[None], float(d))
        score = (mp.snr[0] * (mp.ncc[0] > 0.5)).flatten()
        top = torch.topk(score, min(5, score.numel())).values
        s = float(top.median()) * float(mp.ncc[0].flatten()[torch.topk(score, 5).indices].mean())
        if s > best_score:
            best, best_score = float(d), s
    return best if best_score > 6.0 * 0.5 else None
