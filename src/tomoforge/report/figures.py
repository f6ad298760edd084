"""Figures for the report, as base64 PNG data URIs (matplotlib, no display)."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def to_data_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def block_mean(image: np.ndarray, max_size: int) -> np.ndarray:
    """``(h, w)`` averaged over square blocks so the larger side is at most ``max_size`` (edges cropped)."""
    step = max(1, int(np.ceil(max(image.shape) / max_size)))
    h, w = (image.shape[0] // step) * step, (image.shape[1] // step) * step
    return image[:h, :w].reshape(h // step, step, w // step, step).mean((1, 3))


def _normalise(img: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(img, [1, 99])
    return np.clip((img - lo) / (hi - lo + 1e-12), 0, 1)


def thumbnail_strip(images: list[np.ndarray], labels: list[str], excluded: list[bool], *, per_row: int = 14) -> str:
    """Views side by side (tilt order); excluded ones crossed in red."""
    n = len(images)
    rows = (n + per_row - 1) // per_row
    fig, axes = plt.subplots(rows, per_row, figsize=(per_row * 0.9, rows * 1.05), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (img, label, ex) in enumerate(zip(images, labels, excluded, strict=True)):
        ax = axes.flat[i]
        ax.imshow(_normalise(img), cmap="gray", origin="lower")
        ax.set_title(label, fontsize=6, color="red" if ex else "black")
        if ex:
            h, w = img.shape
            ax.plot([0, w - 1], [0, h - 1], "r-", lw=1.5)
            ax.plot([0, w - 1], [h - 1, 0], "r-", lw=1.5)
    fig.subplots_adjust(wspace=0.05, hspace=0.3)
    return to_data_uri(fig)


def line_plot(series: dict[str, tuple[list[float], list[float]]], xlabel: str, ylabel: str, *,
              title: str = "", markers: bool = True, excluded_x: list[float] | None = None) -> str:
    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    for name, (x, y) in series.items():
        ax.plot(x, y, "o-" if markers else "-", ms=3, lw=1, label=name)
    for x in excluded_x or []:
        ax.axvline(x, color="red", alpha=0.3, lw=3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    if len(series) > 1:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return to_data_uri(fig)


def motion_traces(traces: list[np.ndarray], labels: list[str]) -> str:
    """Per-movie frame trajectories ``(n, 2)`` in px, each starting at its first frame."""
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    cmap = plt.get_cmap("viridis")
    for i, tr in enumerate(traces):
        tr = np.asarray(tr) - np.asarray(tr)[:1]
        ax.plot(tr[:, 0], tr[:, 1], "-", color=cmap(i / max(1, len(traces) - 1)), lw=1)
    ax.set_xlabel("x shift (px)")
    ax.set_ylabel("y shift (px)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(f"{len(traces)} movies, colour = tilt order", fontsize=8)
    ax.grid(alpha=0.3)
    return to_data_uri(fig)


def volume_slices(volume: np.ndarray, pixel_size_a: float) -> str:
    """Central XY and XZ slices of a ``(z, y, x)`` volume."""
    d, h, w = volume.shape
    fig, axes = plt.subplots(2, 1, figsize=(6, 6 * (h + d) / w + 0.5), gridspec_kw={"height_ratios": [h, d]})
    xy = volume[max(0, d // 2 - 2): d // 2 + 3].mean(0)
    xz = volume[:, max(0, h // 2 - 2): h // 2 + 3].mean(1)
    axes[0].imshow(_normalise(xy), cmap="gray", origin="lower")
    axes[0].set_title(f"XY (central slab), {pixel_size_a:.2f} Å/px", fontsize=8)
    axes[1].imshow(_normalise(xz), cmap="gray", origin="lower")
    axes[1].set_title("XZ", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return to_data_uri(fig)


def bar_chart(labels: list[str], values: list[float], xlabel: str) -> str:
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(labels) + 0.8))
    ax.barh(range(len(labels)), values, color="#4477aa")
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    return to_data_uri(fig)
