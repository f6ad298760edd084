"""``tomoforge export imod``: one IMOD-ready folder per tilt series.

``DIR/<TS>/`` holds the stack the transforms refer to (``<TS>.st``: every view, excluded ones too, in tilt
order, as it was before dose filtering and CTF correction, which IMOD applies itself), ``.rawtlt`` (nominal angles), ``.tlt`` (refined), ``.xf`` (one line per section; identity
where a view has no alignment), ``.defocus`` (ctfplotter version 3, views with a CTF estimate),
``<TS>_ctffind.txt``, ``<TS>.fid`` (the newest fiducial model's bead tracks, sections of ``<TS>.st``, where the
project has one), ``<TS>_rec.mrc`` (a copy of the newest tomogram, X,Y,Z, pixel size in the header),
and ``newst.com`` + ``tilt.com`` that rebuild the aligned stack and the tomogram with IMOD: excluded views are
listed in ``EXCLUDELIST`` (1-based sections).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from tomoforge.interop.collect import SeriesExport, collect_for_export
from tomoforge.interop.views import image_shape, nominal_angle, read_view, transforms
from tomoforge.io.atomic import atomic_path, write_text_atomic
from tomoforge.io.ctffind import write_ctffind
from tomoforge.io.defocus import DefocusEntry, write_defocus
from tomoforge.io.imod import write_tilt_angles, write_xf
from tomoforge.io.imod_com import NewstackParams, TiltParams, write_newst_com, write_tilt_com
from tomoforge.io.imod_model import write_fiducials
from tomoforge.io.mrc import mrc_header_info, read_mrc, write_mrc
from tomoforge.project.store import Project

ANGLE_DECIMALS = 3  # IMOD writes %7.2f; a third decimal keeps refined angles to 0.001°


def export_imod(project: Project, out_dir: str | Path, job: int | None = None) -> list[Path]:
    """Write ``out_dir/<TS>/`` for every tilt series (see the module docstring); returns those folders."""
    out_dir = Path(out_dir)
    written = []
    for ex in collect_for_export(project, job):
        written.append(export_series_imod(ex, out_dir / ex.ts.ts_id))
    return written


def export_series_imod(ex: SeriesExport, folder: Path) -> Path:
    ts = ex.ts
    name = ts.ts_id
    folder.mkdir(parents=True, exist_ok=True)
    px = ts.acquisition.pixel_size_a
    h, w = image_shape(ts)
    stack = np.stack([read_view(ts, im) for im in ts.images])
    write_mrc(folder / f"{name}.st", stack, px, stack=True)
    write_tilt_angles(folder / f"{name}.rawtlt", [nominal_angle(im) for im in ts.images], decimals=ANGLE_DECIMALS)
    tilts = [im.tilt_angle_deg for im in ts.images]
    write_tilt_angles(folder / f"{name}.tlt", tilts, decimals=ANGLE_DECIMALS)
    write_xf(folder / f"{name}.xf", transforms(ts))
    with_ctf = [(k, im) for k, im in enumerate(ts.images) if im.ctf is not None]
    if with_ctf:
        write_defocus(folder / f"{name}.defocus",
                      [DefocusEntry(start_view=k + 1, end_view=k + 1, start_angle_deg=im.tilt_angle_deg,
                                    end_angle_deg=im.tilt_angle_deg, ctf=im.ctf) for k, im in with_ctf])
        acq = ts.acquisition
        write_ctffind(folder / f"{name}_ctffind.txt", [im.ctf for _, im in with_ctf], pixel_size_a=px,
                      voltage_kv=acq.voltage_kv, cs_mm=acq.cs_mm, amplitude_contrast=acq.amplitude_contrast,
                      input_name=f"{name}.st")
        if len(with_ctf) < len(ts.images):
            ex.notes.append(f"{name}: {len(ts.images) - len(with_ctf)} views have no CTF estimate; "
                            "the .defocus lists the others by section, the _ctffind.txt in section order")
    if ex.fiducials:
        write_fiducials(folder / f"{name}.fid", ex.fiducials, (w, h, len(ts.images)), pixel_size_a=px)
    thickness_px, binning = _reconstruction_size(ex, w)
    if ex.tomogram is not None:
        _copy_tomogram(ex, folder / f"{name}_rec.mrc")
    bin_by = max(1, int(round(binning)))
    write_newst_com(folder / "newst.com", NewstackParams(
        input_file=f"{name}.st", output_file=f"{name}.ali", transform_file=f"{name}.xf", bin_by=bin_by,
        mode=2, size_xy=(w // bin_by, h // bin_by)))
    excluded = [k + 1 for k, im in enumerate(ts.images) if im.excluded]
    write_tilt_com(folder / "tilt.com", TiltParams(
        input_projections=f"{name}.ali", output_file=f"{name}_full_rec.mrc", tilt_file=f"{name}.tlt",
        thickness_px=int(thickness_px), image_binned=bin_by, full_image_xy=(w, h), exclude_views=excluded,
        x_axis_tilt_deg=ex.tomogram.x_tilt_deg if ex.tomogram else 0.0,
        shift_xz=(0.0, ex.tomogram.z_shift_px if ex.tomogram else 0.0), offset_deg=0.0, mode=2))
    if ex.notes:
        write_text_atomic(folder / "EXPORT_NOTES.txt", "\n".join(ex.notes) + "\n")
    return folder


def _reconstruction_size(ex: SeriesExport, width: int) -> tuple[int, float]:
    """Thickness in pixels of the stack and the tomogram's binning (from the tomogram, else defaults)."""
    if ex.tomogram is not None:
        b = ex.tomogram.binning
        return int(round(ex.tomogram.shape_zyx[0] * b)), b
    ex.notes.append(f"{ex.ts.ts_id}: no tomogram in the project; tilt.com uses THICKNESS {width // 2} "
                    "(half the image width) and no binning")
    return width // 2, 1.0


def _copy_tomogram(ex: SeriesExport, dest: Path) -> None:
    """Copy the tomogram; rewrite it when its header lacks the record's pixel size."""
    src = Path(ex.tomogram.path)
    info = mrc_header_info(src)
    if abs(info.pixel_size_a - ex.tomogram.pixel_size_a) <= 1e-3 * ex.tomogram.pixel_size_a:
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
    else:
        data, _ = read_mrc(src)
        write_mrc(dest, data, ex.tomogram.pixel_size_a, stack=False)
