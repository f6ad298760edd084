"""Automatic detection of bad views in a tilt series: dark, blank / low-signal, and jumping views.

Views are judged against their neighbours in tilt-angle order, with robust statistics (median and MAD), so
the slow fall of intensity and contrast towards high tilt is not mistaken for a fault:

- dark: mean intensity below ``dark_fraction`` of the median of its neighbours' means;
- blank / low signal: the structure a view shares with its neighbours (peak normalised cross-correlation
  after a low-pass) is a robust outlier below the series' typical value;
- jump: the view is displaced from both neighbours by more than ``jump_px`` (and more than the robust
  spread of neighbour-to-neighbour shifts), while the two neighbours agree with each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tomoforge.core.binning import fourier_resize, frequency_grid
from tomoforge.core.motion.global_motion import taper_window
from tomoforge.core.motion.peaks import find_peak


@dataclass
class ViewVerdict:
    """One flagged view: its index in the input stack, a short kind and a human-readable reason."""

    index: int
    kind: str  # "dark", "low-signal" or "jump"
    reason: str


@dataclass
class ViewStatistics:
    """Per-view measurements behind the verdicts (all in input order)."""

    mean: torch.Tensor  # (v,)
    sd: torch.Tensor  # (v,)
    neighbour_cc: torch.Tensor  # (v - 1,) peak correlation of view i with view i + 1
    neighbour_shift: torch.Tensor  # (v - 1, 2) shift (dy, dx) of view i + 1 relative to view i, input pixels


def _robust_sd(x: torch.Tensor) -> torch.Tensor:
    return 1.4826 * (x - x.median()).abs().median()


def _pair_correlation(a: torch.Tensor, b: torch.Tensor, lowpass_px: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Peak normalised CC and the shift of ``b`` relative to ``a`` for image pairs ``(p, h, w)``."""
    h, w = a.shape[-2:]
    win = taper_window((h, w), max(2, min(h, w) // 10), device=a.device)

    def prep(x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(dim=(-2, -1), keepdim=True)
        x = x / x.std(dim=(-2, -1), keepdim=True).clamp(min=1e-12)
        return torch.fft.rfft2(x * win)

    fy, fx = frequency_grid((h, w), device=a.device)
    band = torch.exp(-((fy ** 2 + fx ** 2) * lowpass_px ** 2) * 2) * ((fy ** 2 + fx ** 2) > (1 / min(h, w)) ** 2)
    fa, fb = prep(a) * band, prep(b) * band
    cc = torch.fft.irfft2(torch.conj(fa) * fb, s=(h, w))
    norm = torch.sqrt((torch.fft.irfft2(fa.abs() ** 2, s=(h, w))[..., 0, 0]) *
                      (torch.fft.irfft2(fb.abs() ** 2, s=(h, w))[..., 0, 0])).clamp(min=1e-12)
    shift = find_peak(cc)
    return cc.flatten(-2).max(-1).values / norm, shift


def measure_views(images: torch.Tensor, *, work_size: int = 256, lowpass_px: float = 2.0) -> ViewStatistics:
    """Statistics of views ``(v, h, w)`` (tilt-angle order): means, SDs, neighbour correlations and shifts.

    Correlations are computed on copies Fourier-cropped to at most ``work_size`` pixels a side; shifts are
    reported in input pixels.
    """
    v, h, w = images.shape
    x = images.to(torch.float32)
    sd, mean = torch.std_mean(x, dim=(-2, -1))
    scale = min(1.0, work_size / max(h, w))
    small = (max(16, int(round(h * scale))), max(16, int(round(w * scale))))
    xs = fourier_resize(x, small) if small != (h, w) else x
    if v < 2:
        return ViewStatistics(mean, sd, torch.zeros(0), torch.zeros(0, 2))
    cc, shift = _pair_correlation(xs[:-1], xs[1:], lowpass_px)
    shift = shift * torch.tensor([h / small[0], w / small[1]], device=shift.device)
    return ViewStatistics(mean=mean, sd=sd, neighbour_cc=cc, neighbour_shift=shift)


def find_bad_views(images: torch.Tensor, *, dark_fraction: float = 0.5, low_signal_sd: float = 4.0,
                   jump_px: float | None = None, jump_sd: float = 3.0, window: int = 2,
                   work_size: int = 256) -> tuple[list[ViewVerdict], ViewStatistics]:
    """Flag bad views of ``(v, h, w)`` (tilt-angle order); returns verdicts (one per bad view) and stats.

    ``jump_px`` defaults to 5% of the smaller image side. A view gets one verdict, the first that applies
    in the order dark, low-signal, jump (a jumping view still correlates well at its displaced position).
    """
    v, h, w = images.shape
    stats = measure_views(images, work_size=work_size)
    verdicts: dict[int, ViewVerdict] = {}
    means = stats.mean.to(torch.float64)

    for i in range(v):
        nb = [j for j in range(max(0, i - window), min(v, i + window + 1)) if j != i]
        if not nb:
            continue
        ref = means[nb].median()
        if ref > 0 and means[i] < dark_fraction * ref:
            verdicts[i] = ViewVerdict(i, "dark", f"mean {float(means[i]):.4g} is {float(means[i] / ref):.0%} of "
                                               f"its neighbours' median {float(ref):.4g}")
    if v < 3:
        return list(verdicts.values()), stats

    # a view's signal: its best correlation with a neighbour that is not itself flagged
    cc = stats.neighbour_cc.to(torch.float64)
    best = torch.full((v,), float("nan"), dtype=torch.float64)
    one_sided = set()
    for i in range(v):
        if i in verdicts:
            continue
        cands = [float(cc[i - 1])] if i > 0 and (i - 1) not in verdicts else []
        cands += [float(cc[i])] if i < v - 1 and (i + 1) not in verdicts else []
        if cands:
            best[i] = max(cands)
        if len(cands) == 1:
            one_sided.add(i)  # an end of the series, or beside a flagged view: one correlation, noisier
    valid = ~torch.isnan(best)
    if int(valid.sum()) >= 3:
        idx = torch.nonzero(valid).flatten().tolist()
        med = best[valid].median()
        rsd = _robust_sd(best[valid]).clamp(min=0.02 * float(med.abs()) + 1e-3)
        for k, i in enumerate(idx):
            # compare with views of similar tilt: correlations fall naturally towards high tilt
            near = [best[j] for j in idx[max(0, k - 3):k + 4] if j != i]
            local = torch.stack(near).median() if len(near) >= 2 else med
            k_sd = low_signal_sd * (1.5 if i in one_sided else 1.0)
            if best[i] < local - k_sd * rsd:
                verdicts[i] = ViewVerdict(i, "low-signal", f"correlation with neighbours {float(best[i]):.3f} is far "
                                                           f"below that of views at similar tilt {float(local):.3f}")
    jump_px = 0.05 * min(h, w) if jump_px is None else jump_px
    step = stats.neighbour_shift.to(torch.float64).norm(dim=-1)  # |shift(i -> i + 1)|
    clean = torch.tensor([i not in verdicts and i + 1 not in verdicts for i in range(v - 1)])
    ref_steps = step[clean] if int(clean.sum()) >= 3 else step
    spread = float(_robust_sd(ref_steps)) + float(ref_steps.median())
    # skip neighbours already flagged, so one dark view does not make its neighbours look bad
    good = [i for i in range(v) if i not in verdicts]
    for i in good:
        left = max((j for j in good if j < i), default=None)
        right = min((j for j in good if j > i), default=None)
        if left is None or right is None or left != i - 1 or right != i + 1:
            continue
        d_left, d_right = step[i - 1], step[i]
        s_lr = stats.neighbour_shift[i - 1] + stats.neighbour_shift[i]  # left -> right through i
        threshold = max(jump_px, jump_sd * spread)
        if min(float(d_left), float(d_right)) > threshold and float(s_lr.norm()) < 0.5 * min(float(d_left),
                                                                                         float(d_right)):
            dy, dx = (float(c) for c in stats.neighbour_shift[i - 1])
            verdicts[i] = ViewVerdict(i, "jump", f"displaced by ({dx:.1f}, {dy:.1f}) px (x, y) from the previous "
                                                 f"view while its neighbours agree (threshold {threshold:.1f} px)")

    return sorted(verdicts.values(), key=lambda d: d.index), stats
