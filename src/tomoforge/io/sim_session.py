"""Write a simulated microscope session: movies (or stacks), SerialEM mdocs, a gain reference and ``truth/``.

Layout of ``outdir`` (docs/simulator.md):

- ``frames/TS_01_000_0.0.tif`` ... movies (uint16 counts, LZW TIFF; or MRC), named like EMPIAR-10164;
- ``TS_01.mrc.mdoc`` one SerialEM mdoc per tilt series (``TS_01.mrc`` is the stack, when written);
- ``gain_ref.mrc`` (gain-corrected frame = raw frame * gain);
- ``truth/truth.json`` (schema: tomoforge.core.sim.truth.SimTruth) and the truth volumes.
"""

from __future__ import annotations

import json
import math
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
from pydantic import ValidationError

from tomoforge.core.sim.build import PROTEIN_V, build_specimen
from tomoforge.core.sim.cases import CASES, list_cases
from tomoforge.core.sim.config import SimConfig
from tomoforge.core.sim.detector import gain_reference, split_into_raw_frames
from tomoforge.core.sim.simulate import (
    SeriesPlan,
    nominal_tilts,
    plan_tilt_series,
    render_view,
    session_start,
)
from tomoforge.core.sim.truth import (
    AcquisitionTruth,
    FrameTruth,
    ObjectTruth,
    SimTruth,
    TiltSeriesTruth,
    TruthVolume,
    ViewTruth,
)
from tomoforge.core.sim.volume import ring_map, voxelize
from tomoforge.errors import ParamError, ParseError
from tomoforge.io.atomic import write_text_atomic
from tomoforge.io.eer import write_eer
from tomoforge.io.mdoc import format_mdoc_datetime, write_mdoc
from tomoforge.io.mrc import read_mrc, write_mrc
from tomoforge.io.tiff import write_tiff_movie

Progress = Callable[[str, int, int], None]


# ------------------------------------------------------------------------------------------- parameters

def _allowed(name: str) -> str:
    info = SimConfig.model_fields[name]
    ann = info.annotation
    if typing.get_origin(ann) is typing.Literal:
        return " | ".join(str(a) for a in typing.get_args(ann))
    if ann is bool:
        return "true | false"
    lo = hi = None
    for meta in info.metadata:
        lo = getattr(meta, "ge", None) if getattr(meta, "ge", None) is not None else lo
        lo = getattr(meta, "gt", None) if getattr(meta, "gt", None) is not None else lo
        hi = getattr(meta, "le", None) if getattr(meta, "le", None) is not None else hi
    if lo is not None or hi is not None:
        return f"{getattr(ann, '__name__', ann)} in {lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}"
    return getattr(ann, "__name__", str(ann))


def make_config(case: str, overrides: dict[str, str | float | int] | None = None) -> SimConfig:
    """The case's config with ``overrides`` applied; ParamError names a bad key and its allowed range."""
    if case not in CASES:
        raise ParamError(f"unknown simulation case '{case}'", field="case", expected=", ".join(list_cases()))
    data = CASES[case].model_dump()
    for key, value in (overrides or {}).items():
        if key not in SimConfig.model_fields or key in ("name",):
            raise ParamError("unknown simulation parameter", field=key,
                             expected="one of " + ", ".join(k for k in SimConfig.model_fields if k != "name"))
        if SimConfig.model_fields[key].annotation is bool and isinstance(value, str):
            low = value.strip().lower()
            if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ParamError(f"bad value '{value}'", field=key, expected=_allowed(key))
            value = low in ("1", "true", "yes", "on")
        data[key] = value
    try:
        cfg = SimConfig.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        key = str(first["loc"][0]) if first.get("loc") else "?"
        raise ParamError(f"bad value '{data.get(key)}' ({first['msg']})", field=key, expected=_allowed(key)) from None
    _check_lists(cfg)
    return cfg


def _check_lists(cfg: SimConfig) -> None:
    try:
        if cfg.tilt_scheme == "custom":
            [float(x) for x in cfg.custom_tilts_deg.split(",") if x.strip()] or [][0]
        lo, hi = (float(v) for v in cfg.vesicle_radius_range_a.split(","))
        if not 0 < lo <= hi:
            raise ValueError
    except (ValueError, IndexError):
        raise ParamError("bad list", field="custom_tilts_deg/vesicle_radius_range_a",
                         expected="comma-separated numbers (radius range: min,max > 0)") from None
    if cfg.movie_format == "eer" and not cfg.noise_on:
        raise ParamError("EER movies hold electron events and need counting noise", field="movie_format",
                         expected="noise_on=true with movie_format=eer")
    n_views = len(nominal_tilts(cfg))
    for name in ("dark_views", "bad_series"):
        for item in [p for p in getattr(cfg, name).split(",") if p.strip()]:
            parts = [part.strip() for part in item.split(":")]
            if not all(part.isdigit() for part in parts) or len(parts) > (2 if name == "dark_views" else 1):
                raise ParamError(f"bad item '{item}'", field=name,
                                 expected="ORDER or TS:ORDER integers, comma-separated" if name == "dark_views"
                                 else "1-based tilt-series numbers, comma-separated")
            ts = int(parts[0]) if (name == "bad_series" or len(parts) == 2) else 1
            if not 1 <= ts <= cfg.n_tilt_series:
                raise ParamError(f"no tilt series {ts} in '{item}'", field=name,
                                 expected=f"tilt series 1..{cfg.n_tilt_series}")
            if name == "dark_views" and not 0 <= int(parts[-1]) < n_views:
                raise ParamError(f"no view {parts[-1]} in '{item}'", field=name,
                                 expected=f"acquisition order 0..{n_views - 1}")


# ------------------------------------------------------------------------------------------- session

SIM_LABEL = "tomoforge simulate (truth in truth/truth.json)"


def _seeds(seed: int, ts_index: int) -> list[np.random.Generator]:
    ss = np.random.SeedSequence([int(seed), 1000 + ts_index])
    return [np.random.default_rng(s) for s in ss.spawn(4)]  # plan, specimen, texture, noise


def truth_binning(cfg: SimConfig) -> int:
    """Truth-volume binning relative to the written images: ``truth_binning`` is given at scale 1."""
    return max(1, int(round(cfg.truth_binning * cfg.scale)))


def _volume_shape(cfg: SimConfig, slab_scale: float) -> tuple[int, int, int]:
    n = cfg.effective_image_size_px()
    b = truth_binning(cfg)
    vox = cfg.effective_pixel_size_a() * b
    if cfg.volume_thickness_px:
        d = max(cfg.volume_thickness_px // b, 1)
    else:
        t = cfg.ice_thickness_a * slab_scale
        pre = math.radians(cfg.pretilt_deg)
        extent = t / math.cos(pre) + n * cfg.effective_pixel_size_a() * abs(math.tan(pre))
        d = int(math.ceil(1.15 * extent / vox / 2)) * 2
    return (d, n // b, n // b)


def simulate_case(case: str, outdir: Path, seed: int = 0, overrides: dict[str, str | float | int] | None = None,
                  progress: Progress | None = None) -> Path:
    """Simulate ``case`` into ``outdir``; returns the path of ``truth/truth.json``.

    The same case, seed and overrides give the same bytes. Torch runs on one thread meanwhile: the work is
    many small array operations, for which thread wake-ups cost more than they give on a shared machine,
    and one thread keeps every reduction in the same order.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _simulate_case(case, outdir, seed, overrides, progress)
    finally:
        torch.set_num_threads(threads)


def _simulate_case(case: str, outdir: Path, seed: int, overrides, progress: Progress | None) -> Path:
    cfg = make_config(case, overrides)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n = cfg.effective_image_size_px()
    px = cfg.effective_pixel_size_a()
    start = session_start(seed)

    gain = gain_reference((n, n), cfg.gain_rms, np.random.default_rng(np.random.SeedSequence([int(seed), 7])))
    gain_rel = "gain_ref.mrc"
    write_mrc(outdir / gain_rel, gain, px, label=SIM_LABEL)

    ring_rel = None
    ring_truth = None
    if cfg.n_rings or cfg.n_vlps:
        box = int(math.ceil(2 * (1.45 * cfg.ring_radius_a + 0.6 * cfg.ring_radius_a) / px / 2)) * 2 + 8
        ring_rel = "truth/ring_map.mrc"
        write_mrc(outdir / ring_rel, ring_map(cfg.ring_radius_a, box, px, PROTEIN_V), px, label=SIM_LABEL)
        ring_truth = TruthVolume(path=ring_rel, shape_zyx=(box, box, box), voxel_size_a=px)

    series = []
    ts_start = start
    for i in range(cfg.n_tilt_series):
        rng_plan, rng_spec, rng_tex, rng_noise = _seeds(seed, i)
        plan = plan_tilt_series(cfg, i, rng_plan, ts_start)
        ts_start = plan.views[-1].date_time + timedelta(minutes=6)
        series.append(_simulate_series(cfg, plan, gain, outdir, rng_spec, rng_tex, rng_noise, progress))

    truth = SimTruth(case=case, seed=int(seed), config=cfg.model_dump(), gain_reference=gain_rel,
                     ring_map=ring_truth, tilt_series=series)
    path = outdir / "truth" / "truth.json"
    write_text_atomic(path, json.dumps(truth.model_dump(mode="json"), indent=1) + "\n")
    if progress:
        size_mb = sum(p.stat().st_size for p in outdir.rglob("*") if p.is_file()) / 1e6
        progress(f"{case}: {time.perf_counter() - t0:.1f} s, {size_mb:.1f} MB in {outdir}", 1, 1)
    return path


def _simulate_series(cfg: SimConfig, plan: SeriesPlan, gain: np.ndarray, outdir: Path, rng_spec, rng_tex,
                     rng_noise, progress: Progress | None) -> TiltSeriesTruth:
    n = cfg.effective_image_size_px()
    px = cfg.effective_pixel_size_a()
    ts = plan.ts_id
    vshape = _volume_shape(cfg, plan.slab_scale)
    vox = px * truth_binning(cfg)
    box_a = (vshape[2] * vox, vshape[1] * vox, vshape[0] * vox)
    spec = build_specimen(cfg, rng_spec, plan.max_abs_tilt_deg, box_a, plan.slab_scale)

    vol_rel = f"truth/{ts}_volume.mrc"
    write_mrc(outdir / vol_rel, voxelize(spec, vshape, vox), vox, label=SIM_LABEL)

    nf = cfg.frames_per_movie
    views_truth: list[ViewTruth] = []
    noise_free = []
    sums = []
    for k, view in enumerate(plan.views):
        if progress:
            progress(f"{ts} views", k, len(plan.views))
        r = render_view(cfg, spec, view, gain, rng_noise, rng_tex, plan.slab_scale)
        movie_rel = None
        name = f"{ts}_{view.order:03d}_{view.nominal_tilt_deg:.1f}"
        if cfg.movie_format != "none":
            if cfg.noise_on:
                data, dtype = np.clip(r.frames, 0, 65535), np.uint16
            else:
                data, dtype = r.frames, np.float32
            if cfg.movie_format == "tiff":
                movie_rel = f"frames/{name}.tif"
                write_tiff_movie(outdir / movie_rel, data, dtype=dtype)
            elif cfg.movie_format == "eer":
                movie_rel = f"frames/{name}.eer"
                raw = np.concatenate([split_into_raw_frames(np.round(f), cfg.eer_raw_per_frame, rng_noise)
                                      for f in r.frames])
                write_eer(outdir / movie_rel, raw)
            else:
                movie_rel = f"frames/{name}.mrc"
                write_mrc(outdir / movie_rel, data, px, dtype=dtype, stack=False, label=SIM_LABEL)
        if cfg.write_stack:
            sums.append((r.frames * gain[None]).sum(0).astype(np.float32))
        if cfg.write_noise_free:
            noise_free.append(r.noise_free)
        h_c = view.height_at_raw_center_a((n, n), px, cfg.pretilt_deg) * cfg.defocus_handedness
        if not (cfg.defocus_gradient_on and cfg.ctf_on):
            h_c = 0.0
        dose_frame = view.dose_e_per_a2 / nf
        reason = "dark view" if view.dark else ("bad tilt series" if plan.bad else None)
        views_truth.append(ViewTruth(
            acquisition_order=view.order, nominal_tilt_deg=view.nominal_tilt_deg, tilt_deg=view.tilt_deg,
            xf=view.xf.tolist(), tilt_axis_deg=view.tilt_axis_deg, magnification=view.magnification,
            defocus_u_a=view.defocus_u_a + h_c, defocus_v_a=view.defocus_v_a + h_c,
            astigmatism_angle_deg=view.astig_angle_deg,
            defocus_at_volume_centre_a=0.5 * (view.defocus_u_a + view.defocus_v_a),
            dose_e_per_a2=view.dose_e_per_a2, accumulated_dose_e_per_a2=view.accumulated_dose_e_per_a2,
            transmission=view.transmission, mean_counts_per_px=r.mean_counts_per_px,
            mean_relative_intensity=r.mean_relative_intensity, dark=view.dark,
            excluded=view.dark or plan.bad, exclude_reason=reason, movie=movie_rel,
            date_time=format_mdoc_datetime(view.date_time),
            frames=[FrameTruth(index=f, shift_x_px=float(view.frame_shifts_px[f, 0]),
                               shift_y_px=float(view.frame_shifts_px[f, 1]),
                               pre_exposure_e_per_a2=view.pre_exposure_e_per_a2 + f * dose_frame)
                    for f in range(nf)],
            local_motion_control_px=None if view.local_control_px is None else view.local_control_px.tolist(),
            hot_pixels=r.hot_pixels))
    if progress:
        progress(f"{ts} views", len(plan.views), len(plan.views))

    # stack order: sorted by tilt (DateTime keeps the true order) or acquisition order
    order = list(range(len(plan.views)))
    if cfg.sort_stack_by_angle:
        order.sort(key=lambda j: plan.views[j].nominal_tilt_deg)
    stack_rel = None
    if cfg.write_stack:
        stack_rel = f"{ts}.mrc"
        write_mrc(outdir / stack_rel, np.stack([sums[j] for j in order]), px, stack=True, label=SIM_LABEL)
        for pos, j in enumerate(order):
            views_truth[j].stack_section = pos
    nf_rel = None
    if cfg.write_noise_free:
        nf_rel = f"truth/{ts}_noisefree.mrc"
        write_mrc(outdir / nf_rel, np.stack(noise_free), px, stack=True, label=SIM_LABEL)

    mdoc_rel = f"{ts}.mrc.mdoc"
    _write_series_mdoc(cfg, plan, outdir / mdoc_rel, views_truth, order if cfg.write_stack else None, stack_rel)

    recs = spec.records
    acq = AcquisitionTruth(
        voltage_kv=cfg.voltage_kv, cs_mm=cfg.cs_mm, amplitude_contrast=cfg.amplitude_contrast, pixel_size_a=px,
        image_size_yx=(n, n), frames_per_movie=nf, dose_per_tilt_e_per_a2=cfg.dose_per_tilt_e_per_a2,
        dose_per_frame_e_per_a2=cfg.dose_per_tilt_e_per_a2 / nf, magnification_nominal=cfg.magnification * cfg.scale,
        tilt_axis_nominal_deg=plan.tilt_axis_nominal_deg, tilt_axis_deg=plan.tilt_axis_deg,
        tilt_angle_offset_deg=plan.tilt_offset_deg, target_defocus_um=cfg.target_defocus_um,
        defocus_mean_um=plan.defocus_mean_a / 1e4, defocus_handedness=cfg.defocus_handedness,
        ice_thickness_a=cfg.ice_thickness_a * plan.slab_scale, pretilt_deg=cfg.pretilt_deg,
        tilt_scheme=cfg.tilt_scheme)

    def objs(key, only_inside=False):
        return [ObjectTruth(**{k: v for k, v in rec.items() if k != "matrix"}) for rec in recs.get(key, [])
                if rec["in_volume"] or not only_inside]

    return TiltSeriesTruth(
        ts_id=ts, mdoc=mdoc_rel, stack=stack_rel, excluded=plan.bad,
        exclude_reason="thick ice, large stage jumps and drift" if plan.bad else None, acquisition=acq,
        views=views_truth, beads=objs("beads"), rings=objs("rings", only_inside=True), vlps=objs("vlps"), vesicles=objs("vesicles"),
        volume=TruthVolume(path=vol_rel, shape_zyx=vshape, voxel_size_a=vox), noise_free_stack=nf_rel)


def _write_series_mdoc(cfg: SimConfig, plan: SeriesPlan, path: Path, views: list[ViewTruth],
                       order: list[int] | None, stack_rel: str | None) -> None:
    """SerialEM-style mdoc: sections in stack order when a stack exists, else in acquisition order."""
    n = cfg.effective_image_size_px()
    px = cfg.effective_pixel_size_a()
    nf = cfg.frames_per_movie
    n_sub = nf * cfg.eer_raw_per_frame if cfg.movie_format == "eer" else nf  # EER: raw frames
    idx = order if order is not None else list(range(len(views)))
    header = {"PixelSpacing": round(px, 4), "Voltage": int(round(cfg.voltage_kv)),
              "ImageFile": stack_rel or f"{plan.ts_id}.mrc", "ImageSize": (n, n), "DataMode": 2 if stack_rel else 6}
    sections = []
    for z, j in enumerate(idx):
        v = views[j]
        plan_v = plan.views[j]
        movie_name = Path(v.movie).name if v.movie else None
        sections.append({
            "ZValue": z,
            "TiltAngle": round(v.nominal_tilt_deg + 0.001, 5),
            "StagePosition": (round(20.79 + 0.01 * plan.ts_index, 4), round(155.28 - 0.02 * plan.ts_index, 4)),
            "StageZ": 163.8,
            "Magnification": int(round(cfg.magnification * cfg.scale)),
            "Intensity": 0.009,
            "ExposureDose": round(v.dose_e_per_a2, 4),
            "PixelSpacing": round(px, 4),
            "SpotSize": 8,
            "Defocus": round(-cfg.target_defocus_um + 0.05 * math.sin(z), 4),  # scope readout, not the truth
            "ImageShift": (round(plan_v.shift_xy_px[0] * px * 1e-4, 4), round(plan_v.shift_xy_px[1] * px * 1e-4, 4)),
            "RotationAngle": round(plan.tilt_axis_nominal_deg + 90.0, 2),
            "ExposureTime": round(0.2 * nf, 3),
            "Binning": 1,
            "CameraIndex": 0,
            "MagIndex": 31,
            "TargetDefocus": -cfg.target_defocus_um,
            "PriorRecordDose": round(v.accumulated_dose_e_per_a2 - v.dose_e_per_a2, 4),
            "SubFramePath": f"D:\\tomoforge\\{cfg.name}\\frames\\{movie_name}" if movie_name else None,
            "NumSubFrames": n_sub,
            "FrameDosesAndNumber": (round(v.dose_e_per_a2 / n_sub, 6), n_sub),
            "DateTime": plan_v.date_time,
        })
    stamp = format_mdoc_datetime(plan.views[0].date_time)
    write_mdoc(path, header, sections, titles=[f"SerialEM: tomoforge simulated Krios                 {stamp}    "],
               tilt_axis_deg=plan.tilt_axis_nominal_deg, crlf=True)


# ------------------------------------------------------------------------------------------- reading

def load_truth(path: str | Path) -> SimTruth:
    """Read ``truth/truth.json`` (or a session folder containing it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "truth" / "truth.json"
    try:
        return SimTruth.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise ParseError("no such truth file", path=path, expected="truth/truth.json of a simulated session") from None
    except ValidationError as err:
        first = err.errors()[0]
        raise ParseError(first["msg"], path=path, field=".".join(str(x) for x in first["loc"]),
                         expected=f"tomoforge truth schema v{SimTruth.model_fields['schema_version'].default}") from None


def session_path(truth_path: str | Path, rel: str) -> Path:
    """Absolute path of a file named in the truth (paths there are relative to the session folder)."""
    return Path(truth_path).resolve().parent.parent / rel


def stack_truth_xf(views: list) -> torch.Tensor:
    """True ``xf`` ``(v, 2, 3)`` of views as the written stack shows them.

    The truth's ``xf`` refers to frame 0, but the stack is the plain sum of drifting frames, so each view's
    content sits at its mean frame shift: the shift column is corrected by ``A @ mean_shift``."""
    xf = torch.tensor([v.xf for v in views], dtype=torch.float64)
    mean_shift = torch.tensor([[float(np.mean([f.shift_x_px for f in v.frames])),
                                float(np.mean([f.shift_y_px for f in v.frames]))] for v in views],
                              dtype=torch.float64)
    xf[:, :, 2] -= torch.einsum("vij,vj->vi", xf[:, :, :2], mean_shift)
    return xf


@dataclass
class SimStack:
    """A simulated tilt series's written stack with its truth, views in stack order (what alignment tests and
    benchmarks compare against)."""

    ts: TiltSeriesTruth
    images: torch.Tensor  # (v, h, w) float32
    pixel_size_a: float
    xf: torch.Tensor  # (v, 2, 3) true raw -> aligned as the stack shows it (stack_truth_xf)
    nominal_deg: torch.Tensor  # (v,) nominal tilt angles
    tilt_deg: torch.Tensor  # (v,) true tilt angles
    excluded: torch.Tensor  # (v,) bool


def read_sim_stack(truth_path: str | Path, series: int = 0) -> SimStack:
    """The stack of tilt series ``series`` (needs ``write_stack``) and its truth."""
    ts = load_truth(truth_path).tilt_series[series]
    if ts.stack is None:
        raise ParseError("no stack was written", path=truth_path, field="stack",
                         expected="a session simulated with write_stack=true")
    stack, px = read_mrc(session_path(truth_path, ts.stack))
    views = sorted(ts.views, key=lambda v: v.stack_section)
    return SimStack(ts=ts, images=torch.from_numpy(np.array(stack, dtype=np.float32)), pixel_size_a=px,
                    xf=stack_truth_xf(views),
                    nominal_deg=torch.tensor([v.nominal_tilt_deg for v in views], dtype=torch.float64),
                    tilt_deg=torch.tensor([v.tilt_deg for v in views], dtype=torch.float64),
                    excluded=torch.tensor([v.excluded for v in views]))


__all__ = ["load_truth", "make_config", "read_sim_stack", "session_path", "simulate_case", "stack_truth_xf",
           "SimStack", "list_cases", "CASES"]
