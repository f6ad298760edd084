"""Motion correction per movie: tomoforge against teamtomo's torch-motion-correction on the same frames.

Simulates the ``hiv-small`` case (or reuses ``--session``), gain-corrects each tilt movie, and times, per
movie, (a) tomoforge's full-frame alignment plus the corrected sum and (b) torch-motion-correction's
``estimate_global_motion`` plus ``correct_motion`` and a sum. Accuracy is the RMS distance of the recovered
per-frame shifts from the simulator's truth (after removing the mean: only relative shifts are defined),
and the correlation of each sum with the noise-free image. Prints a table and the time ratio.

    .venv/bin/python benchmarks/bench_motion.py [--session DIR] [--views N] [--threads T]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tomoforge.core.motion import apply_gain, estimate_global_shifts, estimate_patch_motion, sum_frames
from tomoforge.io.movie import read_gain_reference, read_movie
from tomoforge.io.mrc import read_mrc
from tomoforge.io.sim_session import load_truth, session_path, simulate_case


def _rms(est: np.ndarray, true: np.ndarray) -> float:
    e = (est - est.mean(0)) - (true - true.mean(0))
    return float(np.sqrt((e ** 2).sum(-1).mean()))


def _corr(a, b, crop: int = 16) -> float:
    a = np.asarray(a)[crop:-crop, crop:-crop].ravel()
    b = np.asarray(b)[crop:-crop, crop:-crop].ravel()
    return float(np.corrcoef(a, b)[0, 1])


def _teamtomo(frames: torch.Tensor, px: float):
    from torch_motion_correction import DeformationField, correct_motion, estimate_global_motion

    field = estimate_global_motion(frames, pixel_spacing=px)
    shifts = field.data[:, :, 0, 0].T / px  # (t, 2) (y, x) pixels, relative to the middle frame
    # Re-reference to frame 0 (as tomoforge and the noise-free image are), so the sums are comparable.
    field = DeformationField.from_frame_shifts(shifts - shifts[0], pixel_spacing=px)
    corrected = correct_motion(frames, field, pixel_spacing=px)
    return shifts.numpy(), corrected.sum(0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--session", type=Path, help="an existing simulated hiv-small session (else one is made)")
    ap.add_argument("--case", default="hiv-small")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--views", type=int, default=0, help="only the first N views (0: all)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    ap.add_argument("--patches", action="store_true", help="also time tomoforge's patch model (5x5)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    tmp = None
    if args.session is None:
        tmp = tempfile.TemporaryDirectory()
        t0 = time.perf_counter()
        truth_path = simulate_case(args.case, Path(tmp.name), seed=args.seed,
                                   overrides={"write_noise_free": True})  # the sums are scored against it
        print(f"simulated {args.case} (seed {args.seed}) in {time.perf_counter() - t0:.1f} s")
    else:
        truth_path = args.session / "truth" / "truth.json"
    truth = load_truth(truth_path)
    ts = truth.tilt_series[0]
    px = ts.acquisition.pixel_size_a
    gain = torch.from_numpy(np.array(read_gain_reference(session_path(truth_path, truth.gain_reference))))
    clean = None
    if ts.noise_free_stack:
        clean, _ = read_mrc(session_path(truth_path, ts.noise_free_stack))
    views = ts.views[: args.views] if args.views else ts.views

    rows = []
    print(f"{'view':>4} {'tilt':>6} {'frames':>6} {'tf s':>7} {'tt s':>7} {'ratio':>6} {'tf rms px':>9} "
          f"{'tt rms px':>9} {'tf cc':>6} {'tt cc':>6}" + (f" {'patch s':>7} {'patch cc':>8}" if args.patches else ""))
    for k, view in enumerate(views):
        if view.dark:
            continue
        frames = apply_gain(torch.from_numpy(np.array(read_movie(session_path(truth_path, view.movie)))), gain)
        true = np.array([[f.shift_y_px, f.shift_x_px] for f in view.frames])

        t0 = time.perf_counter()
        est = estimate_global_shifts(frames, pixel_size_a=px)
        ours = sum_frames(frames, shifts=est).total
        t_ours = time.perf_counter() - t0

        t0 = time.perf_counter()
        tt_shifts, tt_sum = _teamtomo(frames, px)
        t_tt = time.perf_counter() - t0

        row = {"view": k, "tilt": view.nominal_tilt_deg, "n": frames.shape[0], "t_ours": t_ours, "t_tt": t_tt,
               "rms_ours": _rms(est.numpy(), true), "rms_tt": _rms(tt_shifts, true),
               "cc_ours": _corr(ours, clean[k]) if clean is not None else float("nan"),
               "cc_tt": _corr(tt_sum, clean[k]) if clean is not None else float("nan")}
        line = (f"{k:>4} {view.nominal_tilt_deg:>6.1f} {row['n']:>6} {t_ours:>7.3f} {t_tt:>7.3f} "
                f"{t_ours / t_tt:>6.2f} {row['rms_ours']:>9.3f} {row['rms_tt']:>9.3f} {row['cc_ours']:>6.3f} "
                f"{row['cc_tt']:>6.3f}")
        if args.patches:
            t0 = time.perf_counter()
            model = estimate_patch_motion(frames, est, pixel_size_a=px)
            psum = sum_frames(frames, deformation=model).total
            row["t_patch"] = time.perf_counter() - t0 + t_ours
            row["cc_patch"] = _corr(psum, clean[k]) if clean is not None else float("nan")
            line += f" {row['t_patch']:>7.3f} {row['cc_patch']:>8.3f}"
        rows.append(row)
        print(line, flush=True)

    def mean(key: str) -> float:
        return float(np.mean([r[key] for r in rows]))

    print()
    print(f"movies: {len(rows)}  frame size: {tuple(frames.shape[1:])}  pixel {px:.2f} Å  threads "
          f"{torch.get_num_threads()}")
    print(f"time per movie: tomoforge {mean('t_ours'):.3f} s, torch-motion-correction {mean('t_tt'):.3f} s, "
          f"ratio tomoforge/teamtomo {mean('t_ours') / mean('t_tt'):.2f}")
    rms_o = float(np.sqrt(np.mean([r["rms_ours"] ** 2 for r in rows])))
    rms_t = float(np.sqrt(np.mean([r["rms_tt"] ** 2 for r in rows])))
    print(f"drift RMS error vs truth: tomoforge {rms_o:.3f} px, torch-motion-correction {rms_t:.3f} px")
    med_o, med_t = np.median([r["rms_ours"] for r in rows]), np.median([r["rms_tt"] for r in rows])
    fail_o, fail_t = sum(r["rms_ours"] > 1 for r in rows), sum(r["rms_tt"] > 1 for r in rows)
    print(f"median per-movie RMS error: tomoforge {med_o:.3f} px, torch-motion-correction {med_t:.3f} px; "
          f"movies off by more than 1 px: {fail_o} and {fail_t}")
    print(f"mean correlation of the sum with the noise-free image: tomoforge {mean('cc_ours'):.4f}, "
          f"torch-motion-correction {mean('cc_tt'):.4f}")
    if args.patches:
        print(f"tomoforge patch model: {mean('t_patch'):.3f} s per movie, sum correlation {mean('cc_patch'):.4f}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
