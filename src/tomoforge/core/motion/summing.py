"""Correct frames with their shifts (or a patch deformation) and sum them, binned, optionally dose weighted.

Every frame is resampled once: a Fourier phase shift for full-frame shifts, or one bicubic warp for a patch
deformation. Binning (Fourier cropping) and dose weights are applied to the frame spectra, and the sums are
accumulated in Fourier space, so a movie costs one forward FFT per frame and one inverse per output.

Even/odd: ``even`` sums the frames at even 0-based positions of the summed range (1st, 3rd, ... frame),
``odd`` those at odd positions; ``even + odd == sum`` without dose weighting.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tomoforge.core.binning import cosine_edge, output_shape, phase_ramp, resize_spectrum
from tomoforge.core.motion.patch_motion import PatchMotion, warp_frame


@dataclass
class MovieSums:
    """Sums of one movie: ``total`` ``(ho, wo)``; ``even``/``odd`` when asked; the binning actually applied."""

    total: torch.Tensor
    even: torch.Tensor | None
    odd: torch.Tensor | None
    scale_yx: tuple[float, float]
    frames_summed: list[int]


def frame_indices(n_frames: int, first: int = 0, last: int | None = None) -> list[int]:
    """0-based frame indices ``first..last`` inclusive (``last=None``: to the end). Raises on a bad range."""
    last = n_frames - 1 if last is None else last
    if first < 0 or last >= n_frames or first > last:
        raise ValueError(f"frame range {first}..{last} does not fit a movie of {n_frames} frames "
                         f"(valid: 0..{n_frames - 1})")
    return list(range(first, last + 1))


def sum_frames(frames: torch.Tensor, *, shifts: torch.Tensor | None = None, deformation: PatchMotion | None = None,
               indices: list[int] | None = None, bin_factor: float = 1.0, edge_fraction: float = 0.1,
               dose_weights: torch.Tensor | None = None, split_even_odd: bool = False) -> MovieSums:
    """Corrected (and binned) sums of frames ``(n, h, w)``.

    ``shifts`` ``(n, 2)`` (dy, dx) or ``deformation`` give the motion (neither: plain sum). ``indices``
    picks the frames to sum (default all). ``dose_weights`` ``(n, ho, wo // 2 + 1)`` multiplies each binned
    frame spectrum (see :func:`tomoforge.core.dose.frame_dose_weights`, computed at the binned size).
    """
    n, h, w = frames.shape
    idx = list(range(n)) if indices is None else list(indices)
    ho, wo = output_shape((h, w), bin_factor)
    small = (min(h, ho), min(w, wo))
    edge = resize_spectrum(cosine_edge(small, edge_fraction, device=frames.device).to(torch.complex64), small,
                           (ho, wo)) if bin_factor != 1 else None
    # keep the image centre the centre when binning (see core.binning)
    centre = torch.tensor([-(h / ho - 1) / 2, -(w / wo - 1) / 2], device=frames.device)
    acc = [torch.zeros((ho, wo // 2 + 1), dtype=torch.complex64, device=frames.device) for _ in range(3)]
    for pos, i in enumerate(idx):
        frame = frames[i].to(torch.float32)
        move = centre.clone()
        if deformation is not None:
            frame = warp_frame(frame, deformation.field(i, device=frame.device))
        elif shifts is not None:
            move = move - shifts[i].to(move)
        spec = torch.fft.rfft2(frame)
        if bool((move != 0).any()):
            spec = spec * phase_ramp((h, w), move)
        spec = resize_spectrum(spec, (h, w), (ho, wo))
        if edge is not None:
            spec = spec * edge
        if dose_weights is not None:
            spec = spec * dose_weights[i].to(spec.device)
        acc[0] += spec
        acc[1 + pos % 2] += spec
    scale = ho * wo / (h * w)

    def back(s: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft2(s, s=(ho, wo)) * scale

    return MovieSums(total=back(acc[0]), even=back(acc[1]) if split_even_odd else None,
                     odd=back(acc[2]) if split_even_odd else None, scale_yx=(h / ho, w / wo), frames_summed=idx)
