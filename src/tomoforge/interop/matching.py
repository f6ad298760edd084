"""Match the views of an external file to a tilt series' views, refusing mismatches clearly.

External tools number views by their section in a stack. When the file lists the stack's angles (IMOD
``.rawtlt``, RELION's nominal stage tilt, AreTomo's TILT column) views are matched by angle, so stacks in
another order or with views removed still match; without angles the counts must agree and views are taken in
tilt order (the stack ``export imod`` writes).
"""

from __future__ import annotations

from pathlib import Path

from tomoforge.errors import InputError
from tomoforge.interop.views import nominal_angle
from tomoforge.model import TiltSeries


def match_by_angle(ts: TiltSeries, file_angles, path: str | Path, *, tolerance_deg: float,
                   allow_missing: bool, what: str = "line") -> list[int | None]:
    """For each view of ``ts`` (tilt order) the index of the file row at its nominal angle, or None.

    Every file row must find a view within ``tolerance_deg``, one to one. Views without a row are refused
    unless ``allow_missing``."""
    angles = [float(a) for a in file_angles]
    views = [nominal_angle(im) for im in ts.images]
    out: list[int | None] = [None] * len(views)
    taken: dict[int, int] = {}
    for r, a in enumerate(angles):
        k = min(range(len(views)), key=lambda i: abs(views[i] - a))
        if abs(views[k] - a) > tolerance_deg:
            raise InputError(f"{what} {r + 1} ({a:g}°) matches no view of tilt series {ts.ts_id} "
                             f"(nearest {views[k]:g}°)", path=path,
                             expected=f"angles within {tolerance_deg:g}° of the tilt series' nominal angles")
        if k in taken:
            raise InputError(f"{what}s {taken[k] + 1} and {r + 1} both match the view at {views[k]:g}° of "
                             f"tilt series {ts.ts_id}", path=path, expected="one row per view")
        taken[k] = r
        out[k] = r
    missing = [views[k] for k, r in enumerate(out) if r is None]
    if missing and not allow_missing:
        raise InputError(f"{len(missing)} view(s) of tilt series {ts.ts_id} are not in the file "
                         f"({', '.join(f'{a:g}°' for a in missing[:6])})", path=path,
                         expected="every view (or allow_missing_views=true to mark them excluded)")
    return out


def match_by_count(ts: TiltSeries, n_rows: int, path: str | Path, what: str = "views") -> list[int | None]:
    """Identity mapping when the file has one row per view; InputError naming both counts otherwise."""
    if n_rows != ts.n_views:
        raise InputError(f"{n_rows} {what} in the file but tilt series {ts.ts_id} has {ts.n_views} views",
                         path=path, expected=f"{ts.n_views} rows in tilt order, or a file with tilt angles "
                                             "(.rawtlt) to match views by angle")
    return list(range(n_rows))
