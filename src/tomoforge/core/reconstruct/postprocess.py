"""Tomogram post-processing: trim, explicit axis rotations/flips, normalisation, 8-bit conversion.

Every operation says what it does to the axes of a ``(z, y, x)`` volume; nothing is implied. Statistics
for normalising come from a subsample so they can be computed once and then applied slab by slab.
"""

from __future__ import annotations

import numpy as np
import torch


def trim_volume(vol: torch.Tensor, z: tuple[int, int] | None = None, y: tuple[int, int] | None = None,
                x: tuple[int, int] | None = None) -> torch.Tensor:
    """Keep half-open index ranges along z, y, x (None keeps the axis). Raises ValueError if empty."""
    sl = []
    for name, rng, n in (("z", z, vol.shape[-3]), ("y", y, vol.shape[-2]), ("x", x, vol.shape[-1])):
        if rng is None:
            sl.append(slice(None))
            continue
        a, b = int(rng[0]), int(rng[1])
        if not (0 <= a < b <= n):
            raise ValueError(f"trim range {name}=[{a}, {b}) is not inside 0..{n}")
        sl.append(slice(a, b))
    return vol[(..., *sl)]


def rotate_x_90(vol: torch.Tensor, turns: int = 1) -> torch.Tensor:
    """Right-handed rotation by ``90 * turns`` degrees about +X (geometry.rotation_x): a point
    ``(x, y, z)`` moves to ``(x, -z, y)`` per turn, so ``(d, h, w)`` becomes ``(h, d, w)``.
    ``turns=-1`` is IMOD ``trimvol -rx`` (a tilt's (X, Z, Y) output to X, Y, Z)."""
    out = vol
    for _ in range(turns % 4):
        out = out.flip(-3).transpose(-3, -2)
    return out


def flip_axes(vol: torch.Tensor, axes: str) -> torch.Tensor:
    """Mirror along the named axes (any of ``"x"``, ``"y"``, ``"z"``). A single flip changes handedness."""
    dims = {"z": -3, "y": -2, "x": -1}
    bad = set(axes) - set(dims)
    if bad:
        raise ValueError(f"unknown axes {sorted(bad)}; expected letters from 'xyz'")
    return vol.flip([dims[a] for a in axes]) if axes else vol


def volume_stats(vol, max_samples: int = 2_000_000, seed: int = 0) -> dict[str, float]:
    """Mean, SD and 0.1/99.9 percentiles from a random subsample. ``vol`` may be a numpy memmap: only
    the sampled values are read."""
    n = int(np.prod(vol.shape))
    g = np.random.default_rng(seed)
    if isinstance(vol, torch.Tensor):
        flat = vol.reshape(-1)
        sample = flat[torch.from_numpy(g.integers(0, n, max_samples))] if n > max_samples else flat
        sample = sample.double().cpu().numpy()
    else:
        flat = np.asarray(vol).reshape(-1)
        sample = flat[np.sort(g.integers(0, n, max_samples))] if n > max_samples else flat
        sample = np.asarray(sample, dtype=np.float64)
    lo, hi = np.quantile(sample, [0.001, 0.999])
    return {"mean": float(sample.mean()), "sd": float(sample.std()), "p_low": float(lo), "p_high": float(hi)}


def plan_reorient(shape_zyx: tuple[int, int, int], trim: dict[str, tuple[int, int] | None] | None = None,
                  rotate_x_turns: int = 0, flip: str = "") -> list[tuple[int, bool, int, int]]:
    """How each output axis ``(z, y, x)`` reads the input: ``(input axis, reversed, start, length)``.

    Order: trim (input index ranges ``{"z": (a, b), ...}``), then :func:`rotate_x_90` turns, then
    :func:`flip_axes` on the output axes. Lets a large volume be reoriented slab by slab.
    """
    trim = trim or {}
    axes = []
    for k, name in enumerate("zyx"):
        rng = trim.get(name)
        a, b = (0, shape_zyx[k]) if rng is None else (int(rng[0]), int(rng[1]))
        if not (0 <= a < b <= shape_zyx[k]):
            raise ValueError(f"trim range {name}=[{a}, {b}) is not inside 0..{shape_zyx[k]}")
        axes.append([k, False, a, b - a])
    for _ in range(rotate_x_turns % 4):  # flip(z) then swap z and y
        axes[0][1] = not axes[0][1]
        axes[0], axes[1] = axes[1], axes[0]
    dims = {"z": 0, "y": 1, "x": 2}
    for a in flip:
        if a not in dims:
            raise ValueError(f"unknown axis {a!r} in flip; expected letters from 'xyz'")
        axes[dims[a]][1] = not axes[dims[a]][1]
    return [tuple(ax) for ax in axes]


def read_reoriented(source, plan, y0: int, y1: int) -> np.ndarray:
    """Output rows ``y0:y1`` (all z and x) of the reoriented volume, read from ``source`` (array-like
    ``(z, y, x)``, e.g. a memmap): a ``(d', y1-y0, w')`` numpy array."""
    slices = [None, None, None]
    for out_axis, (src, rev, start, length) in enumerate(plan):
        lo, hi = (y0, y1) if out_axis == 1 else (0, length)
        if rev:
            lo, hi = length - hi, length - lo
        slices[src] = slice(start + lo, start + hi)
    block = np.asarray(source[tuple(slices)])
    block = block.transpose([p[0] for p in plan])
    flips = tuple(k for k, p in enumerate(plan) if p[1])
    return np.flip(block, flips) if flips else block


def normalise(vol: torch.Tensor, stats: dict[str, float], invert: bool = False) -> torch.Tensor:
    """``(vol - mean) / sd`` (float32), optionally with inverted contrast (dense = bright)."""
    out = (vol.float() - stats["mean"]) / max(stats["sd"], 1e-12)
    return -out if invert else out


def to_8bit(vol: torch.Tensor, stats: dict[str, float], *, n_sd: float = 3.0, signed: bool = False,
            invert: bool = False) -> torch.Tensor:
    """Scale ``mean +- n_sd * sd`` to the full 8-bit range (clipping beyond): uint8 0..255 or int8."""
    z = normalise(vol, stats, invert) / (2 * n_sd) + 0.5  # 0..1 over the window
    scaled = (z.clamp(0, 1) * 255).round()
    return (scaled - 128).to(torch.int8) if signed else scaled.to(torch.uint8)
