"""CTF correction of aligned views: strip-based phase flipping or multiplication (ctfphaseflip), and the
per-slab defocus offsets of 3D correction (NovaCTF).

In an aligned view the tilt axis is vertical through the centre column, so the defocus is constant along
columns and changes across them by ``-handedness * pixel * x * tan(tilt)`` (``tilt.py``); in a raw view
the same holds along the direction ``(cos psi, sin psi)`` perpendicular to its axis. The view is corrected
once per strip at that strip's defocus; pixels between strip centres blend the two neighbouring
corrections linearly.
"""

from __future__ import annotations

import math

import torch

from tomoforge.core.ctf.model import CtfParams, Optics, ctf_2d
from tomoforge.core.ctf.tilt import defocus_offset_a as gradient_offset_a
from tomoforge.core.geometry import xf_rotation_deg

CORRECTION_MODES = ("flip", "multiply")


def aligned_ctf_params(params: CtfParams, xf: torch.Tensor) -> CtfParams:
    """CTF of a raw view expressed in its aligned frame: the astigmatism turns with the ``.xf`` ``(2, 3)``.

    The ``.xf`` rotates raw images counter-clockwise by ``-xf_rotation_deg(xf)``.
    """
    return params.rotated(-float(xf_rotation_deg(torch.as_tensor(xf, dtype=torch.float64))))


def strip_width_px(tilt_deg: float, pixel_size_a: float, defocus_tolerance_a: float, image_width_px: int,
                   min_width_px: int = 8) -> int:
    """Widest strip whose defocus spread stays within ``defocus_tolerance_a`` (ctfphaseflip's rule)."""
    slope = pixel_size_a * abs(math.tan(math.radians(tilt_deg)))
    if slope * image_width_px <= defocus_tolerance_a:
        return image_width_px
    return int(min(image_width_px, max(min_width_px, math.floor(defocus_tolerance_a / slope))))


def ctf_filter(ctf: torch.Tensor, mode: str) -> torch.Tensor:
    """What multiplies the spectrum: ``sign(ctf)`` for ``flip``, ``ctf`` for ``multiply``."""
    if mode == "flip":
        return torch.where(ctf >= 0, 1.0, -1.0).to(ctf.dtype)
    if mode == "multiply":
        return ctf
    raise ValueError(f"unknown CTF correction mode {mode!r} (expected one of {CORRECTION_MODES})")


def psf_margin_px(defocus_a: float, pixel_size_a: float) -> int:
    """How far (px) the CTF spreads a point up to Nyquist: ``lambda * df * s_max`` plus a little."""
    lam = 0.0197  # 300 kV; lower voltages are larger, covered by the padding below
    return int(math.ceil(1.3 * lam * abs(defocus_a) / (2.0 * pixel_size_a ** 2))) + 16


def _corrected(image: torch.Tensor, params: CtfParams, pixel_size_a: float, optics: Optics, mode: str,
               spectrum: torch.Tensor | None = None) -> torch.Tensor:
    h, w = image.shape[-2:]
    if spectrum is None:
        spectrum = torch.fft.rfft2(image)
    ctf = ctf_2d((h, w), pixel_size_a, params, optics, rfft=True, device=image.device, dtype=image.dtype)
    return torch.fft.irfft2(spectrum * ctf_filter(ctf, mode), s=(h, w))


def correct_ctf_strips(image: torch.Tensor, params: CtfParams, pixel_size_a: float, optics: Optics,
                       tilt_deg: float, defocus_offset_a: float = 0.0, mode: str = "flip",
                       defocus_tolerance_a: float = 200.0, handedness: int = 1,
                       tilt_axis_deg: float = 0.0, crop: bool = True) -> torch.Tensor:
    """Correct a view ``(h, w)`` strip by strip; returns ``(h, w)``.

    ``params``: CTF at the image centre in the frame of ``image`` (for an aligned view estimated on the raw
    one, see :func:`aligned_ctf_params`). ``tilt_axis_deg``: the axis in this image (0 for an aligned view,
    where strips are columns; a raw view's axis otherwise). ``defocus_offset_a`` is added to every strip;
    for NovaCTF slabs use :func:`slab_offset_a`. ``mode``: ``flip`` or ``multiply``.

    With ``crop``, each strip is corrected on the smallest box that holds it plus the CTF's spread (not
    the whole image) when that box is clearly smaller, which keeps many strips of a large view affordable.
    """
    h, w = image.shape[-2:]
    dtype = image.dtype if image.dtype in (torch.float32, torch.float64) else torch.float32
    image = image.to(dtype)
    a = math.radians(tilt_axis_deg)
    ys = torch.arange(h, dtype=torch.float64, device=image.device)[:, None] - (h - 1) / 2
    xs = torch.arange(w, dtype=torch.float64, device=image.device)[None, :] - (w - 1) / 2
    dist = xs * math.cos(a) + ys * math.sin(a)  # signed distance from the axis (px)
    lo, hi = float(dist.min()), float(dist.max())
    width = strip_width_px(tilt_deg, pixel_size_a, defocus_tolerance_a, int(math.ceil(hi - lo)) + 1)
    n = max(1, math.ceil((hi - lo + 1) / width))
    if n == 1:
        return _corrected(image, params.shifted(defocus_offset_a), pixel_size_a, optics, mode)
    centres = [lo + i * (hi - lo) / (n - 1) for i in range(n)]
    step = (hi - lo) / (n - 1)
    margin = psf_margin_px(params.defocus_u_a + defocus_offset_a + pixel_size_a * (hi - lo) *
                           abs(math.tan(math.radians(tilt_deg))), pixel_size_a)
    spectrum = None
    out = torch.zeros((h, w), dtype=dtype, device=image.device)
    for i, c in enumerate(centres):
        off = float(gradient_offset_a(c, 0.0, tilt_deg, pixel_size_a, handedness)) + defocus_offset_a
        # Linear interpolation between neighbouring strip centres: hat weights that sum to one.
        weight = (1.0 - (dist - c).abs() / step).clamp_min(0.0)
        if i == 0:
            weight = torch.where(dist < c, 1.0, weight)
        if i == n - 1:
            weight = torch.where(dist > c, 1.0, weight)
        rows = torch.nonzero(weight.amax(1) > 0).squeeze(1)
        cols = torch.nonzero(weight.amax(0) > 0).squeeze(1)
        y0, y1 = max(0, int(rows[0]) - margin), min(h, int(rows[-1]) + 1 + margin)
        x0, x1 = max(0, int(cols[0]) - margin), min(w, int(cols[-1]) + 1 + margin)
        if crop and (y1 - y0) * (x1 - x0) < 0.6 * h * w:
            part = _corrected(image[y0:y1, x0:x1], params.shifted(off), pixel_size_a, optics, mode)
            out[y0:y1, x0:x1] += weight[y0:y1, x0:x1].to(dtype) * part
        else:
            if spectrum is None:
                spectrum = torch.fft.rfft2(image)
            out += weight.to(dtype) * _corrected(image, params.shifted(off), pixel_size_a, optics, mode, spectrum)
    return out


def slab_offset_a(z_px: float, tilt_deg: float, pixel_size_a: float, handedness: int = 1) -> float:
    """Defocus offset (Å) in a view at ``tilt_deg`` of the tomogram slab at height ``z_px`` (NovaCTF)."""
    return float(gradient_offset_a(0.0, z_px, tilt_deg, pixel_size_a, handedness))
