"""Coarse (tiltxcorr-style) prealignment of a tilt series by cross-correlating neighbouring views.

Each view is rotated so the tilt axis is vertical and stretched along x by ``cos(ref)/cos(view)`` so a flat
specimen looks as in the reference view; the correlation peak gives the shift. Shifts chain outwards from
the view nearest zero tilt (or, with ``cumulative=True``, each view is matched against the sum of those
already aligned, all stretched to zero tilt).

Shift algebra: with ``Al_v(p) = R_v(p - d_v)`` and the stretch model
``s * (q_v + d_v - c)_x = (q_ref + d_ref - c)_x``, a peak ``t`` gives ``d_v = ((d_ref + t)_x / s, (d_ref + t)_y)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from tomoforge.core.align._threads import single_threaded
from tomoforge.core.align.warp import taper_from_distance, warp_with_edge_distance
from tomoforge.core.align.xcorr import cross_correlate, find_peak, prepare
from tomoforge.core.geometry import xf_from_parameters


@dataclass
class CoarseAlignment:
    """Result of :func:`align_coarse` (views in the input order)."""

    xf: torch.Tensor  # (v, 2, 3) raw -> aligned, tilt axis vertical
    shifts_xy: torch.Tensor  # (v, 2) the xf shift column, full-resolution pixels
    peak: torch.Tensor  # (v,) normalised correlation at the peak (NaN for the reference and skipped views)
    binning: int
    reference_view: int


def auto_binning(image_shape: tuple[int, int], target_size: int = 512) -> int:
    """Smallest integer binning that brings the larger image side to ``target_size`` or below."""
    return max(1, math.ceil(max(image_shape) / target_size))


@single_threaded
def align_coarse(images: torch.Tensor, tilt_deg: torch.Tensor, tilt_axis_deg: float, *,
                 skip: torch.Tensor | None = None, cumulative: bool = False, binning: int | None = None,
                 target_size: int = 512, lowpass: float = 0.15, highpass: float = 0.02,
                 taper_fraction: float = 0.1, pad_fraction: float = 0.5,
                 max_shift_fraction: float = 0.4) -> CoarseAlignment:
    """Coarse shifts of ``images`` ``(v, h, w)`` with tilt angles ``tilt_deg`` ``(v,)``.

    skip: ``(v,)`` bool, views left out of the chain (their shift is interpolated from neighbours by angle).
    lowpass/highpass: band-pass edges in cycles per binned pixel.
    """
    v, h, w = images.shape
    tilt = torch.as_tensor(tilt_deg, dtype=torch.float64).cpu()
    if not math.isfinite(float(tilt_axis_deg)):
        raise ValueError("tilt axis angle is not a number")
    skip = torch.zeros(v, dtype=torch.bool) if skip is None else torch.as_tensor(skip, dtype=torch.bool).cpu()
    use = [i for i in range(v) if not skip[i]]
    if not use:
        raise ValueError("every view is skipped")
    b = binning or auto_binning((h, w), target_size)
    img = images.float()
    hb, wb = h // b, w // b
    taper_px = max(1, int(taper_fraction * min(hb, wb)))
    max_shift = max_shift_fraction * min(hb, wb)

    def view(i: int, stretch: float, shift: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """View ``i`` in the aligned frame with shift ``shift``, stretched about the centre, and its taper."""
        s = torch.tensor([stretch], dtype=torch.float64)
        xf_i = xf_from_parameters(torch.tensor([float(tilt_axis_deg)], dtype=torch.float64), shift[None])
        aligned, dist = warp_with_edge_distance(img[i:i + 1], xf_i, b, s)
        return aligned[0], taper_from_distance(dist, taper_px)[0]

    def match(ref_img, ref_w, i, s, guess):
        """Shift ``d_i`` from correlating view ``i`` (stretched by ``s``, placed at ``guess``) with the ref.

        A common window (product of both tapers) keeps the window edges from pulling the peak."""
        mov, mov_w = view(i, s, guess)
        common = ref_w * mov_w
        a, m = prepare(ref_img, common), prepare(mov, common)
        cc = cross_correlate(a, m, lowpass, highpass, pad_fraction)
        t, val = find_peak(cc, max_shift)
        tb = t * b
        d = guess + torch.stack([tb[0] / s, tb[1]])
        return d, float(val)

    order = sorted(use, key=lambda i: float(tilt[i]))
    ref = min(use, key=lambda i: (abs(float(tilt[i])), float(tilt[i])))
    k0 = order.index(ref)
    shifts = torch.zeros(v, 2, dtype=torch.float64)
    peak = torch.full((v,), float("nan"), dtype=torch.float64)
    cos = torch.cos(torch.deg2rad(tilt))
    for branch in (order[k0 + 1:], order[:k0][::-1]):
        done = [ref]
        for i in branch:
            prev = done[-1]
            if cumulative:
                # Sum of every view aligned so far in this branch, each squeezed into view i's frame.
                s = 1.0
                ref_img = torch.zeros(hb, wb)
                ref_w = torch.zeros(hb, wb)
                for u in done:
                    im_u, w_u = view(u, float(cos[i] / cos[u]), shifts[u])
                    ref_img, ref_w = ref_img + im_u * w_u, ref_w + w_u
                ref_img = ref_img / ref_w.clamp_min(1e-3)
                ref_w = ref_w / len(done)
            else:
                s = float(cos[prev] / cos[i])
                ref_img, ref_w = view(prev, 1.0, shifts[prev])
            guess = shifts[prev].clone()
            for _ in range(2):  # second pass: windows now cover the same specimen area
                guess, peak[i] = match(ref_img, ref_w, i, s, guess)
            shifts[i] = guess
            done.append(i)
    if len(use) < v:
        shifts = _interpolate_skipped(shifts, tilt, skip)
    xf = xf_from_parameters(torch.full((v,), float(tilt_axis_deg), dtype=torch.float64), shifts)
    return CoarseAlignment(xf=xf, shifts_xy=shifts, peak=peak, binning=b, reference_view=ref)


def _interpolate_skipped(shifts: torch.Tensor, tilt: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """Fill skipped views' shifts by linear interpolation over tilt angle (nearest at the ends)."""
    good = ~skip
    ta, order = torch.sort(tilt[good])
    out = shifts.clone()
    for k in range(2):
        vals = shifts[good, k][order]
        out[skip, k] = torch.from_numpy(np.interp(tilt[skip].numpy(), ta.numpy(), vals.numpy()))
    return out
