"""Binning by Fourier cropping (any factor, integer or not) and intensity normalisation.

Fourier cropping keeps every frequency the smaller grid can hold and drops the rest, so it does not alias
the way pixel averaging does. A soft (cosine) edge before the new Nyquist limits ringing.

Geometry: the output pixel ``j`` samples the input at ``j * s + (s - 1) / 2`` (``s = n_in / n_out`` per
axis), so the image centre ``(n - 1) / 2`` maps onto the output centre, as IMOD's ``newstack -bin`` does.
"""

from __future__ import annotations

import math

import torch

NORMALISATIONS = ("none", "mean", "sum", "zscore")


def output_shape(shape_hw: tuple[int, int], factor: float) -> tuple[int, int]:
    """Shape ``(h, w)`` after binning by ``factor`` (rounded, at least 1 pixel)."""
    if factor <= 0:
        raise ValueError(f"binning factor must be positive, got {factor}")
    return tuple(max(1, int(round(n / factor))) for n in shape_hw)


def frequency_grid(shape_hw: tuple[int, int], device=None, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Spatial frequencies ``(fy, fx)`` in cycles per pixel of an rfft2 grid ``(h, w // 2 + 1)``."""
    h, w = shape_hw
    fy = torch.fft.fftfreq(h, device=device, dtype=dtype)[:, None].expand(h, w // 2 + 1)
    fx = torch.fft.rfftfreq(w, device=device, dtype=dtype)[None, :].expand(h, w // 2 + 1)
    return fy, fx


def phase_ramp(shape_hw: tuple[int, int], shift_yx: torch.Tensor) -> torch.Tensor:
    """rfft2 multiplier ``(..., h, w // 2 + 1)`` that moves image content by ``shift_yx`` ``(..., 2)`` pixels.

    ``out(x) = in(x - shift)``: a positive shift moves features towards larger indices (wrapping round).
    Built as the outer product of two 1D ramps (phases in float64), which is far cheaper than a 2D one.
    """
    h, w = shape_hw
    s = shift_yx.to(torch.float64)
    fy = torch.fft.fftfreq(h, device=s.device, dtype=torch.float64)
    fx = torch.fft.rfftfreq(w, device=s.device, dtype=torch.float64)
    py = -2 * math.pi * s[..., 0, None] * fy
    px = -2 * math.pi * s[..., 1, None] * fx
    ry = torch.polar(torch.ones_like(py), py).to(torch.complex64)
    rx = torch.polar(torch.ones_like(px), px).to(torch.complex64)
    return ry[..., :, None] * rx[..., None, :]


def resize_spectrum(spectrum: torch.Tensor, in_shape: tuple[int, int], out_shape: tuple[int, int]) -> torch.Tensor:
    """Crop (or zero-pad) an rfft2 spectrum ``(..., h, w // 2 + 1)`` of an ``in_shape`` image to ``out_shape``.

    Values are not rescaled; see :func:`fourier_resize` for the intensity factor.
    """
    h, w = in_shape
    ho, wo = out_shape
    out = spectrum.new_zeros(spectrum.shape[:-2] + (ho, wo // 2 + 1))
    m = min(h, ho)
    n_pos, n_neg = (m + 1) // 2, m // 2
    nc = min(w, wo) // 2 + 1
    out[..., :n_pos, :nc] = spectrum[..., :n_pos, :nc]
    if n_neg:
        out[..., ho - n_neg:, :nc] = spectrum[..., h - n_neg:, :nc]
    return out


def cosine_edge(shape_hw: tuple[int, int], edge_fraction: float = 0.1, device=None) -> torch.Tensor:
    """Radial low-pass ``(h, w // 2 + 1)``: 1 up to ``1 - edge_fraction`` of Nyquist, cosine to 0 at Nyquist.

    The radius is measured in units of each axis's own Nyquist, so non-square grids get an elliptic edge.
    """
    fy, fx = frequency_grid(shape_hw, device=device)
    r = torch.sqrt((2 * fy) ** 2 + (2 * fx) ** 2)
    if edge_fraction <= 0:
        return (r <= 1).to(torch.float32)
    t = ((r - (1 - edge_fraction)) / edge_fraction).clamp(0, 1)
    return 0.5 * (1 + torch.cos(math.pi * t))


def fourier_resize(images: torch.Tensor, out_shape: tuple[int, int], *, edge_fraction: float = 0.1,
                   keep_centre: bool = True) -> torch.Tensor:
    """Resample images ``(..., h, w)`` to ``(..., ho, wo)`` by Fourier cropping or padding.

    The mean intensity is preserved. ``edge_fraction`` sets the anti-aliasing cosine edge (fraction of the
    smaller grid's Nyquist). With ``keep_centre`` the centre ``(n - 1) / 2`` stays the centre.
    """
    h, w = images.shape[-2:]
    ho, wo = out_shape
    x = images.to(torch.float32)
    spec = torch.fft.rfft2(x)
    if keep_centre:
        # Sample the input at j * s + (s - 1) / 2: move content by -(s - 1) / 2 input pixels first.
        off = torch.tensor([-(h / ho - 1) / 2, -(w / wo - 1) / 2], device=x.device)
        if bool((off != 0).any()):
            spec = spec * phase_ramp((h, w), off)
    spec = resize_spectrum(spec, (h, w), (ho, wo))
    small = (min(h, ho), min(w, wo))
    if edge_fraction > 0:
        edge = cosine_edge(small, edge_fraction, device=x.device)
        spec = spec * resize_spectrum(edge.to(spec.dtype), small, (ho, wo))
    return torch.fft.irfft2(spec, s=(ho, wo)) * (ho * wo / (h * w))


def bin_images(images: torch.Tensor, factor: float, *, edge_fraction: float = 0.1,
               normalisation: str = "none") -> tuple[torch.Tensor, tuple[float, float]]:
    """Bin ``(..., h, w)`` by ``factor`` (any positive number) with Fourier cropping.

    Returns the binned images and the actual factors ``(sy, sx) = (h / ho, w / wo)`` (pixel sizes scale by
    these, which differ from ``factor`` by the rounding of the output shape).
    ``normalisation``: ``none`` keeps the mean, ``sum`` keeps the counts per area (values times sy*sx),
    ``mean`` divides by the mean, ``zscore`` gives mean 0 and SD 1 per image.
    """
    h, w = images.shape[-2:]
    ho, wo = output_shape((h, w), factor)
    out = fourier_resize(images, (ho, wo), edge_fraction=edge_fraction)
    scale = (h / ho, w / wo)
    return normalise_intensity(out, normalisation, area_factor=scale[0] * scale[1]), scale


def normalise_intensity(images: torch.Tensor, mode: str = "none", *, area_factor: float = 1.0) -> torch.Tensor:
    """Per-image intensity normalisation of ``(..., h, w)``; ``mode`` as in :func:`bin_images`."""
    if mode == "none":
        return images
    if mode == "sum":
        return images * area_factor
    if mode == "mean":
        mean = images.mean(dim=(-2, -1), keepdim=True)
        return images / torch.where(mean == 0, torch.ones_like(mean), mean)
    if mode == "zscore":
        sd, mean = torch.std_mean(images, dim=(-2, -1), keepdim=True)
        return (images - mean) / torch.where(sd == 0, torch.ones_like(sd), sd)
    raise ValueError(f"unknown normalisation {mode!r} (expected one of {', '.join(NORMALISATIONS)})")
