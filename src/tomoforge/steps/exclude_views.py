"""``exclude-views``: mark views (or whole tilt series) as excluded, or re-stack without them.

Which views: a list file in the seeds' format (``TS_01 1`` per line: tilt-series id, then 1-based view
numbers in tilt-angle order as the stack shows them, ``1 2 5`` or ``1-3,7``), a list of tilt angles, and/or
automatic detection of dark, blank / low-signal and jumping views (each with its reason). Whole tilt series
are excluded by id.

- ``mark`` keeps every image and sets ``excluded`` with a reason on the view (or series): they can be
  rescued later, and later steps skip them.
- ``restack`` writes a new stack of the remaining views. Each kept view carries its acquisition order,
  angle and dose along, so nothing is re-numbered; a wholly excluded series produces no output.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from tomoforge.core.exclude import find_bad_views
from tomoforge.errors import InputError, ParseError
from tomoforge.model import TiltSeries
from tomoforge.steps._views import has_all, read_views, stack_name, with_images, write_stack
from tomoforge.steps.base import Port, Step, StepParams, Unit, UnitContext, UnitResult


class ExcludeViewsParams(StepParams):
    mode: Literal["mark", "restack"] = Field("mark", description="mark: flag the views; restack: new stack without")
    list_file: str | None = Field(None, description="Text file of 'TS_ID view view ...' lines (1-based, angle order)")
    tilt_angles: list[float] = Field(default_factory=list, description="Exclude views at these nominal angles (deg)")
    angle_tolerance_deg: float = Field(0.5, ge=0, description="How close a view's angle must be to a listed one")
    auto: bool = Field(False, description="Detect dark, blank / low-signal and jumping views automatically")
    dark_fraction: float = Field(0.5, gt=0, lt=1, description="Auto: dark below this fraction of neighbours' mean")
    low_signal_sd: float = Field(4.0, gt=0, description="Auto: low signal below this many robust SDs")
    jump_px: float | None = Field(None, gt=0, description="Auto: smallest jump (px); default 5% of the image")
    exclude_series: list[str] = Field(default_factory=list, description="Tilt-series ids to exclude entirely")

    @field_validator("tilt_angles", "exclude_series", mode="before")
    @classmethod
    def _comma_list(cls, v):
        # --set tilt_angles=-60,-57,60 or exclude_series=TS_04 on the command line
        if isinstance(v, str):
            return [t for t in (p.strip() for p in v.split(",")) if t]
        if isinstance(v, int | float):
            return [v]
        return v


def parse_view_list(path: str | Path) -> dict[str, list[int]]:
    """``{ts_id: [1-based views]}`` from a list file; ranges ``a-b`` and commas allowed; ``#`` comments."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as err:
        raise ParseError(f"cannot read: {err.strerror}", path=path) from None
    out: dict[str, list[int]] = {}
    for i, line in enumerate(lines, 1):
        text = line.split("#")[0].strip()
        if not text:
            continue
        ts_id, _, rest = text.partition(" ")
        views: list[int] = []
        for tok in re.split(r"[,\s]+", rest.strip()):
            if not tok:
                continue
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", tok)
            if not m or int(m.group(1)) < 1 or (m.group(2) and int(m.group(2)) < int(m.group(1))):
                raise ParseError(f"bad view number {tok!r}", path=path, line=i,
                                 expected="'TS_ID 1 2 5' or 'TS_ID 1-3,7' (1-based view numbers)")
            views += list(range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1))
        if not views:
            raise ParseError(f"no views after '{ts_id}'", path=path, line=i, expected="'TS_ID view [view ...]'")
        out.setdefault(ts_id, []).extend(views)
    return out


def _nominal(im) -> float:
    return im.nominal_tilt_angle_deg if im.nominal_tilt_angle_deg is not None else im.tilt_angle_deg


class ExcludeViews(Step):
    name = "exclude-views"
    title = "Exclude views or whole tilt series (list file, angles or automatic), marking or re-stacking"
    Params = ExcludeViewsParams
    inputs = {"tilt_series": Port(TiltSeries, "Tilt series")}
    outputs = {"tilt_series": Port(TiltSeries, "Tilt series with views excluded")}

    def plan(self, params: ExcludeViewsParams, inputs) -> list[Unit]:
        units = super().plan(params, inputs)
        series = {u.key: u.one("tilt_series").load(TiltSeries) for u in units}
        listed = parse_view_list(params.list_file) if params.list_file else {}
        unknown = sorted(set(listed) - set(series)) + sorted(set(params.exclude_series) - set(series))
        if unknown:
            raise InputError(f"tilt series {', '.join(unknown)} not among the inputs ({', '.join(sorted(series))})",
                             path=params.list_file if set(unknown) & set(listed) else None,
                             expected="ids of the input tilt series")
        for ts_id, views in listed.items():
            n = series[ts_id].n_views
            bad = [v for v in views if v > n]
            if bad:
                raise InputError(f"tilt series {ts_id} has {n} views; cannot exclude view {bad[0]}",
                                 path=params.list_file, expected=f"view numbers 1..{n}")
        for u in units:
            u.data["views"] = listed.get(u.key, [])
        return units

    def run_unit(self, params: ExcludeViewsParams, unit: Unit, ctx: UnitContext) -> UnitResult:
        ts: TiltSeries = unit.one("tilt_series").load(TiltSeries)  # type: ignore[assignment]
        reasons: dict[int, str] = {}
        for v in unit.data.get("views", []):
            reasons[v - 1] = f"listed in {Path(params.list_file).name}"
        for i, im in enumerate(ts.images):
            for a in params.tilt_angles:
                if abs(_nominal(im) - a) <= params.angle_tolerance_deg:
                    reasons.setdefault(i, f"tilt angle {a:g}° listed")
        if params.auto:
            active = [i for i, im in enumerate(ts.images) if not im.excluded and i not in reasons]
            if len(active) >= 3:
                views = read_views(ts, [ts.images[i] for i in active])
                verdicts, _ = find_bad_views(views, dark_fraction=params.dark_fraction,
                                             low_signal_sd=params.low_signal_sd, jump_px=params.jump_px)
                for v in verdicts:
                    reasons[active[v.index]] = f"auto: {v.kind}: {v.reason}"
        images = []
        for i, im in enumerate(ts.images):
            if i in reasons and not im.excluded:
                ctx.log(f"view {i + 1} ({_nominal(im):+g}°, acquisition order {im.acquisition_order}): {reasons[i]}")
                im = im.model_copy(update={"excluded": True, "exclude_reason": reasons[i]})
            images.append(im)
        out = ts.model_copy(update={"images": images})
        whole = ts.ts_id in params.exclude_series
        if whole:
            out = out.model_copy(update={"excluded": True, "exclude_reason": "excluded by the user"})
        result = UnitResult()
        n_excl = sum(im.excluded for im in images)
        result.metrics.update({"views_excluded": n_excl, "views_kept": len(images) - n_excl,
                               "series_excluded": int(whole)})
        if params.mode == "restack":
            if whole or n_excl == len(images):
                ctx.log(f"{ts.ts_id}: whole tilt series excluded: no output")
                return result
            keep = [im for im in images if not im.excluded]
            out = out.model_copy(update={"images": keep})
            for kind in ("image", "even", "odd"):
                if kind != "image" and not has_all(keep, kind):
                    continue
                views = read_views(out, keep, which=kind)
                suffix = {"image": "", "even": "_EVN", "odd": "_ODD"}[kind]
                refs = write_stack(stack_name(ctx.out_dir, ts.ts_id, suffix), views, ts.acquisition.pixel_size_a)
                out = with_images(out, refs, which=kind)
            out.notes.append(f"re-stacked without {n_excl} excluded view(s)")
        result.artifacts.append(ctx.write_record("tilt_series", ts.ts_id, out))
        return result
