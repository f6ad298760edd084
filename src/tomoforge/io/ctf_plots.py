"""Diagnostic PNGs of a CTF fit: the 2D spectrum (left half data, right half fit) and the 1D average with
the fit and the ring-wise cross-correlation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tomoforge.io.atomic import atomic_path


def _centred_half(values: torch.Tensor) -> np.ndarray:
    """An rfft-layout array ``(box, box//2+1)`` as the right half plane, ky increasing downwards."""
    return torch.fft.fftshift(values, dim=0).numpy()


def write_fit_png(path: str | Path, spectrum: torch.Tensor, model: torch.Tensor, freq_per_a: torch.Tensor,
                  profile: torch.Tensor, profile_fit: torch.Tensor, profile_cc: torch.Tensor,
                  band_per_a: tuple[float, float], fit_resolution_a: float, title: str) -> Path:
    """Two panels: 2D spectrum (data left, fit right, both in rfft layout) and the 1D fit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = _centred_half(spectrum.detach().cpu().to(torch.float32))
    fit = _centred_half(model.detach().cpu().to(torch.float32))
    left = data[::-1, ::-1][:, :-1]  # Hermitian mirror: the left half plane of the same data
    lo, hi = np.percentile(data, [2, 98])
    fit_scaled = lo + (hi - lo) * (fit - fit.min()) / max(float(fit.max() - fit.min()), 1e-12)
    img = np.concatenate([left, fit_scaled], axis=1)

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 5))
    ax0.imshow(img, cmap="gray", vmin=lo, vmax=hi)
    ax0.set_title("spectrum: data (left) | fit (right)")
    ax0.set_xticks([])
    ax0.set_yticks([])
    f = freq_per_a.detach().cpu().numpy()
    sel = f > 0
    ax1.plot(f[sel], profile.detach().cpu().numpy()[sel], lw=1, label="equiphase average")
    ax1.plot(f[sel], profile_fit.detach().cpu().numpy()[sel], lw=1, label="CTF² fit")
    ax1.axvspan(band_per_a[0], band_per_a[1], color="0.9", zorder=0, label="fit band")
    ax2 = ax1.twinx()
    ax2.plot(f[sel], profile_cc.detach().cpu().numpy()[sel], color="tab:green", lw=1, label="ring CC")
    ax2.axhline(0.75, color="tab:green", ls=":", lw=1)
    ax2.set_ylim(-1, 1.05)
    ax2.set_ylabel("ring-wise cross-correlation")
    if np.isfinite(fit_resolution_a) and fit_resolution_a > 0:
        ax1.axvline(1 / fit_resolution_a, color="tab:red", ls="--", lw=1, label=f"fit {fit_resolution_a:.1f} Å")
    ax1.set_xlabel("spatial frequency (1/Å)")
    ax1.set_ylabel("background-subtracted amplitude")
    ax1.legend(loc="upper right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return Path(path)


def write_series_png(path: str | Path, tilt_deg, defocus_um, fit_resolution_a, excluded, title: str) -> Path:
    """Defocus and fit resolution against tilt angle for one tilt series (the CTF viewer's summary plot)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.asarray(tilt_deg, dtype=float)
    d = np.asarray(defocus_um, dtype=float)
    r = np.asarray(fit_resolution_a, dtype=float)
    x = np.asarray(excluded, dtype=bool)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(t[~x], d[~x], "o-", ms=3, label="defocus (µm)")
    if x.any():
        ax.plot(t[x], d[x], "x", color="tab:red", label="excluded")
    ax.set_xlabel("tilt angle (°)")
    ax.set_ylabel("defocus (µm)")
    ax2 = ax.twinx()
    ax2.plot(t, r, "s", ms=3, color="tab:orange", label="fit resolution (Å)")
    ax2.set_ylabel("fit resolution (Å)")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return Path(path)
