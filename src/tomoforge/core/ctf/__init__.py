"""CTF: model, spectra, estimation (single view, tilt-aware, tilt series) and strip-based correction."""

from tomoforge.core.ctf.correct import aligned_ctf_params, correct_ctf_strips, slab_offset_a, strip_width_px
from tomoforge.core.ctf.estimate import estimate_ctf, estimate_from_tiles, view_tile_spectra
from tomoforge.core.ctf.fit import CtfFit, FitSettings, fit_spectrum
from tomoforge.core.ctf.model import (
    CtfParams,
    Optics,
    canonical_params,
    ctf_1d,
    ctf_2d,
    electron_wavelength_a,
)
from tomoforge.core.ctf.series import SeriesFit, estimate_tilt_series
from tomoforge.core.ctf.tilt import defocus_offset_a, slab_defocus_offsets_a

__all__ = [
    "CtfFit", "CtfParams", "FitSettings", "Optics", "SeriesFit", "aligned_ctf_params", "canonical_params",
    "correct_ctf_strips", "ctf_1d", "ctf_2d", "defocus_offset_a", "electron_wavelength_a", "estimate_ctf",
    "estimate_from_tiles", "estimate_tilt_series", "fit_spectrum", "slab_defocus_offsets_a", "slab_offset_a",
    "strip_width_px", "view_tile_spectra",
]
