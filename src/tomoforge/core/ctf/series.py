"""Joint CTF estimation of a tilt series (as Warp constrains it).

- Every view is fitted tilt-aware with both signs of the defocus gradient; the sign whose fits score
  higher over the tilted views is the handedness the data imply (``tilt.py`` defines +1).
- Defocus consistency: views whose defocus is an outlier against the series (median ± a robust spread)
  are searched again in a window around the median of their neighbours in tilt.
- Optionally one astigmatism (amount and angle, raw camera frame) shared by all views, fitted on the
  low-tilt views where it is best measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from tomoforge.core.ctf.estimate import (
    estimate_from_tiles,
    group_tiles,
    mean_amplitude,
    narrowed,
    view_tile_spectra,
)
from tomoforge.core.ctf.fit import CtfFit, FitSettings, fit_spectrum
from tomoforge.core.ctf.model import CtfParams, Optics, canonical_params

HANDEDNESS_MIN_TILT_DEG = 10.0


@dataclass
class SeriesFit:
    fits: list[CtfFit]
    handedness: int
    handedness_scores: dict[int, float]  # mean fit score over tilted views for each sign tried
    refitted: list[int]  # views searched again as defocus outliers


def _mean_score(fits: list[CtfFit], tilts: Sequence[float]) -> float:
    vals = [f.score for f, t in zip(fits, tilts, strict=True) if abs(t) >= HANDEDNESS_MIN_TILT_DEG]
    return sum(vals) / len(vals) if vals else float("nan")


def _outliers(defocus: list[float], max_deviation_a: float) -> list[int]:
    t = torch.tensor(defocus, dtype=torch.float64)
    med = t.median()
    mad = (t - med).abs().median() * 1.4826
    limit = max(3.0 * float(mad), max_deviation_a)
    return [i for i, d in enumerate(defocus) if abs(d - float(med)) > limit]


def estimate_tilt_series(images: Sequence[torch.Tensor], tilt_deg: Sequence[float], tilt_axis_deg: Sequence[float],
                         pixel_size_a: float, optics: Optics, settings: FitSettings, box: int = 512,
                         overlap: float = 0.5, handedness: int | None = None, max_deviation_a: float = 3000.0,
                         shared_astigmatism: bool = False) -> SeriesFit:
    """Fit all views ``(h, w)`` of a series jointly. ``handedness=None`` tries both signs and reports the better."""
    n = len(images)
    # Keep per view only the tiles averaged by distance from the axis (bounded memory for long series).
    tiles = [group_tiles(*view_tile_spectra(im, box, overlap), tilt_axis_deg[i]) for i, im in enumerate(images)]
    first = [fit_spectrum(mean_amplitude(p, weights=w), pixel_size_a, optics, settings) for p, _, w in tiles]
    hands = [handedness] if handedness is not None else [1, -1]
    results: dict[int, list[CtfFit]] = {}
    for h in hands:
        results[h] = [estimate_from_tiles(p, c, pixel_size_a, optics, settings, tilt_deg[i], tilt_axis_deg[i],
                                          True, h, first=first[i], weights=w) for i, (p, c, w) in enumerate(tiles)]
    scores = {h: _mean_score(results[h], tilt_deg) for h in hands}
    best = max(hands, key=lambda h: (scores[h] if not math.isnan(scores[h]) else -1.0, h))
    fits = results[best]

    def refit(i: int, s: FitSettings, start: CtfParams | None) -> CtfFit:
        p, c, w = tiles[i]
        amp = mean_amplitude(p, c, pixel_size_a, optics, tilt_deg[i], tilt_axis_deg[i],
                             (start or fits[i].params).defocus_mean_a, best, weights=w)
        return fit_spectrum(amp, pixel_size_a, optics, s, start=start)

    order = sorted(range(n), key=lambda i: tilt_deg[i])
    bad = _outliers([f.params.defocus_mean_a for f in fits], max_deviation_a)
    good = [i for i in order if i not in bad]
    for i in bad if good else []:
        pos = order.index(i)
        near = sorted(good, key=lambda j: abs(order.index(j) - pos))[:4]
        centre = float(torch.tensor([fits[j].params.defocus_mean_a for j in near]).median())
        fits[i] = refit(i, narrowed(settings, centre, max_deviation_a), None)

    if shared_astigmatism:
        low = [i for i in range(n) if abs(tilt_deg[i]) < 30.0] or list(range(n))
        w = torch.tensor([max(fits[i].score, 0.0) + 1e-6 for i in low], dtype=torch.float64)
        half = torch.tensor([0.5 * fits[i].params.astigmatism_a for i in low], dtype=torch.float64)
        ang = torch.deg2rad(torch.tensor([fits[i].params.astigmatism_angle_deg for i in low], dtype=torch.float64))
        ax = float((w * half * torch.cos(2 * ang)).sum() / w.sum())
        ay = float((w * half * torch.sin(2 * ang)).sum() / w.sum())
        shared_half, shared_angle = math.hypot(ax, ay), 0.5 * math.degrees(math.atan2(ay, ax))
        fixed = replace(settings, fit_astigmatism=False)
        for i in range(n):
            p0 = fits[i].params
            start = canonical_params(p0.defocus_mean_a + shared_half, p0.defocus_mean_a - shared_half, shared_angle,
                                     p0.phase_shift_deg)
            fits[i] = refit(i, fixed, start)
    return SeriesFit(fits=fits, handedness=best, handedness_scores=scores, refitted=bad)
