"""CTF records from file values, in tomoforge's convention (docs/conventions.md): U >= V, angle of U."""

from __future__ import annotations

from tomoforge.model.ctf import CtfEstimate


def wrap_angle_deg(a: float) -> float:
    """An astigmatism direction folded into (-90, 90] (it is defined modulo 180 degrees)."""
    a = (a + 90.0) % 180.0 - 90.0
    return 90.0 if a == -90.0 else a


def ordered_ctf(defocus_u_a: float, defocus_v_a: float, angle_deg: float, **kw) -> CtfEstimate:
    """CtfEstimate with ``defocus_u_a >= defocus_v_a``: swapping U and V turns the axis by 90 degrees."""
    if defocus_u_a < defocus_v_a:
        defocus_u_a, defocus_v_a, angle_deg = defocus_v_a, defocus_u_a, wrap_angle_deg(angle_deg + 90.0)
    return CtfEstimate(defocus_u_a=defocus_u_a, defocus_v_a=defocus_v_a, astigmatism_angle_deg=angle_deg, **kw)
