"""``ctf-estimate``: defocus, astigmatism (and phase shift) of every view, CTFFIND-style.

Per tilt series, on raw (not dose-filtered) sums: tiles of ``box_size`` pixels, background-subtracted
amplitude spectrum, exhaustive defocus search then 2D refinement (``core/ctf``). ``tilt_aware`` rescales
each tile's spectrum for the known defocus gradient of the tilted view first; ``joint`` fits the views of a
series together (both gradient signs tried, the better reported as the handedness; outlier views searched
again near their neighbours; optionally one shared astigmatism).

The defocus search can be centred on an expected defocus per tilt series, from a file of ``TS_01 4000.0``
lines (nm, as IMOD's expected-defocus file) or from the mdoc's ``TargetDefocus``.

Outputs per tilt series: the record with a CtfEstimate on every estimated view; a TSV table; CTFFIND's text
output; IMOD ``.defocus`` version 3 (view numbers = stack sections, 1-based); a RELION 5 per-tilt STAR with
the CTF columns; PNGs per view (2D spectrum half data / half fit, 1D average with fit) and a summary plot.
Excluded views are not estimated and keep ``ctf=None``; the files list only the estimated views, each with
its own stack section, so the view mapping survives exclusion.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field

from tomoforge.core.ctf import CtfFit, FitSettings, Optics, estimate_ctf, estimate_tilt_series
from tomoforge.core.ctf.estimate import narrowed
from tomoforge.core.ctf.model import ctf_2d
from tomoforge.core.geometry import xf_rotation_deg
from tomoforge.errors import InputError, ParamError, ParseError
from tomoforge.io.atomic import write_text_atomic
from tomoforge.io.ctf_plots import write_fit_png, write_series_png
from tomoforge.io.ctffind import write_ctffind
from tomoforge.io.defocus import DefocusEntry, write_defocus
from tomoforge.io.relion import RelionTilt, write_tilt_series_star
from tomoforge.model import CtfEstimate, TiltImage, TiltSeries
from tomoforge.steps._views import load_series, read_views
from tomoforge.steps.base import Port, Resources, Step, StepParams, Unit, UnitContext, UnitResult


class CtfEstimateParams(StepParams):
    box_size: int = Field(512, ge=32, le=4096, description="FFT box (tile) size in pixels")
    tile_overlap: float = Field(0.5, ge=0.0, lt=1.0, description="Overlap of neighbouring tiles")
    resolution_min_a: float | None = Field(None, gt=0, description="Low-resolution end of the fit band (Å); "
                                                                   "empty: 30 Å, or 3x the high end if coarser")
    resolution_max_a: float | None = Field(None, gt=0, description="High-resolution end of the fit band (Å); "
                                                                   "empty: 5 Å, or 2.5 pixels if coarser")
    defocus_min_a: float = Field(5000.0, ge=0, description="Smallest defocus searched (Å, underfocus positive)")
    defocus_max_a: float = Field(50000.0, gt=0, description="Largest defocus searched (Å)")
    defocus_step_a: float = Field(500.0, gt=0, description="Step of the exhaustive defocus search (Å)")
    fit_astigmatism: bool = Field(True, description="Fit defocus U, V and angle (off: round CTF)")
    max_astigmatism_a: float = Field(2000.0, ge=0, description="Largest astigmatism U - V accepted (Å)")
    fit_phase_shift: bool = Field(False, description="Also fit an additional phase shift (phase plate)")
    phase_shift_min_deg: float = Field(0.0, ge=0, le=180)
    phase_shift_max_deg: float = Field(180.0, ge=0, le=180)
    phase_shift_step_deg: float = Field(10.0, gt=0, le=90)
    tilt_aware: bool = Field(True, description="Correct tiles for the defocus gradient of tilted views")
    joint: bool = Field(False, description="Fit the views of a series jointly (handedness, consistency)")
    shared_astigmatism: bool = Field(False, description="Joint mode: one astigmatism for the whole series")
    handedness: int | None = Field(None, description="Defocus-gradient sign (+1/-1); empty: +1, or both "
                                                     "tried in joint mode")
    expected_defocus_file: str | None = Field(None, description="Lines 'TS_ID defocus_nm' centring the search")
    use_target_defocus: bool = Field(False, description="Centre the search on the mdoc's TargetDefocus")
    expected_defocus_range_a: float = Field(10000.0, gt=0, description="Half width of the centred search (Å)")
    write_view_plots: bool = Field(True, description="Write a diagnostic PNG per view")


class CtfEstimateFiles(BaseModel):
    """Where the per-series CTF files are, and series-level results."""

    model_config = ConfigDict(extra="forbid")
    ts_id: str
    table_path: str
    ctffind_path: str
    defocus_path: str
    star_path: str
    summary_png: str
    view_pngs: list[str] = Field(default_factory=list)
    handedness: int | None = None
    handedness_scores: dict[str, float] = Field(default_factory=dict)
    box_size: int


def parse_expected_defocus(path: str | Path) -> dict[str, float]:
    """``{ts_id: defocus_a}`` from lines ``TS_01 4000.0`` (defocus in nm, as IMOD's expected-defocus file)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as err:
        raise ParseError(f"cannot read: {err.strerror}", path=path) from None
    out: dict[str, float] = {}
    for i, line in enumerate(lines, 1):
        text = line.split("#")[0].strip()
        if not text:
            continue
        parts = text.split()
        try:
            if len(parts) != 2:
                raise ValueError
            value = float(parts[1])
        except ValueError:
            raise ParseError(f"bad line {line!r}", path=path, line=i,
                             expected="'TS_ID defocus_nm', e.g. 'TS_01 4000.0'") from None
        if not math.isfinite(value) or value <= 0:
            raise ParseError(f"defocus {parts[1]} nm", path=path, line=i, expected="a positive underfocus in nm")
        out[parts[0]] = value * 10.0
    return out


def resolve_band(params: CtfEstimateParams, pixel_size_a: float) -> CtfEstimateParams:
    """Fill an empty fit band from the pixel size (CTFFIND's 30-5 Å where Nyquist allows it)."""
    hi = params.resolution_max_a if params.resolution_max_a is not None else max(5.0, 2.5 * pixel_size_a)
    lo = params.resolution_min_a if params.resolution_min_a is not None else max(30.0, 3.0 * hi)
    return params.model_copy(update={"resolution_max_a": hi, "resolution_min_a": lo})


def fit_settings(params: CtfEstimateParams) -> FitSettings:
    return FitSettings(resolution_min_a=params.resolution_min_a, resolution_max_a=params.resolution_max_a,
                       defocus_min_a=params.defocus_min_a, defocus_max_a=params.defocus_max_a,
                       defocus_step_a=params.defocus_step_a, fit_astigmatism=params.fit_astigmatism,
                       max_astigmatism_a=params.max_astigmatism_a, fit_phase_shift=params.fit_phase_shift,
                       phase_shift_min_deg=params.phase_shift_min_deg, phase_shift_max_deg=params.phase_shift_max_deg,
                       phase_shift_step_deg=params.phase_shift_step_deg)


def check_params(params: CtfEstimateParams, pixel_size_a: float, where: str) -> None:
    """ParamError for a band beyond Nyquist, an inverted band or defocus range (names the field)."""
    params = resolve_band(params, pixel_size_a)
    nyquist = 2.0 * pixel_size_a
    if params.resolution_max_a < nyquist - 1e-6:
        raise ParamError(f"{params.resolution_max_a:g} Å is beyond Nyquist ({nyquist:g} Å at {pixel_size_a:g} Å/px "
                         f"in {where})", field="resolution_max_a", expected=f">= {nyquist:g} Å")
    if params.resolution_min_a <= params.resolution_max_a:
        raise ParamError(f"{params.resolution_min_a:g} Å is not coarser than resolution_max_a "
                         f"{params.resolution_max_a:g} Å", field="resolution_min_a",
                         expected="resolution_min_a > resolution_max_a (e.g. 30 and 5)")
    if params.defocus_min_a > params.defocus_max_a:
        raise ParamError(f"{params.defocus_min_a:g} Å > defocus_max_a {params.defocus_max_a:g} Å",
                         field="defocus_min_a", expected="defocus_min_a <= defocus_max_a")
    if params.phase_shift_min_deg > params.phase_shift_max_deg:
        raise ParamError(f"{params.phase_shift_min_deg:g} > phase_shift_max_deg {params.phase_shift_max_deg:g}",
                         field="phase_shift_min_deg", expected="phase_shift_min_deg <= phase_shift_max_deg")
    if params.handedness not in (None, 1, -1):
        raise ParamError(f"{params.handedness}", field="handedness", expected="1, -1 or empty")


def view_tilt_axis_deg(ts: TiltSeries, im: TiltImage) -> float:
    """The view's tilt axis in its raw image: from its alignment if any, else the acquisition's."""
    if im.transform is not None:
        return float(xf_rotation_deg(torch.tensor(im.transform.as_rows(), dtype=torch.float64)))
    return ts.acquisition.tilt_axis_deg


def dose_filtered_warning(ts: TiltSeries) -> str | None:
    if ts.dose_filtered:
        return (f"warning: tilt series {ts.ts_id} is dose filtered (dose_filtered=true): the exposure filter damps "
                f"the Thon rings, so defocus and fit resolution are less reliable; estimate on the unfiltered "
                f"sums (the motion-correct output) and carry the result over")
    return None


def to_record(fit: CtfFit) -> CtfEstimate:
    p = fit.params
    res = fit.fit_resolution_a if math.isfinite(fit.fit_resolution_a) else None
    return CtfEstimate(defocus_u_a=p.defocus_u_a, defocus_v_a=p.defocus_v_a, astigmatism_angle_deg=p.astigmatism_angle_deg,
                       phase_shift_deg=p.phase_shift_deg, fit_resolution_a=res, fit_score=fit.score)


class CtfEstimateStep(Step):
    name = "ctf-estimate"
    title = "CTF estimation per view (CTFFIND-style), tilt-aware, optionally joint per tilt series"
    Params = CtfEstimateParams
    inputs = {"tilt_series": Port(TiltSeries, "Tilt series of raw (not dose-filtered) sums")}
    outputs = {"tilt_series": Port(TiltSeries, "The tilt series with a CTF estimate per view"),
               "ctf_files": Port(CtfEstimateFiles, "Table, CTFFIND text, IMOD .defocus, RELION STAR, plots")}
    resources = Resources(cores=1, mem_gb=4.0)

    def plan(self, params: CtfEstimateParams, inputs) -> list[Unit]:
        units = super().plan(params, inputs)
        expected = parse_expected_defocus(params.expected_defocus_file) if params.expected_defocus_file else {}
        ids = []
        for u in units:
            art = u.one("tilt_series")
            ts: TiltSeries = art.load(TiltSeries)  # type: ignore[assignment]
            check_params(params, ts.acquisition.pixel_size_a, f"tilt series {ts.ts_id}")
            ids.append(ts.ts_id)
            if ts.ts_id in expected:
                u.data["expected_defocus_a"] = expected[ts.ts_id]
        unknown = sorted(set(expected) - set(ids))
        if unknown:
            raise InputError(f"tilt series {', '.join(unknown)} not among the inputs ({', '.join(sorted(ids))})",
                             path=params.expected_defocus_file, expected="ids of the input tilt series")
        return units

    def run_unit(self, params: CtfEstimateParams, unit: Unit, ctx: UnitContext) -> UnitResult:
        ts, _ = load_series(unit)
        acq = ts.acquisition
        result = UnitResult()
        warning = dose_filtered_warning(ts)
        if warning:
            ctx.log(warning)
        settings = fit_settings(resolve_band(params, acq.pixel_size_a))
        centre = unit.data.get("expected_defocus_a")
        active = [im for im in ts.images if not im.excluded] if not ts.excluded else []
        if centre is None and params.use_target_defocus:
            targets = [im.target_defocus_um for im in active if im.target_defocus_um]
            centre = 1e4 * sorted(targets)[len(targets) // 2] if targets else None
            if centre is None:
                ctx.log(f"{ts.ts_id}: no TargetDefocus in the mdoc; searching the whole range")
        if centre is not None:
            settings = narrowed(settings, centre, params.expected_defocus_range_a)
            ctx.log(f"{ts.ts_id}: defocus search {settings.defocus_min_a:.0f}-{settings.defocus_max_a:.0f} Å")
        if not active:
            ctx.log(f"{ts.ts_id}: no views to estimate (all excluded)")
            result.artifacts.append(ctx.write_record("tilt_series", ts.ts_id, ts))
            return result

        views = read_views(ts, active)
        h, w = views.shape[-2:]
        box = min(params.box_size, h, w) // 2 * 2
        if box != params.box_size:
            ctx.log(f"{ts.ts_id}: box {params.box_size} is larger than the {h}x{w} images; using {box}")
        optics = Optics(acq.voltage_kv, acq.cs_mm, acq.amplitude_contrast)
        tilts = [im.tilt_angle_deg for im in active]
        axes = [view_tilt_axis_deg(ts, im) for im in active]
        handedness, scores = params.handedness, {}
        try:
            if params.joint:
                sf = estimate_tilt_series(list(views), tilts, axes, acq.pixel_size_a, optics, settings, box=box,
                                          overlap=params.tile_overlap, handedness=params.handedness,
                                          shared_astigmatism=params.shared_astigmatism)
                fits, handedness = sf.fits, sf.handedness
                scores = {str(k): float(v) for k, v in sf.handedness_scores.items()}
                ctx.log(f"{ts.ts_id}: handedness {handedness:+d} (mean tilted-view scores {scores})")
                for i in sf.refitted:
                    ctx.log(f"{ts.ts_id}: view at {tilts[i]:+.1f}° was a defocus outlier; searched near its neighbours")
            else:
                fits = [estimate_ctf(v, acq.pixel_size_a, optics, settings, box=box, overlap=params.tile_overlap,
                                     tilt_deg=t, tilt_axis_deg=a, tilt_aware=params.tilt_aware,
                                     handedness=params.handedness or 1)
                        for v, t, a in zip(views, tilts, axes, strict=True)]
        except ValueError as err:  # settings the core refuses (e.g. a band with too few frequencies)
            raise ParamError(f"tilt series {ts.ts_id}: {err}", field="box_size") from None

        estimates = {id(im): to_record(f) for im, f in zip(active, fits, strict=True)}
        images = [im.model_copy(update={"ctf": estimates.get(id(im), im.ctf if im.excluded else None)})
                  for im in ts.images]
        out = ts.model_copy(update={"images": images})
        if params.joint:
            note = (f"ctf-estimate: defocus-gradient handedness {handedness:+d} (mean tilted-view fit scores "
                    f"{scores}); pass it to ctf-correct")
            out = out.model_copy(update={"notes": [*ts.notes, note]})
        files = self._write_files(params, ts, active, fits, settings, box, ctx)
        files.handedness, files.handedness_scores = handedness, scores
        result.artifacts.append(ctx.write_record("tilt_series", ts.ts_id, out))
        result.artifacts.append(ctx.write_record("ctf_files", ts.ts_id, files))
        dfs = [f.params.defocus_mean_a for f in fits]
        result.metrics.update({"views_estimated": len(fits), "defocus_median_um": sorted(dfs)[len(dfs) // 2] / 1e4,
                               "fit_score_mean": sum(f.score for f in fits) / len(fits)})
        return result

    def _write_files(self, params: CtfEstimateParams, ts: TiltSeries, active: list[TiltImage], fits: list[CtfFit],
                     settings: FitSettings, box: int, ctx: UnitContext) -> CtfEstimateFiles:
        acq = ts.acquisition
        out = ctx.out_dir
        recs = [to_record(f) for f in fits]
        sections = [im.image.index + 1 for im in active]  # 1-based stack sections (IMOD view numbers)
        stack = active[0].image.path
        # Per-view table (TSV).
        rows = ["view\tacquisition_order\ttilt_deg\tdefocus_u_a\tdefocus_v_a\tastigmatism_angle_deg\t"
                "phase_shift_deg\tfit_resolution_a\tfit_score"]
        for sec, im, c in zip(sections, active, recs, strict=True):
            res = f"{c.fit_resolution_a:.2f}" if c.fit_resolution_a is not None else "nan"
            rows.append(f"{sec}\t{im.acquisition_order}\t{im.tilt_angle_deg:.2f}\t{c.defocus_u_a:.1f}\t"
                        f"{c.defocus_v_a:.1f}\t{c.astigmatism_angle_deg:.2f}\t{c.phase_shift_deg:.2f}\t{res}\t"
                        f"{c.fit_score:.4f}")
        table = write_text_atomic(out / f"{ts.ts_id}_ctf.tsv", "\n".join(rows) + "\n")
        ctffind = write_ctffind(out / f"{ts.ts_id}_ctffind.txt", recs, pixel_size_a=acq.pixel_size_a,
                                voltage_kv=acq.voltage_kv, cs_mm=acq.cs_mm, amplitude_contrast=acq.amplitude_contrast,
                                input_name=Path(stack).name)
        entries = [DefocusEntry(start_view=s, end_view=s, start_angle_deg=im.tilt_angle_deg,
                                end_angle_deg=im.tilt_angle_deg, ctf=c) for s, im, c in zip(sections, active, recs,
                                                                                             strict=True)]
        defocus = write_defocus(out / f"{ts.ts_id}.defocus", entries)
        tilts = [RelionTilt(nominal_tilt_deg=im.nominal_tilt_angle_deg if im.nominal_tilt_angle_deg is not None
                            else im.tilt_angle_deg, pre_exposure_e_per_a2=im.pre_exposure_e_per_a2,
                            micrograph=f"{im.image.index + 1}@{im.image.path}", ctf=c)
                 for im, c in zip(active, recs, strict=True)]
        star = write_tilt_series_star(out / f"{ts.ts_id}_ctf.star", ts.ts_id, tilts)
        summary = write_series_png(out / f"{ts.ts_id}_ctf_summary.png",
                                   [im.tilt_angle_deg for im in active], [c.defocus_um for c in recs],
                                   [c.fit_resolution_a or float("nan") for c in recs], [False] * len(recs),
                                   f"{ts.ts_id}: defocus and fit resolution")
        pngs = []
        if params.write_view_plots:
            optics = Optics(acq.voltage_kv, acq.cs_mm, acq.amplitude_contrast)
            for sec, im, f in zip(sections, active, fits, strict=True):
                model = ctf_2d((box, box), acq.pixel_size_a, f.params, optics) ** 2
                band = torch.fft.rfftfreq(box, d=acq.pixel_size_a)
                inside = (band >= 1 / settings.resolution_min_a) & (band <= 1 / settings.resolution_max_a)
                ky = torch.fft.fftfreq(box, d=acq.pixel_size_a)[:, None]
                s = torch.sqrt(ky ** 2 + band[None] ** 2)
                model = torch.where((s >= 1 / settings.resolution_min_a) & (s <= 1 / settings.resolution_max_a),
                                    model, torch.full_like(model, float(model[:, inside].mean())))
                pngs.append(str(write_fit_png(
                    out / f"{ts.ts_id}_view{sec:03d}_ctf.png", f.spectrum, model, f.profile_freq_per_a, f.profile,
                    f.profile_fit, f.profile_cc, (1 / settings.resolution_min_a, 1 / settings.resolution_max_a),
                    f.fit_resolution_a, f"{ts.ts_id} view {sec} ({im.tilt_angle_deg:+.1f}°): "
                                        f"{f.params.defocus_u_a / 1e4:.3f}/{f.params.defocus_v_a / 1e4:.3f} µm, "
                                        f"{f.params.astigmatism_angle_deg:.0f}°")))
        return CtfEstimateFiles(ts_id=ts.ts_id, table_path=str(table), ctffind_path=str(ctffind),
                                defocus_path=str(defocus), star_path=str(star), summary_png=str(summary),
                                view_pngs=pngs, box_size=box)
