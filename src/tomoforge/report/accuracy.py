"""Accuracy of a project's results against the simulator's ground truth (docs/simulator.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tomoforge.core.sim.truth import SimTruth
from tomoforge.report.collect import SeriesView


def load_truth(path: Path) -> SimTruth:
    return SimTruth.model_validate_json(Path(path).read_text())


def shift_error_px(est, true, tilt_deg) -> float:
    """RMS difference of where two sets of .xf put the raw image centre in the aligned frame, after removing
    what a 3D translation of the specimen explains (x: a cos t + b sin t, y: constant), which no alignment can
    determine."""
    d = (est[:, :, 2] - true[:, :, 2]).numpy()
    t = np.deg2rad(np.asarray(tilt_deg, dtype=float))
    basis = np.stack([np.cos(t), np.sin(t)], 1)
    coef, *_ = np.linalg.lstsq(basis, d[:, 0], rcond=None)
    rx = d[:, 0] - basis @ coef
    ry = d[:, 1] - d[:, 1].mean()
    return float(np.sqrt(np.mean(rx ** 2 + ry ** 2)))


def _motion_rows(project, view: SeriesView, tt) -> list[list]:
    rows = view.extras.get("MotionShifts")
    if not rows or not tt.views or not tt.views[0].frames:
        return []
    import json

    rec = json.loads(project.resolve(rows[-1][1].uri).read_text())
    errs = []
    for est, truth_view in zip(rec["shifts_xy_px"], sorted(tt.views, key=lambda v: v.acquisition_order),
                               strict=False):
        true = np.array([[f.shift_x_px, f.shift_y_px] for f in truth_view.frames])
        est = np.asarray(est, dtype=float)
        if est.shape != true.shape:
            continue
        d = (est - est.mean(0)) - (true - true.mean(0))
        errs.append(float(np.sqrt((d ** 2).sum(1).mean())))
    if not errs:
        return []
    return [["frame drift error (px RMS)", float(np.median(errs)), f"median over {len(errs)} movies; "
             f"worst {max(errs):.2f} px"]]


def accuracy_rows(truth_path: Path, view: SeriesView, project=None) -> list[list]:
    truth = load_truth(truth_path)
    try:
        tt = truth.series(view.ts_id)
    except KeyError:
        return []
    by_order = {v.acquisition_order: v for v in tt.views}
    rows: list[list] = _motion_rows(project, view, tt) if project is not None else []
    final = view.records[-1][1]
    truth_bad = {v.acquisition_order for v in tt.views if v.dark or v.excluded}
    found = {im.acquisition_order for im in final.images if im.excluded}
    if truth_bad or found:
        rows.append(["excluded views", f"{len(found & truth_bad)}/{len(truth_bad)} bad views found",
                     f"{len(found - truth_bad)} good views excluded"])
    ctf_ts = view.latest(lambda t: any(im.ctf is not None for im in t.images))
    if ctf_ts is not None:
        err = [abs(im.ctf.defocus_mean_a - 0.5 * (by_order[im.acquisition_order].defocus_u_a +
                                                    by_order[im.acquisition_order].defocus_v_a)) / 10
               for im in ctf_ts.images if im.ctf is not None and not im.excluded and im.acquisition_order in by_order]
        if err:
            rows.append(["defocus error (nm)", float(np.median(err)), f"median; 90th percentile {np.percentile(err, 90):.0f} nm"])
    ali = view.latest(lambda t: any(im.transform is not None for im in t.images))
    if ali is not None:
        import torch

        from tomoforge.core import geometry as g

        ims = [im for im in ali.images if im.transform is not None and not im.excluded]
        est = torch.tensor([im.transform.as_rows() for im in ims], dtype=torch.float64)
        true = torch.tensor([by_order[im.acquisition_order].xf for im in ims], dtype=torch.float64)
        axis_err = (g.xf_rotation_deg(est) - g.xf_rotation_deg(true) + 180) % 360 - 180
        rows.append(["tilt axis error (°)", float(axis_err.abs().mean()), "mean over views"])
        rows.append(["shift error (px RMS)", shift_error_px(est, true, [im.tilt_angle_deg for im in ims]),
                     "after removing a global 3D translation of the specimen"])
        tilt_err = [abs(im.tilt_angle_deg - by_order[im.acquisition_order].tilt_deg) for im in ims]
        rows.append(["tilt angle error (°)", float(np.mean(tilt_err)), "mean |refined - true|"])
    return rows
