"""CTF estimation per view: tomoforge against teamtomo's torch-ctf-estimation, accuracy and time.

Two sets of views with known defocus:

- ``sim``: the simulator's ``particles`` case (1024-px field at 4 Å, 9 tilts to ±60°, 3 e/Å² per tilt),
  truth from ``truth.json``; tomoforge runs plain and tilt-aware, box 256.
- ``synth``: 4096² synthetic views at 1.35 Å/px (white specimen, torch_ctf CTF with astigmatism, noise),
  box 512: the speed goal is ≤ 1 s per such view on one core.

torch-ctf-estimation is run with one patch grid point (``defocus_grid_resolution=(1,1,1)``), the same band
and defocus range, and its own default rescaling target (3 Å/px) unless ``--peer-native``. The installed
torchvision (0.28) does not load with torch 2.13 and ``make setup`` does not install it (``operator torchvision::nms does not exist``), and the peer
imports it only for ``gaussian_blur``; this script puts a small torch stand-in for that one function in
place before importing the peer (the same separable Gaussian with reflect padding) and says so.

    .venv/bin/python benchmarks/bench_ctf.py [--threads 1] [--synth-views 3] [--sim-seed 0] [--skip-sim]
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tomoforge.core.ctf import FitSettings, Optics, estimate_ctf
from tomoforge.core.ctf.correct import correct_ctf_strips
from tomoforge.core.ctf.model import CtfParams


def _gaussian_blur(img: torch.Tensor, kernel_size, sigma) -> torch.Tensor:
    """torchvision.transforms.functional.gaussian_blur for (..., h, w), reflect padding."""
    k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
    s = float(sigma if not isinstance(sigma, list | tuple) else sigma[0])
    x = torch.arange(k, dtype=img.dtype) - (k - 1) / 2
    g = torch.exp(-0.5 * (x / s) ** 2)
    g = g / g.sum()
    shape = img.shape
    t = img.reshape(-1, 1, *shape[-2:])
    t = F.pad(t, (k // 2, k // 2, k // 2, k // 2), mode="reflect")
    t = F.conv2d(t, g.view(1, 1, 1, k))
    t = F.conv2d(t, g.view(1, 1, k, 1))
    return t.reshape(shape)


def _import_peer():
    try:
        import torch_ctf_estimation  # noqa: F401
        shim = False
    except (RuntimeError, ImportError):  # torchvision broken, or not installed (make setup leaves it out)
        for name in [m for m in sys.modules if m.startswith("torchvision") or m.startswith("torch_ctf_estimation")]:
            del sys.modules[name]
        tv = types.ModuleType("torchvision")
        tr = types.ModuleType("torchvision.transforms")
        fn = types.ModuleType("torchvision.transforms.functional")
        fn.gaussian_blur = _gaussian_blur
        tv.transforms, tr.functional = tr, fn
        sys.modules.update({"torchvision": tv, "torchvision.transforms": tr, "torchvision.transforms.functional": fn})
        shim = True
    from torch_ctf_estimation import CTFFittingParams, OpticalParams
    from torch_ctf_estimation import estimate_ctf as peer_estimate

    return peer_estimate, OpticalParams, CTFFittingParams, shim


def _peer_fit(peer, img, px, optics, band, df_range_a, box, native):
    estimate, OpticalParams, CTFFittingParams = peer
    op = OpticalParams(pixel_spacing_angstroms=px, voltage_kev=optics.voltage_kv, spherical_aberration_mm=optics.cs_mm,
                       amplitude_contrast_fraction=optics.amplitude_contrast,
                       **({"target_pixel_spacing_angstroms": px} if native else {}))
    fp = CTFFittingParams(defocus_grid_resolution=(1, 1, 1), frequency_fit_range_angstroms=band,
                          defocus_range_microns=(df_range_a[0] / 1e4, df_range_a[1] / 1e4), patch_sidelength=box)
    _, r1, r2 = estimate(img, op, fp, device=torch.device("cpu"))
    u, v = r2.defocus_u, r2.defocus_v
    if u is None:
        d = float(r1.ctf_model.defocus_um)
        u = v = d
    return 1e4 * float(u), 1e4 * float(v), float(r2.astigmatism_angle or 0.0)


def _synth_view(n, px, du, dv, angle, seed, snr=0.1):
    g = torch.Generator().manual_seed(seed)
    spec = torch.randn(n, n, generator=g)
    ky = torch.fft.fftfreq(n, d=px)
    kx = torch.fft.rfftfreq(n, d=px)
    damp = torch.exp(-100.0 * (ky[:, None] ** 2 + kx[None] ** 2) / 4)
    spec = torch.fft.irfft2(torch.fft.rfft2(spec) * damp, s=(n, n))
    img = correct_ctf_strips(spec, CtfParams(du, dv, angle), px, Optics(), 0.0, mode="multiply")
    img = img / img.std()
    return img + torch.randn(n, n, generator=g) / math.sqrt(snr)


def _row(name, errs, times, astig_errs=None):
    e = sorted(errs)
    p90 = e[max(0, math.ceil(0.9 * len(e)) - 1)]
    a = f"{statistics.median(astig_errs):8.0f}" if astig_errs else "       -"
    print(f"{name:34s} {len(e):3d} {statistics.median(e):9.0f} {p90:9.0f} {a} {statistics.mean(times):8.3f}")
    return statistics.median(e), statistics.mean(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--synth-views", type=int, default=3)
    ap.add_argument("--sim-seed", type=int, default=0)
    ap.add_argument("--skip-sim", action="store_true")
    ap.add_argument("--peer-native", action="store_true", help="peer fits at the native pixel size (no rescale)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    *peer_fns, shim = _import_peer()
    if shim:
        print("note: torchvision does not load with this torch; torch-ctf-estimation runs with a torch stand-in "
              "for torchvision's gaussian_blur")
    print(f"torch threads: {torch.get_num_threads()}")
    found = [name for name in ("ctffind", "ctffind4", "ctffind5") if shutil.which(name)]
    print(f"CTFFIND: {'found ' + found[0] + ' (not timed by this script)' if found else 'not on this machine'}")
    header = f"{'method':34s} {'n':>3s} {'med|Δdf|Å':>9s} {'p90|Δdf|Å':>9s} {'med|Δast|':>8s} {'s/view':>8s}"

    if not args.skip_sim:
        import mrcfile

        from tomoforge.io.sim_session import load_truth, simulate_case

        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            truth_path = simulate_case("particles", Path(tmp), seed=args.sim_seed, overrides={
                "n_tilt_series": 1, "movie_format": "none", "write_stack": True, "frames_per_movie": 1,
                "image_size_px": 1024, "tilt_scheme": "custom",
                "custom_tilts_deg": "0,15,-15,30,-30,45,-45,60,-60"})
            ts = load_truth(truth_path).tilt_series[0]
            stack = torch.from_numpy(mrcfile.read(Path(tmp) / ts.stack).astype("float32"))
            print(f"\nsimulated particles 1024 px @ {ts.acquisition.pixel_size_a} Å, seed {args.sim_seed} "
                  f"({time.perf_counter() - t0:.0f} s); band 30-8.5 Å, box 256")
            a = ts.acquisition
            optics = Optics(a.voltage_kv, a.cs_mm, a.amplitude_contrast)
            settings = FitSettings(resolution_min_a=30.0, resolution_max_a=8.5, defocus_min_a=5000.0,
                                   defocus_max_a=60000.0)
            res = {k: ([], [], []) for k in ("tf_plain", "tf_aware", "peer")}
            for v in ts.views:
                img = stack[v.stack_section]
                true = 0.5 * (v.defocus_u_a + v.defocus_v_a)
                for key, aware in (("tf_plain", False), ("tf_aware", True)):
                    t = time.perf_counter()
                    f = estimate_ctf(img, a.pixel_size_a, optics, settings, box=256, tilt_deg=v.tilt_deg,
                                     tilt_axis_deg=v.tilt_axis_deg, tilt_aware=aware, handedness=a.defocus_handedness)
                    res[key][1].append(time.perf_counter() - t)
                    res[key][0].append(abs(f.params.defocus_mean_a - true))
                t = time.perf_counter()
                u, w, _ = _peer_fit(peer_fns, img, a.pixel_size_a, optics, (30.0, 8.5), (5000.0, 60000.0), 256,
                                    args.peer_native)
                res["peer"][1].append(time.perf_counter() - t)
                res["peer"][0].append(abs(0.5 * (u + w) - true))
            print(header)
            m_p, t_p = _row("tomoforge plain", *res["tf_plain"][:2])
            m_a, t_a = _row("tomoforge tilt-aware", *res["tf_aware"][:2])
            m_q, t_q = _row("torch-ctf-estimation", *res["peer"][:2])
            print(f"ratios (peer / tomoforge tilt-aware): error {m_q / max(m_a, 1e-9):.2f}x, "
                  f"time {t_q / max(t_a, 1e-9):.2f}x")

    n, px = 4096, 1.35
    print(f"\nsynthetic {n}² @ {px} Å, band 30-5 Å, box 512, astigmatism 800 Å")
    settings = FitSettings(resolution_min_a=30.0, resolution_max_a=5.0, defocus_min_a=5000.0, defocus_max_a=50000.0)
    rng = np.random.default_rng(1)
    tf, tf_ast, tf_t, pe, pe_t = [], [], [], [], []
    for k in range(args.synth_views):
        dfm, ang = float(rng.uniform(15000, 45000)), float(rng.uniform(-90, 90))
        img = _synth_view(n, px, dfm + 400, dfm - 400, ang, seed=k)
        t = time.perf_counter()
        f = estimate_ctf(img, px, Optics(), settings, box=512, overlap=0.5)
        tf_t.append(time.perf_counter() - t)
        tf.append(abs(f.params.defocus_mean_a - dfm))
        tf_ast.append(abs(f.params.astigmatism_a - 800.0))
        t = time.perf_counter()
        u, w, _ = _peer_fit(peer_fns, img, px, Optics(), (30.0, 5.0), (5000.0, 50000.0), 512, args.peer_native)
        pe_t.append(time.perf_counter() - t)
        pe.append(abs(0.5 * (u + w) - dfm))
    print(header)
    m_a, t_a = _row("tomoforge", tf, tf_t, tf_ast)
    m_q, t_q = _row("torch-ctf-estimation", pe, pe_t)
    print(f"ratios (peer / tomoforge): error {m_q / max(m_a, 1e-9):.2f}x, time {t_q / max(t_a, 1e-9):.2f}x; "
          f"speed goal 1 s/view: {'met' if t_a <= 1.0 else 'NOT met'} ({t_a:.2f} s)")


if __name__ == "__main__":
    main()
