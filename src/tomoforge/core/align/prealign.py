"""Coarse prealignment as a user wants it by default: neighbour correlation, then projection matching.

Pairwise (each view against its neighbour) and cumulative (against the sum of those already aligned) chains
fail on different data: a strong spurious peak can throw one pairwise step by a hundred pixels, while the
cumulative sum of a thick specimen blurs. With ``cumulative=None`` both are run and given projection matching's
outward pass; the one whose views agree better with the reprojections (mean normalised correlation) is kept
(a check on the data, not on a truth) and gets the remaining rounds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from tomoforge.core.align.coarse import CoarseAlignment, align_coarse
from tomoforge.core.align.projection_matching import ProjectionMatch, refine_by_projection_matching


@dataclass
class Prealignment:
    xf: torch.Tensor  # (v, 2, 3) raw -> aligned
    coarse: CoarseAlignment  # the neighbour-correlation chain kept
    cumulative: bool  # which chain was kept
    matching: ProjectionMatch | None  # None without projection matching
    agreement: dict[str, float] = field(default_factory=dict)  # chain -> mean correlation with reprojections


def _agreement(m: ProjectionMatch) -> float:
    p = m.peak[torch.isfinite(m.peak)]
    return float(p.mean()) if len(p) else float("-inf")


def prealign(images: torch.Tensor, tilt_deg: torch.Tensor, tilt_axis_deg: float, *,
             skip: torch.Tensor | None = None, cumulative: bool | None = None, matching: bool = True,
             matching_rounds: int = 3, matching_size: int = 256, thickness_px: float | None = None,
             **coarse_options) -> Prealignment:
    """Coarse transforms ``(v, 2, 3)`` for ``images`` ``(v, h, w)``; see the module docstring.

    ``coarse_options`` go to :func:`align_coarse` (binning, band-pass, taper, padding).
    Without ``matching`` an unset ``cumulative`` means pairwise.
    """
    chains = [False, True] if cumulative is None and matching else [bool(cumulative)]
    found: list[tuple[float, Prealignment]] = []
    for cum in chains:
        co = align_coarse(images, tilt_deg, tilt_axis_deg, skip=skip, cumulative=cum, **coarse_options)
        if not matching:
            return Prealignment(xf=co.xf, coarse=co, cumulative=cum, matching=None)
        # the outward pass alone tells the chains apart; the leave-one-out rounds go to the one kept
        m = refine_by_projection_matching(images, tilt_deg, co.xf, skip=skip, thickness_px=thickness_px,
                                          target_size=matching_size, rounds=1)
        found.append((_agreement(m), Prealignment(xf=m.xf, coarse=co, cumulative=cum, matching=m)))
    best = max(found, key=lambda f: f[0])[1]
    best.agreement = {("cumulative" if p.cumulative else "pairwise"): a for a, p in found}
    if matching_rounds > 1:
        best.matching = refine_by_projection_matching(images, tilt_deg, best.xf, skip=skip,
                                                      thickness_px=thickness_px, target_size=matching_size,
                                                      rounds=matching_rounds - 1, outward=False)
        best.xf = best.matching.xf
    return best
