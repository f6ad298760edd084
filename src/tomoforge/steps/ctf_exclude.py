"""``ctf-exclude``: flag views with a bad CTF fit, and split the series into "good" and "bad" subsets.

A view is flagged when its mean defocus is further than ``max_defocus_deviation_a`` from the series'
median, its astigmatism exceeds ``max_astigmatism_a``, its fit resolution is worse (coarser) than
``worst_fit_resolution_a``, or it is listed (``views``: 1-based stack sections as in the estimate's table
and ``.defocus``). Flagged views are marked ``excluded`` with the reason (nothing is re-stacked, so every
view keeps its image, acquisition order and CTF). A series listed in ``exclude_series``, or with fewer than
``min_views`` good views left, goes to the ``bad`` output; the others to ``good`` (the seeds' CTF viewer's
"Generate subsets").
"""

from __future__ import annotations

import statistics

from pydantic import Field, field_validator

from tomoforge.errors import InputError
from tomoforge.model import TiltImage, TiltSeries
from tomoforge.steps.base import Port, Step, StepParams, Unit, UnitContext, UnitResult


def _comma_list(v):
    if isinstance(v, str):
        return [t for t in (p.strip() for p in v.split(",")) if t]
    if isinstance(v, int | float):
        return [v]
    return v


class CtfExcludeParams(StepParams):
    max_defocus_deviation_a: float | None = Field(5000.0, gt=0, description="Flag views this far from the "
                                                                            "series' median defocus (Å)")
    max_astigmatism_a: float | None = Field(None, gt=0, description="Flag views with more astigmatism (Å)")
    worst_fit_resolution_a: float | None = Field(None, gt=0, description="Flag views whose fit resolution is "
                                                                        "coarser than this (Å)")
    views: list[int] = Field(default_factory=list, description="Views to flag (1-based stack sections)")
    exclude_series: list[str] = Field(default_factory=list, description="Tilt-series ids to put in 'bad'")
    min_views: int = Field(3, ge=1, description="A series with fewer good views left goes to 'bad'")

    @field_validator("views", "exclude_series", mode="before")
    @classmethod
    def _lists(cls, v):
        return _comma_list(v)


def flag_reasons(ts: TiltSeries, params: CtfExcludeParams) -> dict[int, str]:
    """``{index in ts.images: reason}`` for the views to exclude (views already excluded are skipped)."""
    active = [(i, im) for i, im in enumerate(ts.images) if not im.excluded and im.ctf is not None]
    reasons: dict[int, str] = {}
    listed = set(params.views)
    for i, im in enumerate(ts.images):
        if not im.excluded and im.image is not None and im.image.index + 1 in listed:
            reasons[i] = "listed"
    if params.max_defocus_deviation_a is not None and active:
        med = statistics.median(im.ctf.defocus_mean_a for _, im in active)
        for i, im in active:
            dev = im.ctf.defocus_mean_a - med
            if abs(dev) > params.max_defocus_deviation_a:
                reasons.setdefault(i, f"defocus {im.ctf.defocus_mean_a / 1e4:.3f} µm is {dev / 1e4:+.3f} µm from "
                                      f"the series median")
    for i, im in active:
        astig = im.ctf.defocus_u_a - im.ctf.defocus_v_a
        if params.max_astigmatism_a is not None and astig > params.max_astigmatism_a:
            reasons.setdefault(i, f"astigmatism {astig:.0f} Å > {params.max_astigmatism_a:g} Å")
        res = im.ctf.fit_resolution_a
        if params.worst_fit_resolution_a is not None and (res is None or res > params.worst_fit_resolution_a):
            reasons.setdefault(i, f"fit resolution {res if res is not None else float('inf'):.1f} Å worse than "
                                  f"{params.worst_fit_resolution_a:g} Å")
    return reasons


class CtfExclude(Step):
    name = "ctf-exclude"
    title = "Exclude views with outlying CTF fits; split tilt series into good and bad subsets"
    Params = CtfExcludeParams
    inputs = {"tilt_series": Port(TiltSeries, "Tilt series with CTF estimates (ctf-estimate)")}
    outputs = {"good": Port(TiltSeries, "Series kept, bad views marked excluded"),
               "bad": Port(TiltSeries, "Series set aside", optional=True)}

    def plan(self, params: CtfExcludeParams, inputs) -> list[Unit]:
        units = super().plan(params, inputs)
        ids = []
        for u in units:
            ts: TiltSeries = u.one("tilt_series").load(TiltSeries)  # type: ignore[assignment]
            ids.append(ts.ts_id)
            if not any(im.ctf is not None for im in ts.images) and not ts.excluded:
                raise InputError(f"tilt series {ts.ts_id} has no CTF estimates", path=u.one("tilt_series").path,
                                 field="ctf", expected="the output of ctf-estimate")
            n = ts.n_views
            bad = [v for v in params.views if v < 1 or v > n]
            if bad:
                raise InputError(f"tilt series {ts.ts_id} has {n} views; cannot exclude view {bad[0]}",
                                 field="views", expected=f"view numbers 1..{n}")
        unknown = sorted(set(params.exclude_series) - set(ids))
        if unknown:
            raise InputError(f"tilt series {', '.join(unknown)} not among the inputs ({', '.join(sorted(ids))})",
                             field="exclude_series", expected="ids of the input tilt series")
        return units

    def run_unit(self, params: CtfExcludeParams, unit: Unit, ctx: UnitContext) -> UnitResult:
        ts: TiltSeries = unit.one("tilt_series").load(TiltSeries)  # type: ignore[assignment]
        reasons = flag_reasons(ts, params)
        images: list[TiltImage] = []
        for i, im in enumerate(ts.images):
            if i in reasons:
                ctx.log(f"{ts.ts_id} view {i + 1} ({im.tilt_angle_deg:+.1f}°, acquisition order "
                        f"{im.acquisition_order}): ctf: {reasons[i]}")
                im = im.model_copy(update={"excluded": True, "exclude_reason": f"ctf: {reasons[i]}"})
            images.append(im)
        out = ts.model_copy(update={"images": images})
        good_views = sum(not im.excluded for im in images)
        bad_series = ts.excluded or ts.ts_id in params.exclude_series or good_views < params.min_views
        if bad_series and not ts.excluded:
            why = "excluded by the user" if ts.ts_id in params.exclude_series else \
                f"only {good_views} view(s) with a good CTF fit"
            out = out.model_copy(update={"excluded": True, "exclude_reason": f"ctf: {why}"})
            ctx.log(f"{ts.ts_id}: to the bad subset ({why})")
        result = UnitResult()
        result.artifacts.append(ctx.write_record("bad" if bad_series else "good", ts.ts_id, out))
        result.metrics.update({"views_flagged": len(reasons), "views_good": good_views, "series_bad": int(bad_series)})
        return result
