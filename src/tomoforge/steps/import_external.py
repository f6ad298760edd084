"""Import another tool's alignment and CTF onto a project's tilt series, so the project can go on from there.

``import-imod`` (``.xf``, ``.tlt``, ``.rawtlt``, ``.defocus``, ``tilt.com`` EXCLUDELIST), ``import-relion``
(RELION 5 ``tomograms.star`` and its tilt-series STARs: alignment, CTF; left-out tilts become excluded views),
``import-aretomo`` (``.aln``; dark frames become excluded views) and ``import-warp`` (tilt-series XML: CTF,
dose, UseTilt; Warp's alignment is not imported). Each reads the ``tilt_series`` input and writes it again with
the values filled in. Tilt series are matched by id; views by angle where the files carry angles, else by
section (``interop.matching``). Mismatches are refused while planning, before any job runs.
"""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import Field

from tomoforge.errors import InputError
from tomoforge.interop.matching import match_by_angle, match_by_count
from tomoforge.interop.views import image_shape, mean_axis_deg, transform_record
from tomoforge.model import CtfEstimate, TiltSeries
from tomoforge.steps.base import Port, Step, StepParams, Unit, UnitContext, UnitResult


def _find(folder: str, ts_id: str, names: list[str]) -> Path | None:
    """``folder/TS/name`` or ``folder/name`` for the first of ``names`` ('{TS}' is the tilt-series id)."""
    root = Path(folder)
    for name in names:
        n = name.replace("{TS}", ts_id)
        for cand in (root / ts_id / n, root / n):
            if cand.is_file():
                return cand
    return None


def _apply(ts: TiltSeries, mapping: list[int | None], *, source: str, xf=None, tilt=None,
           ctf: list[CtfEstimate | None] | None = None, excluded_rows: set[int] = frozenset(),
           pre_exposure=None, missing_reason: str) -> TiltSeries:
    """A copy of ``ts`` whose view k takes row ``mapping[k]`` of the file arrays (None: view excluded)."""
    images = []
    for k, im in enumerate(ts.images):
        r = mapping[k]
        if r is None:
            images.append(im.model_copy(update={"excluded": True, "exclude_reason": missing_reason}))
            continue
        upd: dict = {"nominal_tilt_angle_deg": im.nominal_tilt_angle_deg if im.nominal_tilt_angle_deg is not None
                     else im.tilt_angle_deg}
        if xf is not None:
            upd["transform"] = transform_record(xf[r])
        if tilt is not None:
            upd["tilt_angle_deg"] = float(tilt[r])
        if ctf is not None and ctf[r] is not None:
            upd["ctf"] = ctf[r]
        if r in excluded_rows and not im.excluded:
            upd.update(excluded=True, exclude_reason=f"excluded in {source}")
        if pre_exposure is not None:
            upd["accumulated_dose_e_per_a2"] = float(pre_exposure[r]) + im.dose_e_per_a2
        images.append(im.model_copy(update=upd))
    data = ts.model_dump()
    data["images"] = [i.model_dump() for i in images]
    rows = [r for r in mapping if r is not None]
    if xf is not None and rows:
        data["acquisition"]["tilt_axis_deg"] = mean_axis_deg(xf[rows])
    data["notes"] = [*ts.notes, f"alignment/CTF imported from {source}"]
    return TiltSeries.model_validate(data)


class _ExternalImport(Step):
    """One unit per input tilt series; ``convert`` does the work and is checked while planning."""

    inputs = {"tilt_series": Port(TiltSeries, "Tilt series that receive the external values")}
    outputs = {"tilt_series": Port(TiltSeries, "Tilt series with the imported alignment / CTF")}

    def convert(self, params, ts: TiltSeries) -> TiltSeries:
        raise NotImplementedError

    def plan(self, params, inputs) -> list[Unit]:
        units = super().plan(params, inputs)
        if not units:
            raise InputError(f"step '{self.name}' needs tilt series", field="tilt_series",
                             expected="-i JOB with a tilt_series output")
        for u in units:
            self.convert(params, u.one("tilt_series").load(TiltSeries))
        return units

    def run_unit(self, params, unit: Unit, ctx: UnitContext) -> UnitResult:
        ts = self.convert(params, unit.one("tilt_series").load(TiltSeries))
        result = UnitResult()
        result.artifacts.append(ctx.write_record("tilt_series", ts.ts_id, ts))
        result.metrics["views_aligned"] = sum(im.transform is not None for im in ts.images)
        result.metrics["views_with_ctf"] = sum(im.ctf is not None for im in ts.images)
        result.metrics["views_excluded"] = sum(im.excluded for im in ts.images)
        return result


# ------------------------------------------------------------------------------------------------ IMOD


class ImportImodParams(StepParams):
    dir: str = Field(description="Folder with TS.xf, TS.tlt, TS.rawtlt, TS.defocus, tilt.com (or DIR/TS/...)")
    binning: float = Field(1.0, gt=0, description="Pixel size of the IMOD stack relative to the tilt series'")
    angle_tolerance_deg: float = Field(0.5, ge=0, description="A .rawtlt angle must be this close to a view's")
    allow_missing_views: bool = Field(False, description="Mark views the files lack as excluded instead of refusing")


class ImportImod(_ExternalImport):
    name = "import-imod"
    title = "Import an IMOD alignment (.xf/.tlt), ctfplotter .defocus and tilt.com EXCLUDELIST"
    Params = ImportImodParams

    def convert(self, params: ImportImodParams, ts: TiltSeries) -> TiltSeries:
        from tomoforge.io.defocus import read_defocus
        from tomoforge.io.imod import read_tilt_angles, read_xf
        from tomoforge.io.imod_com import read_tilt_com

        xf_p = _find(params.dir, ts.ts_id, ["{TS}.xf", "{TS}_st.xf"])
        tlt_p = _find(params.dir, ts.ts_id, ["{TS}.tlt", "{TS}_st.tlt"])
        raw_p = _find(params.dir, ts.ts_id, ["{TS}.rawtlt", "{TS}_st.rawtlt"])
        def_p = _find(params.dir, ts.ts_id, ["{TS}.defocus", "{TS}_st.defocus"])
        com_p = Path(params.dir) / ts.ts_id / "tilt.com"
        if not (xf_p or tlt_p or def_p):
            raise InputError(f"no IMOD files for tilt series {ts.ts_id}", path=params.dir,
                             expected=f"{ts.ts_id}.xf, {ts.ts_id}.tlt or {ts.ts_id}.defocus in DIR or DIR/{ts.ts_id}/")
        if raw_p is not None:
            raw = read_tilt_angles(raw_p)
            n = len(raw)
            mapping = match_by_angle(ts, raw, raw_p, tolerance_deg=params.angle_tolerance_deg,
                                     allow_missing=params.allow_missing_views)
        else:
            first = xf_p or tlt_p
            n = len(read_xf(xf_p)) if xf_p else len(read_tilt_angles(first)) if tlt_p else ts.n_views
            mapping = match_by_count(ts, n, first or def_p)
        xf = read_xf(xf_p, n_views=n) if xf_p else None
        if xf is not None and params.binning != 1:
            xf = xf.clone()
            xf[..., 2] *= params.binning
        tilt = read_tilt_angles(tlt_p, n_views=n) if tlt_p else None
        ctf = None
        if def_p is not None:
            df = read_defocus(def_p)
            if max(e.end_view for e in df.entries) > n:
                raise InputError(f"the .defocus names view {max(e.end_view for e in df.entries)} but the stack has "
                                 f"{n} views", path=def_p, expected=f"views 1..{n}")
            ctf = df.per_view(n)
        excluded: set[int] = set()
        if com_p.is_file():
            excluded = {v - 1 for v in read_tilt_com(com_p).exclude_views}
        return _apply(ts, mapping, source=f"IMOD {xf_p or tlt_p or def_p}", xf=xf, tilt=tilt, ctf=ctf,
                      excluded_rows=excluded, missing_reason="not in the IMOD stack")


# ---------------------------------------------------------------------------------------------- RELION


class ImportRelionParams(StepParams):
    tomograms: str = Field(description="RELION 5 tomograms.star (its tilt-series STARs are read from there)")
    angle_tolerance_deg: float = Field(0.5, ge=0, description="rlnTomoNominalStageTiltAngle must be this close")
    allow_missing_views: bool = Field(True, description="Views RELION left out become excluded (RELION's way "
                                                        "of excluding tilts); false refuses them")


def _relion_file(star: Path, rel: str) -> Path:
    """RELION paths are relative to its project folder: try the STAR's folder and its parents."""
    p = Path(rel)
    if p.is_absolute():
        return p
    for base in [star.parent, *star.parent.parents][:6]:
        if (base / p).is_file():
            return base / p
    raise InputError(f"'{rel}' not found beside or above {star.parent}", path=star,
                     field="rlnTomoTiltSeriesStarFile", expected="paths relative to the RELION project folder")


class ImportRelion(_ExternalImport):
    name = "import-relion"
    title = "Import a RELION 5 tilt-series alignment and CTF (tomograms.star)"
    Params = ImportRelionParams

    def convert(self, params: ImportRelionParams, ts: TiltSeries) -> TiltSeries:
        from tomoforge.io.relion import (
            alignment_from_tilts,
            read_tilt_series_star,
            read_tomograms_star,
            relion5_to_imod,
        )

        star = Path(params.tomograms)
        rows = {t.tomo_name: t for t in read_tomograms_star(star)}
        tomo = rows.get(ts.ts_id)
        if tomo is None:
            raise InputError(f"tilt series {ts.ts_id} is not in the tomograms STAR", path=star, field="rlnTomoName",
                             expected="one of " + ", ".join(sorted(rows)))
        if not tomo.tilt_series_star:
            raise InputError(f"no tilt-series STAR for {ts.ts_id}", path=star, field="rlnTomoTiltSeriesStarFile")
        ts_star = _relion_file(star, tomo.tilt_series_star)
        tilts = read_tilt_series_star(ts_star)
        if all(t.nominal_tilt_deg is not None for t in tilts):
            mapping = match_by_angle(ts, [t.nominal_tilt_deg for t in tilts], ts_star, what="row",
                                     tolerance_deg=params.angle_tolerance_deg, allow_missing=params.allow_missing_views)
        else:
            mapping = match_by_count(ts, len(tilts), ts_star, what="tilt rows")
        xf = tilt = None
        if all(t.y_tilt_deg is not None for t in tilts):
            ali = alignment_from_tilts(tilts, ts_star)
            if tomo.size_xyz is None:
                raise InputError(f"tomogram {ts.ts_id} has no rlnTomoSizeX/Y/Z", path=star, field="rlnTomoSizeX",
                                 expected="the tomogram size, needed for RELION's centre convention")
            px = ts.acquisition.pixel_size_a
            p_r = tomo.tilt_series_pixel_size_a or px
            h, w = image_shape(ts)
            size_r = (int(round(w * px / p_r)), int(round(h * px / p_r)))
            xf, tilt, xtilt = relion5_to_imod(ali, image_size_xy=size_r, volume_size_xyz=tomo.size_xyz,
                                              pixel_size_a=p_r)
            xf = xf.clone()
            xf[..., 2] *= p_r / px
            if float(abs(torch.as_tensor(xtilt)).max()) > 1e-6:
                ts = ts.model_copy(update={"notes": [*ts.notes, "RELION rlnTomoXTilt is not kept (no X-axis tilt "
                                                                "field per view)"]})
        ctf = [t.ctf for t in tilts] if any(t.ctf is not None for t in tilts) else None
        return _apply(ts, mapping, source=f"RELION {ts_star}", xf=xf, tilt=tilt, ctf=ctf,
                      missing_reason="left out of the RELION tilt-series STAR")


# --------------------------------------------------------------------------------------------- AreTomo


class ImportAretomoParams(StepParams):
    dir: str = Field(description="Folder with TS.aln (or DIR/TS/TS.aln, TS_st.aln)")
    binning: float = Field(1.0, gt=0, description="Pixel size of the AreTomo stack relative to the tilt series'")
    angle_tolerance_deg: float = Field(1.0, ge=0, description="Matching by TILT when the raw stack size differs")


class ImportAretomo(_ExternalImport):
    name = "import-aretomo"
    title = "Import an AreTomo alignment (.aln); dark frames become excluded views"
    Params = ImportAretomoParams

    def convert(self, params: ImportAretomoParams, ts: TiltSeries) -> TiltSeries:
        from tomoforge.io.aretomo import aln_to_xf, read_aln

        path = _find(params.dir, ts.ts_id, ["{TS}.aln", "{TS}_st.aln"])
        if path is None:
            raise InputError(f"no .aln for tilt series {ts.ts_id}", path=params.dir,
                             expected=f"{ts.ts_id}.aln in DIR or DIR/{ts.ts_id}/")
        aln = read_aln(path)
        if aln.raw_size is not None and aln.raw_size[2] == ts.n_views:
            by_sec = {int(s): r for r, s in enumerate(aln.section)}   # raw stack = the views in tilt order
            mapping = [by_sec.get(k) for k in range(ts.n_views)]
        else:
            mapping = match_by_angle(ts, aln.tilt_deg, path, tolerance_deg=params.angle_tolerance_deg,
                                     allow_missing=True, what="row")
        xf = aln_to_xf(aln)
        if params.binning != 1:
            xf[..., 2] *= params.binning
        return _apply(ts, mapping, source=f"AreTomo {path}", xf=xf, tilt=aln.tilt_deg,
                      missing_reason="dark frame or removed in AreTomo")


# ------------------------------------------------------------------------------------------------ Warp


class ImportWarpParams(StepParams):
    dir: str = Field(description="Folder with the WarpTools tilt-series XML files (TS.xml)")
    angle_tolerance_deg: float = Field(0.5, ge=0, description="Warp's angles must be this close to the views'")
    use_dose: bool = Field(True, description="Take the accumulated dose from Warp's Dose list")


class ImportWarp(_ExternalImport):
    name = "import-warp"
    title = "Import Warp/WarpTools CTF, dose and tilt selection (tilt-series XML)"
    Params = ImportWarpParams

    def convert(self, params: ImportWarpParams, ts: TiltSeries) -> TiltSeries:
        from tomoforge.io.warp import read_warp_xml

        path = _find(params.dir, ts.ts_id, ["{TS}.xml", "{TS}.mrc.xml", "{TS}.tomostar.xml"])
        if path is None:
            raise InputError(f"no Warp XML for tilt series {ts.ts_id}", path=params.dir,
                             expected=f"{ts.ts_id}.xml in DIR or DIR/{ts.ts_id}/")
        w = read_warp_xml(path)
        mapping = match_by_angle(ts, w.angles_deg, path, tolerance_deg=params.angle_tolerance_deg,
                                 allow_missing=False, what="tilt")
        unused = {r for r in range(w.n_tilts) if not w.use_tilt[r]}
        return _apply(ts, mapping, source=f"Warp {path}", ctf=w.ctf, excluded_rows=unused,
                      pre_exposure=w.dose_e_per_a2 if params.use_dose else None, missing_reason="not in Warp")


EXTERNAL_IMPORT_STEPS: list[type[Step]] = [ImportImod, ImportRelion, ImportAretomo, ImportWarp]
