"""Tilt schemes: nominal tilt angles in acquisition order."""

from __future__ import annotations

import math


def dose_symmetric_tilts(step_deg: float = 3.0, max_deg: float = 60.0, group: int = 1,
                         start_deg: float = 0.0) -> list[float]:
    """Hagen dose-symmetric scheme: ``start``, then ``group`` views to +, ``group`` to -, alternating.

    Returns nominal angles (degrees) in acquisition order; the positive side goes first, as SerialEM does.
    """
    n = int(math.floor(max_deg / step_deg + 1e-9))
    pos = [start_deg + step_deg * i for i in range(1, n + 1)]
    neg = [start_deg - step_deg * i for i in range(1, n + 1)]
    out = [start_deg]
    i = 0
    while i < n:
        out += pos[i:i + group]
        out += neg[i:i + group]
        i += group
    return out


def bidirectional_tilts(step_deg: float = 3.0, max_deg: float = 60.0, start_deg: float = 0.0,
                        center_deg: float = 0.0) -> list[float]:
    """From ``start`` up to ``center + max``, then from ``start - step`` down to ``center - max``."""
    hi, lo = center_deg + max_deg + 1e-9, center_deg - max_deg - 1e-9
    up, a = [], start_deg
    while a <= hi:
        up.append(a)
        a += step_deg
    down, a = [], start_deg - step_deg
    while a >= lo:
        down.append(a)
        a -= step_deg
    return up + down


def parse_custom_tilts(text: str) -> list[float]:
    """``"0,3,-3"`` -> ``[0.0, 3.0, -3.0]`` (ValueError on anything else)."""
    parts = [p for p in text.replace(";", ",").split(",") if p.strip()]
    if not parts:
        raise ValueError("no tilt angles")
    return [float(p) for p in parts]
