"""Gain-reference orientation: apply a rotation/flip, and find the one that fits the frames.

Convention (MotionCor2's): the gain is multiplicative, ``corrected = raw * gain``. A detector with
sensitivity ``s`` records ``raw = signal * s``, so the gain is ``1 / s`` and the mean of many raw frames is
proportional to ``1 / gain`` (the simulator writes ``raw = signal / gain``).

Orientation: ``rotation`` counter-clockwise quarter turns of the (h, w) array as displayed with row 0 at
the top (``torch.rot90`` over the last two dims), then, if ``flip``, a left-right flip (about the vertical
axis). TIFF frames are stored top-down and MRC bottom-up, and cameras rotate, so a gain can arrive in any
of these 8 orientations; ``score_gain_orientations`` ranks them by how well ``1 / gain`` correlates with
the mean of a sample of raw frames, after removing low frequencies (specimen, ice gradient) from both.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tomoforge.errors import InputError

ORIENTATIONS: tuple[tuple[int, bool], ...] = tuple((r, f) for f in (False, True) for r in range(4))


def apply_gain_orientation(gain: torch.Tensor, rotation: int, flip: bool) -> torch.Tensor:
    """Rotate ``gain`` (..., h, w) by ``rotation`` CCW quarter turns, then flip left-right if ``flip``."""
    out = torch.rot90(gain, k=int(rotation) % 4, dims=(-2, -1))
    return torch.flip(out, dims=(-1,)) if flip else out


def invert_gain_orientation(gain: torch.Tensor, rotation: int, flip: bool) -> torch.Tensor:
    """Undo ``apply_gain_orientation``."""
    out = torch.flip(gain, dims=(-1,)) if flip else gain
    return torch.rot90(out, k=-int(rotation) % 4, dims=(-2, -1))


def check_gain_shape(gain_shape: tuple[int, int], frame_shape: tuple[int, int], rotation: int = 0) -> None:
    """InputError when the oriented gain cannot match the frames; suggests a quarter turn when h, w are swapped."""
    gh, gw = gain_shape[-2:]
    if rotation % 2:
        gh, gw = gw, gh
    fh, fw = frame_shape[-2:]
    if (gh, gw) == (fh, fw):
        return
    if (gw, gh) == (fh, fw):
        raise InputError(f"gain is {gh}x{gw} after rotation {rotation} but frames are {fh}x{fw}; the gain "
                         f"looks rotated: try gain_rotation={(rotation + 1) % 4} or {(rotation + 3) % 4}",
                         field="gain_rotation", expected=f"a {fh}x{fw} gain")
    raise InputError(f"gain is {gh}x{gw} (after rotation {rotation}) but frames are {fh}x{fw}", field="gain",
                     expected=f"a gain reference of {fh}x{fw} pixels")


def _highpass(image: torch.Tensor, radius_px: int) -> torch.Tensor:
    """Subtract the local mean over a (2r+1)^2 box: keeps pixel-scale gain texture, drops the specimen."""
    if radius_px <= 0:
        return image - image.mean()
    k = 2 * radius_px + 1
    local = F.avg_pool2d(image[None, None], k, stride=1, padding=radius_px, count_include_pad=False)[0, 0]
    return image - local


def _correlation(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    a = a[mask] - a[mask].mean()
    b = b[mask] - b[mask].mean()
    denom = torch.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def _central_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    h, w = image.shape[-2:]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return image[..., top:top + size, left:left + size]


def score_gain_orientations(gain: torch.Tensor, frames_mean: torch.Tensor, highpass_radius_px: int = 4,
                            max_size_px: int = 1024) -> list[tuple[int, bool, float]]:
    """Correlation of ``log(frames_mean)`` with ``-log(oriented gain)`` for each orientation that fits.

    gain: (h, w) or (w, h) multiplicative gain; frames_mean: (h, w) mean of raw frames.
    Returns ``(rotation, flip, score)`` sorted best first; score is a correlation in [-1, 1].
    Pixels where the gain or the mean is not positive (defects) are left out. Only the central
    ``max_size_px`` square is compared (pixel-scale texture needs no more; binning would destroy it).
    """
    full_shape = tuple(frames_mean.shape)
    frames_mean = _central_crop(frames_mean.to(torch.float64), max_size_px)
    gain = gain.to(device=frames_mean.device, dtype=torch.float64)
    mean_ok = torch.isfinite(frames_mean) & (frames_mean > 0)
    log_mean = _highpass(torch.log(torch.where(mean_ok, frames_mean, frames_mean[mean_ok].mean())),
                         highpass_radius_px)
    results = []
    for rotation, flip in ORIENTATIONS:
        g = apply_gain_orientation(gain, rotation, flip)
        if tuple(g.shape) != full_shape:
            continue
        g = _central_crop(g, max_size_px)
        ok = mean_ok & torch.isfinite(g) & (g > 0)
        if ok.sum() < 16:
            continue
        neg_log_gain = _highpass(-torch.log(torch.where(ok, g, g[ok].mean())), highpass_radius_px)
        results.append((rotation, flip, _correlation(log_mean, neg_log_gain, ok)))
    if not results:
        check_gain_shape(tuple(gain.shape), full_shape)
    return sorted(results, key=lambda r: -r[2])


def better_gain_orientation(scores: list[tuple[int, bool, float]], rotation: int, flip: bool,
                            n_pixels: int | None = None, margin: float = 0.05) -> tuple[int, bool, float] | None:
    """The best orientation when it fits clearly better than the chosen one, else None.

    "Clearly" = its score exceeds the chosen one's by ``margin`` and by 5 / sqrt(n_pixels) (the spread of
    a correlation between unrelated images), and is itself significant.
    """
    if not scores:
        return None
    noise = 5.0 / math.sqrt(n_pixels) if n_pixels else 0.0
    chosen = next((s for s in scores if s[0] == rotation % 4 and s[1] == bool(flip)), None)
    best = scores[0]
    chosen_score = chosen[2] if chosen is not None else -1.0
    if (best[0], best[1]) == (rotation % 4, bool(flip)):
        return None
    if best[2] - chosen_score > max(margin, noise) and best[2] > noise:
        return best
    return None


def describe_orientation(rotation: int, flip: bool) -> str:
    turn = f"rotate {90 * (rotation % 4)}° counter-clockwise" if rotation % 4 else "no rotation"
    return turn + (", then flip left-right" if flip else "")


__all__ = ["ORIENTATIONS", "apply_gain_orientation", "better_gain_orientation", "check_gain_shape",
           "describe_orientation", "invert_gain_orientation", "score_gain_orientations"]
