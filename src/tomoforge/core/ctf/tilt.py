"""Defocus across a tilted view, and spectra rescaled to one defocus (as Warp and CTFFIND-tilt do).

Sign convention (the one place it is decided; the tilt-series fit can test the other hand):

A point of the tomogram at ``(X, Y, Z)`` (relative to its centre) appears in the aligned view of tilt
``theta`` at ``x = X cos(theta) + Z sin(theta)`` (core/geometry.py). After the tilt its height along the
beam axis is ``z' = -X sin(theta) + Z cos(theta) = -x tan(theta) + Z / cos(theta)``. With
``handedness = +1``, +Z points towards the electron source, so a higher point lies further above the
(underfocused) image plane and has *more* underfocus::

    defocus(x, Z) = defocus_centre + handedness * pixel_size * (-x tan(theta) + Z / cos(theta))

``x`` is the signed distance (pixels) from the tilt axis along aligned +X; in a raw image with tilt axis
``psi`` (CCW from +Y) that is the projection of the position on ``(cos psi, sin psi)``, the direction
the ``.xf`` rotation takes to +X. ``handedness = -1`` flips the sign of both terms.
"""

from __future__ import annotations

import math

import torch

from tomoforge.core.ctf.model import Optics, equiphase_s2
from tomoforge.core.ctf.spectrum import rescale_spectra


def distance_from_axis_px(points_xy: torch.Tensor, tilt_axis_deg: float) -> torch.Tensor:
    """Signed distance ``(...)`` of raw-image points ``(..., 2)`` (relative to the centre) from the axis.

    Positive on the side the aligned image shows at +X.
    """
    a = math.radians(tilt_axis_deg)
    return points_xy[..., 0] * math.cos(a) + points_xy[..., 1] * math.sin(a)


def defocus_offset_a(x_px, z_px, tilt_deg, pixel_size_a: float, handedness: int = 1):
    """Defocus change (Å) of a point at aligned-view ``x_px`` from the axis and tomogram height ``z_px``.

    Broadcasts tensors or floats; see the module docstring for the sign.
    """
    t = torch.deg2rad(torch.as_tensor(tilt_deg, dtype=torch.float64))
    x = torch.as_tensor(x_px, dtype=torch.float64)
    z = torch.as_tensor(z_px, dtype=torch.float64)
    return handedness * pixel_size_a * (-x * torch.tan(t) + z / torch.cos(t))


def slab_defocus_offsets_a(thickness_px: float, defocus_step_a: float, pixel_size_a: float,
                           tilt_deg: float = 0.0) -> torch.Tensor:
    """NovaCTF's Z slabs: slab centres ``(n,)`` in pixels (relative to the volume centre).

    The slab thickness is the largest that keeps the defocus spread within a slab at ``tilt_deg``
    (``Z / cos(tilt)`` grows with tilt) below ``defocus_step_a``.
    """
    step_px = defocus_step_a / pixel_size_a * math.cos(math.radians(tilt_deg))
    n = max(1, math.ceil(thickness_px / max(step_px, 1e-6)))
    edges = torch.linspace(-thickness_px / 2, thickness_px / 2, n + 1, dtype=torch.float64)
    return 0.5 * (edges[1:] + edges[:-1])


def rescale_to_defocus(power: torch.Tensor, tile_defocus_a: torch.Tensor, reference_defocus_a: float,
                       pixel_size_a: float, optics: Optics) -> torch.Tensor:
    """Resample tile spectra ``(n, box, box//2+1)`` so their Thon rings sit where a CTF of the reference
    defocus has them: ``out(s) = in(s')`` with ``chi(s', tile) = chi(s, reference)``."""
    n, box, wr = power.shape
    ky = torch.fft.fftfreq(box, d=pixel_size_a, dtype=torch.float32)
    kx = torch.fft.rfftfreq(box, d=pixel_size_a, dtype=torch.float32)
    s2 = (ky[:, None] ** 2 + kx[None, :] ** 2)[None]
    s2_tile = equiphase_s2(s2, reference_defocus_a, tile_defocus_a.to(torch.float32)[:, None, None], optics)
    scale = torch.sqrt(s2_tile / s2.clamp_min(1e-30))
    scale[:, 0, 0] = 1.0
    return rescale_spectra(power, scale.to(power.dtype))
