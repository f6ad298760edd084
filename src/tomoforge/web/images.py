"""PNG renderings of views and tomogram slices for the viewers (8-bit, percentile-scaled)."""

from __future__ import annotations

import io

import numpy as np

from tomoforge.report.figures import block_mean


def to_png(image: np.ndarray, max_size: int = 512) -> bytes:
    """An ``(h, w)`` float image as PNG, block-averaged to at most ``max_size`` and flipped so +Y is up."""
    from PIL import Image

    small = block_mean(image, max_size)
    lo, hi = np.percentile(small, [1, 99])
    u8 = (np.clip((small - lo) / (hi - lo + 1e-12), 0, 1) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8[::-1]).save(buf, format="PNG")  # row 0 is the bottom row (IMOD display)
    return buf.getvalue()


def volume_slice(path: str, axis: str, index: int | None) -> np.ndarray:
    """A slice of a ``(z, y, x)`` MRC volume: ``axis`` z gives XY, y gives XZ, x gives YZ."""
    from tomoforge.io.mrc import open_stack

    vol = open_stack(path)
    axes = {"z": 0, "y": 1, "x": 2}
    a = axes[axis]
    n = vol.shape[a]
    i = n // 2 if index is None else int(np.clip(index, 0, n - 1))
    return np.asarray(np.take(vol, i, axis=a), dtype=np.float32)
