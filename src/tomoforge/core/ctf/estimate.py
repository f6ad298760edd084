"""CTF estimation of one view: tiles, (tilt-corrected) mean spectrum, fit.

In tilt-aware mode each tile's spectrum is first rescaled to the defocus at the image centre using the
known tilt and tilt axis (see ``tilt.py`` for the sign), so rings from the whole view add up in phase.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from tomoforge.core.ctf.fit import CtfFit, FitSettings, fit_spectrum
from tomoforge.core.ctf.model import Optics
from tomoforge.core.ctf.spectrum import image_tile_spectra
from tomoforge.core.ctf.tilt import defocus_offset_a, distance_from_axis_px, rescale_to_defocus

MIN_TILT_FOR_CORRECTION_DEG = 1.0
MAX_RESCALE_GROUPS = 32


def view_tile_spectra(image: torch.Tensor, box: int, overlap: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Tile power spectra ``(n, box, box//2+1)`` of a view ``(h, w)`` and tile centres ``(n, 2)`` (x, y)."""
    return image_tile_spectra(image, box, overlap)


def tile_defocus_offsets_a(centres_xy: torch.Tensor, pixel_size_a: float, tilt_deg: float, tilt_axis_deg: float,
                           handedness: int = 1) -> torch.Tensor:
    """Defocus offset (Å) of each tile centre ``(n, 2)`` relative to the image centre."""
    x = distance_from_axis_px(centres_xy, tilt_axis_deg)
    return defocus_offset_a(x, 0.0, tilt_deg, pixel_size_a, handedness)


def group_tiles(power: torch.Tensor, centres_xy: torch.Tensor, tilt_axis_deg: float,
                max_groups: int = MAX_RESCALE_GROUPS) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Average tiles at similar distance from the tilt axis (at most ``max_groups`` bins).

    Returns the group spectra ``(g, box, box//2+1)``, pseudo-centres ``(g, 2)`` on the perpendicular through
    the image centre at the groups' mean distance, and the number of tiles per group ``(g,)``. Grouping
    depends neither on the tilt nor on the handedness, so a series keeps only these per view.
    """
    d = distance_from_axis_px(centres_xy, tilt_axis_deg)
    width = max(1.0, float(d.max() - d.min()) / max_groups)
    uniq, inverse = torch.unique(torch.round(d / width).long(), return_inverse=True)
    count = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inverse, torch.ones_like(d))
    mean_d = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inverse, d) / count
    sums = torch.zeros((len(uniq),) + power.shape[1:], dtype=power.dtype).index_add_(0, inverse, power)
    a = math.radians(tilt_axis_deg)
    centres = torch.stack([mean_d * math.cos(a), mean_d * math.sin(a)], -1)
    return sums / count.to(power.dtype)[:, None, None], centres, count


def mean_amplitude(power: torch.Tensor, centres_xy: torch.Tensor | None = None, pixel_size_a: float = 1.0,
                   optics: Optics | None = None, tilt_deg: float = 0.0, tilt_axis_deg: float = 0.0,
                   reference_defocus_a: float | None = None, handedness: int = 1,
                   weights: torch.Tensor | None = None, max_groups: int = MAX_RESCALE_GROUPS) -> torch.Tensor:
    """Amplitude spectrum ``(box, box//2+1)``: square root of the (``weights``-weighted) mean tile power.

    With ``reference_defocus_a`` (and a tilt), tiles are first rescaled to that defocus at the centre.
    Tiles at similar distance from the axis are averaged and rescaled together (:func:`group_tiles`),
    which bounds the cost on large images.
    """
    w = torch.ones(power.shape[0], dtype=torch.float64) if weights is None else weights.to(torch.float64)
    wt = (w / w.sum()).to(power.dtype)[:, None, None]
    if reference_defocus_a is None or abs(tilt_deg) < MIN_TILT_FOR_CORRECTION_DEG:
        return (power * wt).sum(0).sqrt()
    if power.shape[0] > max_groups:
        power, centres_xy, count = group_tiles(power * (w / w.mean()).to(power.dtype)[:, None, None], centres_xy,
                                               tilt_axis_deg, max_groups)
        wt = (count / count.sum()).to(power.dtype)[:, None, None]
    offsets = tile_defocus_offsets_a(centres_xy, pixel_size_a, tilt_deg, tilt_axis_deg, handedness)
    tile_df = (reference_defocus_a + offsets).clamp_min(0.1 * reference_defocus_a)
    rescaled = rescale_to_defocus(power, tile_df, reference_defocus_a, pixel_size_a, optics or Optics())
    return (rescaled * wt).sum(0).sqrt()


def estimate_ctf(image: torch.Tensor, pixel_size_a: float, optics: Optics, settings: FitSettings,
                 box: int = 512, overlap: float = 0.5, tilt_deg: float = 0.0, tilt_axis_deg: float = 0.0,
                 tilt_aware: bool = False, handedness: int = 1) -> CtfFit:
    """Estimate the CTF of one view ``(h, w)``; the defocus reported is the one at the image centre."""
    power, centres = view_tile_spectra(image, box, overlap)
    return estimate_from_tiles(power, centres, pixel_size_a, optics, settings, tilt_deg, tilt_axis_deg,
                               tilt_aware, handedness)


def estimate_from_tiles(power: torch.Tensor, centres: torch.Tensor, pixel_size_a: float, optics: Optics,
                        settings: FitSettings, tilt_deg: float = 0.0, tilt_axis_deg: float = 0.0,
                        tilt_aware: bool = False, handedness: int = 1, first: CtfFit | None = None,
                        weights: torch.Tensor | None = None) -> CtfFit:
    """Fit from precomputed tile spectra (or :func:`group_tiles` groups with their ``weights``);
    ``first`` (a plain fit of the same tiles) saves a pass."""
    if first is None:
        first = fit_spectrum(mean_amplitude(power, weights=weights), pixel_size_a, optics, settings)
    if not tilt_aware or abs(tilt_deg) < MIN_TILT_FOR_CORRECTION_DEG:
        return first
    fit = first
    for _ in range(2):  # the rescaling depends (weakly) on the defocus it rescales to
        ref = fit.params.defocus_mean_a
        amp = mean_amplitude(power, centres, pixel_size_a, optics, tilt_deg, tilt_axis_deg, ref, handedness, weights)
        fit = fit_spectrum(amp, pixel_size_a, optics, settings)
        if abs(fit.params.defocus_mean_a - ref) < 0.01 * ref:
            break
    return fit


def narrowed(settings: FitSettings, centre_a: float, half_range_a: float) -> FitSettings:
    """Settings whose defocus search is ``centre ± half_range`` (within the original range)."""
    lo = max(settings.defocus_min_a, centre_a - half_range_a)
    hi = min(settings.defocus_max_a, centre_a + half_range_a)
    if lo > hi:
        lo, hi = settings.defocus_min_a, settings.defocus_max_a
    step = min(settings.defocus_step_a, max((hi - lo) / 10.0, 1.0))
    return replace(settings, defocus_min_a=lo, defocus_max_a=hi, defocus_step_a=step)
