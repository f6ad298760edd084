"""Tomogram quality of an alignment: WBP with it, compared with the simulator's truth volume.

An alignment solved from the images alone fixes the specimen only up to a 3D translation (fiducial solutions
centre the beads; patch solutions centre the patches), so the box the truth volume fills is unknown to it. The
comparison removes that gauge: the best sub-voxel translation (FFT cross-correlation with the reference,
parabolic peak) is turned into the shift it makes in every view, ``(X cos t + Z sin t, Y)``, and the tomogram is
rebuilt with it. The same is done for every alignment compared (the true one finds ~0 voxels), so no alignment is
favoured. The rotation gauge (a common tilt offset) is not searched: the solution levels the specimen, as the
truth is, and a wrong levelling counts as an error.

The reference is the truth seen through the series' missing wedge (what any reconstruction of these views can
hold), both low-passed with a Gaussian of ``sigma_vox`` (tests/core/sim/simkit.py, as the simulator's own check for
the simulator's own check); a margin in X and Y is left out (specimen outside the box leaks into its edges).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tests.core.sim.simkit import corr, lowpass, wedge_filter

from tomoforge.core.reconstruct.wbp import reconstruct_wbp


@dataclass
class Quality:
    corr: float  # correlation with the reference after the translation gauge is removed
    corr_before: float  # the same before (translation as the alignment left it)
    shift_zyx_vox: tuple[float, float, float]  # translation removed: tomogram relative to the truth
    tomogram: torch.Tensor  # (d, h, w) low-passed tomogram after the gauge fit


def wedge_reference(truth: torch.Tensor, tilt_deg: torch.Tensor, sigma_vox: float = 1.5) -> torch.Tensor:
    """Truth volume ``(d, h, w)`` through the wedge of ``tilt_deg``, low-passed (float64)."""
    t = torch.as_tensor(tilt_deg, dtype=torch.float64)
    return lowpass(wedge_filter(truth.double(), float(t.min()), float(t.max())), sigma_vox)


def translation_zyx(vol: torch.Tensor, ref: torch.Tensor) -> tuple[float, float, float]:
    """Sub-voxel shift of ``vol`` relative to ``ref`` (cross-correlation peak, parabolic per axis)."""
    f = torch.fft.ifftn(torch.fft.fftn(vol - vol.mean()) * torch.fft.fftn(ref - ref.mean()).conj()).real
    i = np.unravel_index(int(f.argmax()), f.shape)
    out = []
    for ax, n in enumerate(f.shape):
        lo, hi = list(i), list(i)
        lo[ax], hi[ax] = (i[ax] - 1) % n, (i[ax] + 1) % n
        fm, f0, fp = float(f[tuple(lo)]), float(f[i]), float(f[tuple(hi)])
        den = fm - 2 * f0 + fp
        off = 0.5 * (fm - fp) / den if den < 0 else 0.0
        out.append(((int(i[ax]) + n // 2) % n) - n // 2 + off)
    return tuple(out)


def translate_xf(xf: torch.Tensor, tilt_deg: torch.Tensor, shift_zyx) -> torch.Tensor:
    """``xf`` whose tomogram is the one of ``xf`` moved by ``-shift_zyx`` voxels (binning 1)."""
    z, y, x = shift_zyx
    t = torch.deg2rad(torch.as_tensor(tilt_deg, dtype=torch.float64))
    out = xf.clone().to(torch.float64)
    out[:, 0, 2] -= x * torch.cos(t) + z * torch.sin(t)
    out[:, 1, 2] -= y
    return out


def tomogram_quality(images: torch.Tensor, tilt_deg: torch.Tensor, xf: torch.Tensor, ref: torch.Tensor, *,
                     exclude=None, sigma_vox: float = 1.5, margin: int = 12, iterations: int = 1) -> Quality:
    """WBP of ``images`` ``(v, h, w)`` with ``(tilt_deg, xf)`` in the box of ``ref``, correlated with ``ref``
    after removing the translation gauge (at most ``iterations`` rebuilds: the first estimate is already within ~0.05 voxel)."""
    inner = (slice(None), slice(margin, -margin), slice(margin, -margin))
    tilt = torch.as_tensor(tilt_deg, dtype=torch.float64)
    xf = torch.as_tensor(xf, dtype=torch.float64)
    total = np.zeros(3)
    first = None
    for k in range(iterations + 1):
        rec = lowpass(reconstruct_wbp(images, tilt, xf, tuple(ref.shape), exclude=exclude), sigma_vox)
        c = corr(rec[inner], ref[inner])
        first = c if first is None else first
        s = np.array(translation_zyx(rec, ref))
        if k == iterations or np.abs(s).max() < 0.05:
            break
        total += s
        xf = translate_xf(xf, tilt, s)
    return Quality(corr=c, corr_before=first, shift_zyx_vox=tuple(float(v) for v in total), tomogram=rec)
