"""Alignment benchmark: coarse alignment beside teamtomo's torch-tiltxcorr, and the full fiducial alignment
(align-coarse's default, bead tracking, the solve) of the simulator's ``hiv-small`` case (target: < 60 s on
2 cores).

Run: ``.venv/bin/python benchmarks/bench_align.py [--cases tiny:2,tiny:3,hiv-small:1] [--workdir DIR]``.
Errors are per-view shift RMS (px) against the simulator's truth after removing a 3D translation of the
specimen (which only moves the tomogram); the truth is corrected for the stack being a plain sum of drifting
frames. Ratios are tomoforge / torch-tiltxcorr (time: < 1 is faster; error: < 1 is more accurate).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from tomoforge.core.align.coarse import align_coarse
from tomoforge.core.align.prealign import prealign
from tomoforge.core.align.solve import solve_alignment
from tomoforge.core.align.tracking import track_beads
from tomoforge.core.geometry import xf_from_parameters
from tomoforge.io.sim_session import read_sim_stack, simulate_case


def shift_error_rms(est_xf, true_xf, tilt_deg, views) -> float:
    d = (est_xf[:, :, 2] - true_xf[:, :, 2])[views]
    t = torch.deg2rad(tilt_deg)[views]
    basis = torch.stack([torch.cos(t), torch.sin(t)], 1)
    coef = torch.linalg.lstsq(basis, d[:, 0:1]).solution
    ex = d[:, 0] - (basis @ coef)[:, 0]
    ey = d[:, 1] - d[:, 1].mean()
    return float((ex ** 2 + ey ** 2).mean().sqrt())


def load_case(root: Path, case: str, seed: int):
    overrides = {"write_stack": True, "movie_format": "none"}
    if case == "tiny":
        overrides["image_size_px"] = 192
    path = simulate_case(case, root / f"{case}_{seed}", seed=seed, overrides=overrides)
    return read_sim_stack(path)


def peer_coarse(c):
    from torch_tiltxcorr import tiltxcorr

    psi = c.ts.acquisition.tilt_axis_nominal_deg
    keep = ~c.excluded
    sh = tiltxcorr(c.images[keep], c.nominal_deg[keep].float(), psi, pixel_spacing_angstroms=c.pixel_size_a,
                   lowpass_angstroms=c.pixel_size_a / 0.3)
    # torch-tiltxcorr returns (y, x) shifts to apply to each image; in the .xf sense d = R(-psi) @ shift
    xf0 = xf_from_parameters(torch.full((int(keep.sum()),), psi, dtype=torch.float64))
    d = torch.einsum("vij,vj->vi", xf0[:, :, :2], sh.flip(-1).double())
    xf = xf_from_parameters(torch.full((len(keep),), psi, dtype=torch.float64))
    xf[keep, :, 2] = d
    return xf


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="tiny:2,tiny:3,hiv-small:1,hiv-small:2,lamella:1,lamella:2")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    root = Path(args.workdir or tempfile.mkdtemp(prefix="bench_align_"))
    rows = []
    for item in args.cases.split(","):
        case, seed = item.split(":")
        c = load_case(root, case, int(seed))
        keep = ~c.excluded
        psi = c.ts.acquisition.tilt_axis_nominal_deg
        t0 = time.perf_counter()
        xcorr = align_coarse(c.images, c.nominal_deg, psi, skip=c.excluded)
        t_xcorr = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours = prealign(c.images, c.nominal_deg, psi, skip=c.excluded)
        t_ours = time.perf_counter() - t0
        e_xcorr = shift_error_rms(xcorr.xf, c.xf, c.tilt_deg, keep)
        t0 = time.perf_counter()
        theirs = peer_coarse(c)
        t_peer = time.perf_counter() - t0
        e_ours = shift_error_rms(ours.xf, c.xf, c.tilt_deg, keep)
        e_peer = shift_error_rms(theirs, c.xf, c.tilt_deg, keep)
        full = ""
        if c.ts.beads:
            # as the default `align` step does: align-coarse's default, bead tracking, the solve
            t0 = time.perf_counter()
            diam = c.ts.beads[0].radius_a * 2 / c.pixel_size_a
            tr = track_beads(c.images, c.nominal_deg, ours.xf, diam, skip=c.excluded)
            sol = solve_alignment(tr.positions_xy, c.nominal_deg, tuple(c.images.shape[-2:]), psi)
            t_full = t_ours + time.perf_counter() - t0
            full = (f"{t_full:7.1f} s  axis err {float(sol.tilt_axis_deg[0]) - c.ts.acquisition.tilt_axis_deg:+.3f}°"
                    f"  shift {shift_error_rms(sol.xf, c.xf, c.tilt_deg, keep):.2f} px"
                    f"  resid {sol.residual_mean_px:.2f} px")
        rows.append((f"{case}:{seed}", tuple(c.images.shape), e_xcorr, t_xcorr, e_ours, e_peer, t_ours,
                     t_peer, full))
    print("coarse step: 'xcorr' = tomoforge's pairwise neighbour correlation alone; 'ours' = align-coarse's "
          "default (pairwise and cumulative chains, each refined by projection matching, the one agreeing better "
          "with reprojections kept); peer = torch-tiltxcorr")
    print(f"{'case':12s} {'stack':16s} {'err xcorr':>9s} {'t xcorr':>7s} {'err ours':>9s} {'err peer':>9s} "
          f"{'ratio':>6s} {'t ours':>7s} {'t peer':>7s} {'ratio':>6s}  full fiducial alignment")
    for name, shape, ex, tx, eo, ep, to, tp, full in rows:
        print(f"{name:12s} {str(shape):16s} {ex:9.2f} {tx:7.2f} {eo:9.2f} {ep:9.2f} {eo / ep:6.2f} {to:7.2f} "
              f"{tp:7.2f} {to / tp:6.2f}  {full}")


if __name__ == "__main__":
    main()
