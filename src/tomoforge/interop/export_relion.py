"""``tomoforge export relion``: a RELION 5 tomography project fragment.

``DIR/tomograms.star`` (``data_global``) with ``DIR/tilt_series/<TS>.star`` per tilt series: one row per
view that is not excluded (RELION excludes a tilt by leaving its row out), sorted by tilt angle, with the
alignment converted exactly (``io.relion.imod_to_relion5``, half-pixel centres included), CTF, pre-exposure
and the per-view images (before dose filtering and CTF correction, which RELION applies itself) written to
``DIR/frames/<view>.mrc`` (``_EVN``/``_ODD`` where even/odd sums exist).
Motion STARs (``data_global_shift``) of the motion-correction step are copied to ``DIR/frames/<movie>.star``
and named in ``rlnMicrographMetadata``. Picks go to ``particles.star`` (3D variant) with an optimisation set.

RELION 5 alignments cannot express a magnification: a scaled ``.xf`` is replaced by its rotation with the
volume centre kept in place (``interop.views.rigid_part``), and the largest resulting error is noted.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from tomoforge.core.geometry import xf_magnification
from tomoforge.errors import InputError
from tomoforge.interop.collect import SeriesExport, collect_for_export
from tomoforge.interop.views import image_shape, nominal_angle, read_view, rigid_part, transforms, view_name
from tomoforge.io.atomic import atomic_path, write_text_atomic
from tomoforge.io.mrc import read_section, write_mrc
from tomoforge.io.relion import (
    RelionTilt,
    RelionTomogram,
    imod_to_relion5,
    write_optimisation_set,
    write_particles_star,
    write_tilt_series_star,
    write_tomograms_star,
)
from tomoforge.model import TiltSeries
from tomoforge.project.store import Project

HAND = -1.0  # RELION's import default ("invert defocus handedness": yes); check it with a CtfRefine handedness job


def export_relion(project: Project, out_dir: str | Path, job: int | None = None, *,
                  thickness_px: int | None = None) -> list[Path]:
    """Write the fragment into ``out_dir``; returns the STAR files written (``tomograms.star`` first).

    ``thickness_px`` (tilt-series pixels) sets ``rlnTomoSizeZ`` when the project has no tomogram."""
    out_dir = Path(out_dir)
    series = collect_for_export(project, job)
    tomos: dict[str, RelionTomogram] = {}
    written: list[Path] = []
    notes: list[str] = []
    for ex in series:
        tomos[ex.ts.ts_id] = _export_series(ex, out_dir, thickness_px)
        written.append(out_dir / "tilt_series" / f"{ex.ts.ts_id}.star")
        notes += ex.notes
    rows = list(tomos.values())
    if any(t.tomogram for t in rows) and not all(t.tomogram for t in rows):
        notes.append("some tilt series have no tomogram: rlnTomoReconstructedTomogram is left out")
        rows = [t.model_copy(update={"tomogram": None, "half1": None, "half2": None}) for t in rows]
    if any(t.half1 for t in rows) and not all(t.half1 for t in rows):
        rows = [t.model_copy(update={"half1": None, "half2": None}) for t in rows]
    write_tomograms_star(out_dir / "tomograms.star", rows)
    written.insert(0, out_dir / "tomograms.star")
    coords = [ex.coordinates for ex in series if ex.coordinates is not None and ex.coordinates.particles]
    if coords:
        box = next((c.box_size_px for c in coords if c.box_size_px), 64)
        write_particles_star(out_dir / "particles.star", coords, {t.tomo_name: t for t in rows}, box_size_px=box)
        write_optimisation_set(out_dir / "optimisation_set.star",
                               {"rlnTomoParticlesFile": "particles.star", "rlnTomoTomogramsFile": "tomograms.star"})
        written += [out_dir / "particles.star", out_dir / "optimisation_set.star"]
    else:
        notes.append("no picks in the project: no particles.star")
    notes.append("no subtomogram average record type exists yet: no half maps or postprocess.star")
    write_text_atomic(out_dir / "EXPORT_NOTES.txt", "\n".join(notes) + "\n")
    return written


def _volume_size(ex: SeriesExport, w: int, h: int, thickness_px: int | None) -> tuple[tuple[int, int, int], float]:
    if ex.tomogram is not None:
        b = ex.tomogram.binning
        d, th, tw = ex.tomogram.shape_zyx
        return (int(round(tw * b)), int(round(th * b)), int(round(d * b))), b
    return (w, h, int(thickness_px or (w // 2))), 1.0


def _export_series(ex: SeriesExport, out_dir: Path, thickness_px: int | None) -> RelionTomogram:
    ts = ex.ts
    acq = ts.acquisition
    px = acq.pixel_size_a
    h, w = image_shape(ts)
    size_xyz, binning = _volume_size(ex, w, h, thickness_px)
    xf_all = transforms(ts)
    mag = xf_magnification(xf_all)
    if torch.any((mag - 1).abs() > 1e-6):
        worst = float(((mag - 1).abs() * 0.5 * float(np.hypot(w, h))).max())
        ex.notes.append(f"{ts.ts_id}: magnification {float(mag.min()):.4f}..{float(mag.max()):.4f} dropped "
                        f"(RELION 5 has none): up to {worst:.2f} px at the image corners")
    keep = [k for k, im in enumerate(ts.images) if not im.excluded]
    if not keep:
        raise InputError(f"tilt series {ts.ts_id} has every view excluded", expected="at least one view to export")
    ali = imod_to_relion5(rigid_part(xf_all)[keep], [ts.images[k].tilt_angle_deg for k in keep],
                          image_size_xy=(w, h), volume_size_xyz=size_xyz, pixel_size_a=px)
    frames = out_dir / "frames"
    halves = {"even": _half_refs(ts, ex.even, "even"), "odd": _half_refs(ts, ex.odd, "odd")}
    motion = _motion_stars(ex)
    tilts = []
    for j, k in enumerate(keep):
        im = ts.images[k]
        stem = view_name(ts, im)
        write_mrc(frames / f"{stem}.mrc", read_view(ts, im), px, stack=False)
        row = RelionTilt(
            movie=im.movie.path if im.movie is not None else None,
            frame_count=im.movie.n_frames if im.movie is not None else None,
            nominal_tilt_deg=nominal_angle(im), nominal_tilt_axis_deg=acq.tilt_axis_deg,
            pre_exposure_e_per_a2=im.pre_exposure_e_per_a2,
            nominal_defocus_um=-im.target_defocus_um if im.target_defocus_um is not None else None,
            micrograph=f"frames/{stem}.mrc", ctf=im.ctf,
            x_tilt_deg=float(ali.x_tilt_deg[j]), y_tilt_deg=float(ali.y_tilt_deg[j]),
            z_rot_deg=float(ali.z_rot_deg[j]), x_shift_a=float(ali.x_shift_a[j]), y_shift_a=float(ali.y_shift_a[j]))
        for half, suffix in (("even", "EVN"), ("odd", "ODD")):
            ref = halves[half].get(im.acquisition_order)
            if ref is not None:
                write_mrc(frames / f"{stem}_{suffix}.mrc", read_section(ref[0], ref[1]), px, stack=False)
                row = row.model_copy(update={half: f"frames/{stem}_{suffix}.mrc"})
        src = motion.get(stem)
        if src is not None:
            with atomic_path(frames / f"{stem}.star") as tmp:
                shutil.copyfile(src, tmp)
            row = row.model_copy(update={"motion_metadata": f"frames/{stem}.star"})
        tilts.append(row)
    tilts = _uniform_columns(tilts, ts.ts_id, ex.notes)
    write_tilt_series_star(out_dir / "tilt_series" / f"{ts.ts_id}.star", ts.ts_id, tilts)
    movie_px = float(ex.motion.pixel_size_a) if ex.motion is not None else px
    t = RelionTomogram(tomo_name=ts.ts_id, tilt_series_star=f"tilt_series/{ts.ts_id}.star",
                       voltage_kv=acq.voltage_kv, cs_mm=acq.cs_mm, amplitude_contrast=acq.amplitude_contrast,
                       original_pixel_size_a=movie_px, tilt_series_pixel_size_a=px, hand=HAND,
                       optics_group_name="optics1", binning=binning, size_xyz=size_xyz)
    if ex.tomogram is not None:
        t = t.model_copy(update={"tomogram": ex.tomogram.path, "half1": ex.tomogram.half1_path,
                                 "half2": ex.tomogram.half2_path})
    return t


def _half_refs(ts: TiltSeries, half: TiltSeries | None, which: str) -> dict[int, tuple[str, int]]:
    """acquisition order -> (stack, section) of the even or odd sum of each view, where one exists."""
    out = {}
    for im in ts.images:
        ref = im.even if which == "even" else im.odd
        if ref is not None:
            out[im.acquisition_order] = (ref.path, ref.index)
    if half is not None:
        for im in half.images:
            if im.image is not None and im.acquisition_order not in out:
                out[im.acquisition_order] = (im.image.path, im.image.index)
    return out


def _motion_stars(ex: SeriesExport) -> dict[str, Path]:
    """movie stem -> the motion STAR the motion-correction step wrote for it."""
    if ex.motion is None:
        return {}
    out = {}
    for p in ex.motion.star_paths:
        path = Path(p)
        if path.is_file():
            out[path.stem] = path
        else:
            ex.notes.append(f"{ex.ts.ts_id}: motion STAR {path} is missing; not exported")
    return out


def _uniform_columns(tilts: list[RelionTilt], ts_id: str, notes: list[str]) -> list[RelionTilt]:
    """RELION needs every row to carry the same columns: drop optional ones only some views have."""
    fields = ("movie", "frame_count", "nominal_defocus_um", "even", "odd", "motion_metadata", "ctf")
    update = {}
    for f in fields:
        vals = [getattr(t, f) for t in tilts]
        if any(v is None for v in vals) and any(v is not None for v in vals):
            update[f] = None
            notes.append(f"{ts_id}: '{f}' exists for only some views; left out of the tilt-series STAR")
    return [t.model_copy(update=update) for t in tilts] if update else tilts
