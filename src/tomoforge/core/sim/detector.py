"""A counting camera: pixel gain, Poisson counts, X-ray hits.

The gain reference follows SerialEM/MotionCor usage: ``gain-corrected frame = raw frame * gain``, so a pixel
with sensitivity ``s`` records ``Poisson(lambda * s)`` and its gain is ``1 / s``.
"""

from __future__ import annotations

import numpy as np


def gain_reference(shape: tuple[int, int], rms: float, rng) -> np.ndarray:
    """Gain ``(h, w)`` float32 with mean ~1: pixel scatter plus column banding (a typical CMOS pattern)."""
    if rms == 0:
        return np.ones(shape, dtype=np.float32)
    h, w = shape
    pix = rng.normal(0, rms, size=shape)
    cols = rng.normal(0, 0.5 * rms, size=(1, w))
    sens = np.clip(1 + pix + cols, 0.3, 2.0)
    return (1.0 / sens).astype(np.float32)


def count_frame(expected: np.ndarray, gain: np.ndarray, rng, noise: bool = True) -> np.ndarray:
    """Raw counts ``(h, w)`` float64 from the expected gain-corrected counts ``expected`` ``(h, w)``."""
    lam = np.clip(expected, 0, None) / gain
    if not noise:
        return lam
    # rounding to 1e-6 keeps the draw identical when the last float bits of lambda differ between FFT backends
    return rng.poisson(np.round(lam, 6)).astype(np.float64)


def xray_hits(shape: tuple[int, int], per_mpx: float, mean_counts: float, rng) -> list[tuple[int, int, float]]:
    """X-ray events for one frame: ``[(y, x, counts)]``, each 20-80 times the mean count (at least 30)."""
    h, w = shape
    n = rng.poisson(per_mpx * h * w * 1e-6)
    ys = rng.integers(0, h, size=n)
    xs = rng.integers(0, w, size=n)
    vals = np.maximum(rng.uniform(20, 80, size=n) * mean_counts, 30.0)
    return [(int(y), int(x), float(np.round(v))) for y, x, v in zip(ys, xs, vals, strict=True)]


def split_into_raw_frames(counts: np.ndarray, n_raw: int, rng) -> np.ndarray:
    """Spread integer counts ``(h, w)`` over ``n_raw`` single-electron frames ``(n_raw, h, w)`` uint8.

    Each electron lands in a uniformly random raw frame (sequential binomial splitting); two electrons in
    one pixel of one raw frame count once, as on a real event-counting camera (coincidence loss).
    """
    left = np.asarray(counts, dtype=np.int64)
    out = np.empty((n_raw,) + left.shape, dtype=np.uint8)
    for j in range(n_raw):
        take = rng.binomial(left, 1.0 / (n_raw - j)) if j < n_raw - 1 else left
        out[j] = np.minimum(take, 1)
        left = left - take
    return out
