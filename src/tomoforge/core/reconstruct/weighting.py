"""Radial weighting for weighted back-projection, applied to the raw (unaligned) views.

The ramp acts along the aligned X axis (perpendicular to the tilt axis). Because the views stay raw (the
alignment is applied once, at back-projection), each view's filter is evaluated at aligned frequencies
``k_aligned = A^-T k_raw`` with ``A`` the view's ``.xf`` matrix: the same filter IMOD applies to an
aligned stack, without resampling the data first.

Frequencies are in cycles per unbinned pixel unless a name says ``_per_voxel``.
"""

from __future__ import annotations

import math

import torch

FILTERS = ("ramp", "hamming", "cosine", "sirt-like")


def tilt_weights(tilt_deg: torch.Tensor) -> torch.Tensor:
    """Angular spacing ``(v,)`` in radians of each view (half the gap to each neighbour; ends doubled).

    Makes WBP a Riemann sum of the filtered back-projection integral, also for uneven tilt steps.
    """
    t = torch.deg2rad(torch.as_tensor(tilt_deg, dtype=torch.float64).reshape(-1))
    n = t.numel()
    if n == 1:
        return torch.full((1,), math.pi, dtype=torch.float64)
    order = torch.argsort(t)
    ts = t[order]
    gaps = ts[1:] - ts[:-1]
    w = torch.empty(n, dtype=torch.float64)
    w[1:-1] = 0.5 * (gaps[1:] + gaps[:-1])
    w[0], w[-1] = gaps[0], gaps[-1]
    out = torch.empty_like(w)
    out[order] = w
    return out


def sirt_like_gain(k_per_voxel: torch.Tensor, tilt_deg: torch.Tensor, view: int, thickness_vox: float,
                   iterations: int, relaxation: float = 1.0) -> torch.Tensor:
    """Gain ``1 - (1 - lambda s(k))^N`` that N SIRT iterations reach on view ``view``'s Fourier line.

    ``s(k)`` models our SIRT's normalised operator ``C A^T R A`` (row- and column-sum normalised) on a
    slab of ``thickness_vox`` voxels: the mean over views j of ``sinc(T k sin(t_i - t_j) / cos t_j)``, the
    amplitude with which a wave along view i survives ray-averaging through the slab at view j (negative
    lobes clipped: the operator is positive semi-definite). This is the idea of IMOD's
    FakeSIRTiterations (a WBP filter equivalent to N SIRT iterations from zero), derived for the SIRT
    implemented here; tests compare both.
    """
    t = torch.deg2rad(torch.as_tensor(tilt_deg, dtype=torch.float64).reshape(-1)).to(k_per_voxel.device)
    k = k_per_voxel.to(torch.float64).abs()
    arg = thickness_vox * k[..., None] * torch.sin(t[view] - t) / torch.cos(t)
    s = torch.special.sinc(arg).clamp(min=0.0).mean(-1).clamp(max=1.0)
    return 1.0 - (1.0 - relaxation * s) ** int(iterations)


def radial_profile(k_abs: torch.Tensor, kind: str, *, nyquist: float = 0.5, cutoff: float | None = None,
                   falloff: float = 0.035) -> torch.Tensor:
    """Roll-off multiplying the ramp: ``hamming`` / ``cosine`` tapers to 0 at ``nyquist``; an optional
    IMOD-style Gaussian beyond ``cutoff`` (``exp(-(k-cutoff)^2 / (2 falloff^2))``). All in cycles/pixel.
    """
    prof = torch.ones_like(k_abs)
    rel = (k_abs / nyquist).clamp(max=1.0)
    if kind == "hamming":
        prof = 0.54 + 0.46 * torch.cos(math.pi * rel)
    elif kind == "cosine":
        prof = torch.cos(0.5 * math.pi * rel)
    if cutoff is not None:
        over = (k_abs - cutoff).clamp(min=0.0)
        prof = prof * torch.exp(-over.square() / (2 * falloff**2))
    return prof * (k_abs <= nyquist)


def _fast_size(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (FFT-friendly padding)."""
    m = n
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def filter_views(images: torch.Tensor, xf: torch.Tensor, tilt_deg: torch.Tensor, *, kind: str = "ramp",
                 binning: float = 1.0, cutoff: float | None = None, falloff: float = 0.035,
                 sirt_iterations: int = 0, thickness_vox: float = 0.0, pad_factor: float = 1.5,
                 view_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Weight raw views ``(v, H, W)`` for back-projection; returns a new ``(v, H, W)`` float tensor.

    Each view: subtract its mean, pad (zeros) to ``pad_factor`` x size, multiply its spectrum by
    ``w_i |k_ax| profile(k)`` at aligned frequencies (``w_i`` = angular spacing), with an antialiasing cut
    at the output Nyquist ``0.5 / binning``. ``kind`` is one of :data:`FILTERS`; ``sirt-like`` multiplies
    the ramp by :func:`sirt_like_gain` with ``sirt_iterations`` and the output ``thickness_vox``.
    ``cutoff``/``falloff`` are in cycles per output voxel (IMOD's RADIAL entries).
    """
    if kind not in FILTERS:
        raise ValueError(f"unknown filter {kind!r}; expected one of {FILTERS}")
    v, h, w = images.shape
    dev = images.device
    hp, wp = _fast_size(int(math.ceil(h * pad_factor))), _fast_size(int(math.ceil(w * pad_factor)))
    ky = torch.fft.fftfreq(hp, device=dev, dtype=torch.float64)[:, None]
    kx = torch.fft.rfftfreq(wp, device=dev, dtype=torch.float64)[None, :]
    a_inv = torch.linalg.inv(torch.as_tensor(xf, dtype=torch.float64)[..., :2, :2]).to(dev)
    if view_weights is None:
        view_weights = tilt_weights(tilt_deg)
    nyq = 0.5 / float(binning)
    cut = None if cutoff is None else cutoff / float(binning)
    fall = falloff / float(binning)
    out = torch.empty_like(images, dtype=torch.float32 if not images.is_floating_point() else images.dtype)
    for i in range(v):
        # k_aligned = A^-T k_raw
        kax = a_inv[i, 0, 0] * kx + a_inv[i, 1, 0] * ky
        kay = a_inv[i, 0, 1] * kx + a_inv[i, 1, 1] * ky
        kabs = torch.sqrt(kax.square() + kay.square())
        filt = kax.abs() * radial_profile(kabs, "ramp" if kind == "sirt-like" else kind, nyquist=nyq,
                                          cutoff=cut, falloff=fall)
        if kind == "sirt-like":
            # Tabulate the gain on |k| and interpolate: evaluating it per frequency would need (h, w, v).
            k_tab = torch.linspace(0, 1.0, 2049, dtype=torch.float64, device=dev)
            g_tab = sirt_like_gain(k_tab * binning, tilt_deg, i, thickness_vox, sirt_iterations)
            pos = (kax.abs() / k_tab[-1] * (k_tab.numel() - 1)).clamp(max=k_tab.numel() - 1.001)
            lo = pos.floor().long()
            frac = pos - lo
            filt = filt * (g_tab[lo] * (1 - frac) + g_tab[lo + 1] * frac)
            # SIRT's iterations also undo the bilinear projector's blur (its fixed point reproduces the
            # data); plain WBP keeps it. Pre-compensate the 2D linear-interpolation MTF (capped at 2x).
            mtf = (torch.special.sinc(kx).square() * torch.special.sinc(ky).square()).clamp(min=0.5)
            filt = filt / mtf
        filt = (filt * float(view_weights[i])).to(torch.float32)
        img = images[i].to(torch.float32)
        img = img - img.mean()
        spec = torch.fft.rfft2(img, s=(hp, wp))
        spec *= filt
        out[i] = torch.fft.irfft2(spec, s=(hp, wp))[:h, :w].to(out.dtype)
    return out
