"""Benchmark: tomogram reconstruction, tomoforge vs installed peers, on one aligned synthetic stack.

Usage:
    python benchmarks/bench_reconstruct.py            # 41 x 1024^2 -> 1024^2 x 300 (slow on 2 cores)
    python benchmarks/bench_reconstruct.py --small    # 41 x 256^2 -> 256^2 x 80
    python benchmarks/bench_reconstruct.py --memory   # peak RSS of a 2k x 2k x 500 WBP streamed to disk

The phantom is a set of Gaussian blobs whose projections are computed analytically (not with any of the
compared projectors). Every method gets the same aligned stack (tilt axis along Y, no shifts); correlation
is against the truth volume after a low-pass at 0.25 cycles/voxel. Peers whose output axes differ from
tomoforge's (X, Y, Z) are matched once by trying the 8 axis flips/transposes of the X-Z plane and keeping
the best (stated in the table). scikit-image works slice by slice; when slow it is run on a subset of Y
slices and its time extrapolated (stated). Voxel updates/s = voxels x views / seconds.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tomoforge.core.geometry import xf_from_parameters
from tomoforge.core.reconstruct import reconstruct_wbp
from tomoforge.core.reconstruct.sirt import reconstruct_sirt


# ------------------------------------------------------------------------------------------ phantom
def make_phantom(vol_shape, n_blobs, seed=0):
    g = torch.Generator().manual_seed(seed)
    d, h, w = vol_shape
    half = torch.tensor([w / 2 - 8, h / 2 - 8, d / 2 - 6], dtype=torch.float64)
    centres = (torch.rand(n_blobs, 3, generator=g, dtype=torch.float64) * 2 - 1) * half
    sig = 1.5 + 2.5 * torch.rand(n_blobs, generator=g, dtype=torch.float64)
    amp = 0.5 + torch.rand(n_blobs, generator=g, dtype=torch.float64)
    return centres, sig, amp


def _splat(out: torch.Tensor, centres: torch.Tensor, sig, amp, radius: int):
    """Add Gaussians into ``out`` (any dims) around ``centres`` (n, ndim) given in array-index order."""
    nd = out.dim()
    offs = torch.stack(torch.meshgrid(*(torch.arange(-radius, radius + 1),) * nd, indexing="ij"), -1)
    offs = offs.reshape(-1, nd)
    for chunk in range(0, centres.shape[0], 256):
        c = centres[chunk:chunk + 256]
        base = c.round().long()
        idx = base[:, None, :] + offs[None]  # (n, k, nd)
        dist2 = ((idx.double() - c[:, None, :]) ** 2).sum(-1)
        s = sig[chunk:chunk + 256, None]
        val = amp[chunk:chunk + 256, None] * torch.exp(-dist2 / (2 * s * s))
        ok = ((idx >= 0) & (idx < torch.tensor(out.shape))).all(-1)
        flat = torch.zeros(idx.shape[:2], dtype=torch.long)
        stride = 1
        for k in range(nd - 1, -1, -1):
            flat += idx[..., k].clamp(0, out.shape[k] - 1) * stride
            stride *= out.shape[k]
        out.view(-1).index_add_(0, flat[ok], val[ok].to(out.dtype))


def render_truth(vol_shape, centres, sig, amp):
    d, h, w = vol_shape
    vol = torch.zeros(vol_shape, dtype=torch.float32)
    zyx = torch.stack([centres[:, 2] + (d - 1) / 2, centres[:, 1] + (h - 1) / 2, centres[:, 0] + (w - 1) / 2], -1)
    _splat(vol, zyx, sig, amp, radius=10)
    return vol


def project(vol_shape, img_shape, tilts_deg, centres, sig, amp):
    """Aligned views (v, H, W): exact Gaussian line integrals at x = X cos + Z sin, y = Y."""
    hh, ww = img_shape
    out = torch.zeros((len(tilts_deg),) + tuple(img_shape), dtype=torch.float32)
    line = amp * math.sqrt(2 * math.pi) * sig
    for i, t in enumerate(tilts_deg.tolist()):
        tr = math.radians(t)
        x = centres[:, 0] * math.cos(tr) + centres[:, 2] * math.sin(tr) + (ww - 1) / 2
        y = centres[:, 1] + (hh - 1) / 2
        _splat(out[i], torch.stack([y, x], -1), sig, line, radius=10)
    return out


def lowpass(vol: torch.Tensor, cutoff: float = 0.25) -> torch.Tensor:
    spec = torch.fft.rfftn(vol.float())
    kz = torch.fft.fftfreq(vol.shape[0])[:, None, None]
    ky = torch.fft.fftfreq(vol.shape[1])[None, :, None]
    kx = torch.fft.rfftfreq(vol.shape[2])[None, None, :]
    spec *= (kz**2 + ky**2 + kx**2) <= cutoff**2
    return torch.fft.irfftn(spec, s=vol.shape)


def corr(a, b) -> float:
    a = a.double().flatten()
    b = b.double().flatten()
    a = a - a.mean()
    b = b - b.mean()
    return float(a @ b / (a.norm() * b.norm()))


def best_orientation(rec_xz: torch.Tensor, truth_xz: torch.Tensor):
    """Among flips/transposes of a (z, x) slice stack, the one matching truth best: returns a function."""
    cands = {
        "as is": lambda v: v,
        "flip z": lambda v: v.flip(0),
        "flip x": lambda v: v.flip(-1),
        "flip z,x": lambda v: v.flip(0).flip(-1),
    }
    scores = {k: corr(f(rec_xz), truth_xz) for k, f in cands.items() if f(rec_xz).shape == truth_xz.shape}
    name = max(scores, key=scores.get)
    return name, cands[name]


# -------------------------------------------------------------------------------------------- peers
def run_skimage(stack, tilts, vol_shape, sirt: bool, max_slices: int):
    from skimage.transform import iradon, iradon_sart

    d, h, w = vol_shape
    n = min(h, max_slices)  # a contiguous central block, so a 3D low-pass means the same as elsewhere
    rows = np.arange(h // 2 - n // 2, h // 2 - n // 2 + n)
    out = np.zeros((d, len(rows), w), dtype=np.float32)
    t0 = time.perf_counter()
    theta = tilts.numpy().astype(np.float64)
    for k, y in enumerate(rows):
        sino = stack[:, y, :].numpy().T.astype(np.float64)  # (w, v)
        if sirt:
            rec = iradon_sart(sino, theta=theta)
        else:
            rec = iradon(sino, theta=theta, filter_name="ramp", circle=False, output_size=w)
        z0 = (rec.shape[0] - d) // 2
        out[:, k, :] = rec[z0:z0 + d, :]
    dt = time.perf_counter() - t0
    return torch.from_numpy(out), rows, dt * h / len(rows)


def run_teamtomo(stack, tilts, vol_shape, tmpdir, rows: int):
    """Reconstructs the central ``rows`` Y rows (its volume is centred on the images); time extrapolated."""
    import mrcfile
    from torch_reconstruct_tomogram import reconstruct_tomogram
    from torch_tilt_series import TiltSeries

    path = Path(tmpdir) / "aligned.mrc"
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(stack.numpy().astype(np.float32))
    v = len(tilts)
    ts = TiltSeries(tilt_angles=tilts.double(), tilt_axis_angle=torch.zeros(v, dtype=torch.float64),
                    sample_translations=torch.zeros(v, 2, dtype=torch.float64), image_path=path,
                    image_indices=torch.arange(v), pixel_spacing=1.0)
    d, h, w = vol_shape
    rows = min(rows, h)
    t0 = time.perf_counter()
    rec = reconstruct_tomogram(ts, volume_shape=(d, rows, w), sidelength=64)
    y0 = h // 2 - rows // 2  # its centre is size // 2
    return rec.float(), y0, (time.perf_counter() - t0) * h / rows


def rotate_stack(stack: torch.Tensor, axis_deg: float) -> torch.Tensor:
    """Raw views whose tilt axis sits at ``axis_deg``: the aligned views rotated by the inverse xf (cubic,
    once, outside the timing); the benchmark then reconstructs them through the rotated xf."""
    import torch.nn.functional as F

    v, h, w = stack.shape
    xf = xf_from_parameters(torch.full((v,), axis_deg, dtype=torch.float64))
    # raw(p) = aligned(A (p - c) + c): grid_sample the aligned views at A (p - c) + c.
    a = xf[0, :, :2].float()
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    c = torch.tensor([(w - 1) / 2, (h - 1) / 2])
    p = torch.stack([xs, ys], -1) - c
    q = p @ a.T + c
    grid = torch.stack([(2 * q[..., 0] + 1) / w - 1, (2 * q[..., 1] + 1) / h - 1], -1)
    return F.grid_sample(stack[:, None], grid.expand(v, h, w, 2), mode="bicubic", align_corners=False)[:, 0]


def reconstruct_wbp_rows(stack, tilts, xf, vol_shape, y0, y1, keep):
    """WBP of output rows ``y0:y1`` only (same filter and projector as reconstruct_wbp)."""
    from tomoforge.core.reconstruct.projector import backproject_slab, voxel_to_raw_affine
    from tomoforge.core.reconstruct.weighting import filter_views

    filtered = filter_views(stack, xf, tilts, thickness_vox=vol_shape[0])
    aff = voxel_to_raw_affine(tilts, xf, tuple(stack.shape[-2:]), vol_shape)
    step = max(1, (128 << 20) // (vol_shape[0] * vol_shape[2] * 12))
    for a in range(y0, y1, step):
        b = min(y1, a + step)
        keep(a, b, backproject_slab(filtered, aff, vol_shape, a, b))


# --------------------------------------------------------------------------------------------- main
def compare(args):
    if args.small:
        n_views, img, depth, n_blobs = 41, 256, 80, 600
    else:
        n_views, img, depth, n_blobs = 41, 1024, 300, 8000
    vol_shape = (depth, img, img)
    tilts = torch.linspace(-60, 60, n_views, dtype=torch.float64)
    centres, sig, amp = make_phantom(vol_shape, n_blobs)
    t0 = time.perf_counter()
    truth = render_truth(vol_shape, centres, sig, amp)
    stack = project(vol_shape, (img, img), tilts, centres, sig, amp)
    print(f"# phantom {n_blobs} blobs, stack {tuple(stack.shape)}, volume {vol_shape}, "
          f"{torch.get_num_threads()} torch threads, built in {time.perf_counter() - t0:.1f} s", flush=True)
    xf = xf_from_parameters(torch.zeros(n_views, dtype=torch.float64))
    truth_lp = lowpass(truth)
    vox_updates = math.prod(vol_shape) * n_views
    rows = []

    def record(name, rec, seconds, note=""):
        c = corr(lowpass(rec), truth_lp)
        rows.append((name, seconds, c, note))
        print(f"  {name:34s} {seconds:9.2f} s  corr {c:.3f} {note}", flush=True)

    # Warm-up (library loading, FFT plans, thread pools) on a tiny problem, outside the timing.
    reconstruct_wbp(stack[:, :32, :32], tilts, xf, (8, 32, 32))
    reconstruct_sirt(stack[:, :32, :32], tilts, xf, (8, 32, 32), iterations=1)
    t = time.perf_counter()
    rec = reconstruct_wbp(stack, tilts, xf, vol_shape)
    record("tomoforge WBP (ramp)", rec, time.perf_counter() - t)
    wbp_rec = rec  # kept to compare on the same rows as peers that only did a block

    def same_rows_note(y0: int, n: int) -> str:
        c_ours = corr(lowpass(wbp_rec[:, y0:y0 + n]), lowpass(truth[:, y0:y0 + n]))
        return f"tomoforge WBP on the same rows: corr {c_ours:.3f}"
    # The same stack given as raw views with a rotated .xf: the general 2D single-interpolation path.
    rot = 85.0
    raw = rotate_stack(stack, rot)
    xf_rot = xf_from_parameters(torch.full((n_views,), rot, dtype=torch.float64))
    rows_2d = max(1, img // args.raw_fraction)
    t = time.perf_counter()
    part = torch.zeros((depth, rows_2d, img))
    y_mid = img // 2 - rows_2d // 2

    def keep(y0, y1, slab):
        part[:, y0 - y_mid:y1 - y_mid] = slab
    reconstruct_wbp_rows(raw, tilts, xf_rot, vol_shape, y_mid, y_mid + rows_2d, keep)
    dt = (time.perf_counter() - t) * img / rows_2d
    c = corr(lowpass(part), truth_lp if rows_2d == img else lowpass(truth[:, y_mid:y_mid + rows_2d]))
    note = "(raw views + rotated .xf, 2D bilinear path" + (
        f"; central {rows_2d}/{img} rows, time extrapolated)" if rows_2d < img else ")")
    rows.append(("tomoforge WBP, raw + .xf", dt, c, note))
    print(f"  {'tomoforge WBP, raw + .xf':34s} {dt:9.2f} s  corr {c:.3f} {note}", flush=True)
    raw = part = None  # free memory before the next method

    t = time.perf_counter()
    rec = reconstruct_wbp(stack, tilts, xf, vol_shape, filter="sirt-like", sirt_iterations=10)
    record("tomoforge WBP (SIRT-like, 10)", rec, time.perf_counter() - t)
    if not args.skip_sirt:
        t = time.perf_counter()
        rec = reconstruct_sirt(stack, tilts, xf, vol_shape, iterations=args.sirt_iterations)
        record(f"tomoforge SIRT ({args.sirt_iterations} it)", rec, time.perf_counter() - t)
    del rec

    if not args.skip_teamtomo:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                rec, y0, dt = run_teamtomo(stack, tilts, vol_shape, tmp, args.teamtomo_rows)
                sub = lowpass(truth[:, y0:y0 + rec.shape[1]])  # same low-pass as the block gets
                name, f = best_orientation(lowpass(rec), sub)
                c = corr(lowpass(f(rec)), sub)
                note = f"(axes: {name})"
                if rec.shape[1] < img:
                    note = (f"(axes: {name}; central {rec.shape[1]}/{img} rows, time extrapolated; "
                            f"{same_rows_note(y0, rec.shape[1])})")
                rows.append(("teamtomo reconstruct_tomogram", dt, c, note))
                print(f"  {'teamtomo reconstruct_tomogram':34s} {dt:9.2f} s  corr {c:.3f} {note}", flush=True)
            except Exception as exc:  # a peer failing must not hide the other figures
                print(f"  teamtomo failed: {type(exc).__name__}: {exc}", flush=True)
    for sirt in (False, True):
        label = "skimage iradon_sart (1 it)" if sirt else "skimage iradon (ramp)"
        max_slices = args.skimage_slices if not sirt else max(2, args.skimage_slices // 4)
        rec, sl, dt = run_skimage(stack, tilts, vol_shape, sirt, max_slices)
        sub = lowpass(truth[:, sl, :])
        name, f = best_orientation(lowpass(rec), sub)
        note = (f"(axes: {name}; central {len(sl)}/{img} rows, time extrapolated; "
                f"{same_rows_note(int(sl[0]), len(sl))})") if len(sl) < img else f"(axes: {name})"
        c = corr(lowpass(f(rec)), sub)
        rows.append((label, dt, c, note))
        print(f"  {label:34s} {dt:9.2f} s  corr {c:.3f} {note}", flush=True)

    peers = [r for r in rows if not r[0].startswith("tomoforge")]
    fastest = min(peers, key=lambda r: r[1]) if peers else None
    print()
    print("| method | time (s) | corr (lp 0.25) | x fastest peer | voxel updates/s | note |")
    print("|---|---|---|---|---|---|")
    for name, sec, c, note in rows:
        ratio = f"{fastest[1] / sec:.2f}x faster" if fastest else "-"
        print(f"| {name} | {sec:.2f} | {c:.3f} | {ratio} | {vox_updates / sec:.3g} | {note} |")
    if fastest:
        print(f"\nfastest peer: {fastest[0]} ({fastest[1]:.2f} s)")
    bw = copy_bandwidth()
    vol_bytes = math.prod(vol_shape) * 4
    print(f"memory-copy bandwidth {bw / 1e9:.1f} GB/s. Floors: a back-projector that streams every voxel "
          f"update through memory (8 B read+write each) is bounded by {bw / 8:.3g} updates/s; writing "
          f"the volume once takes {vol_bytes / bw:.2f} s (the separable path writes each voxel once and "
          f"keeps the views' rows in cache, so it can exceed the first floor).")


def copy_bandwidth(n_bytes: int = 256 << 20, repeats: int = 5) -> float:
    """Bytes/s of a large tensor copy (read + write counted), best of ``repeats``."""
    a = torch.ones(n_bytes // 4)
    b = torch.empty_like(a)
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        b.copy_(a)
        best = min(best, time.perf_counter() - t)
    return 2 * n_bytes / best


def memory(args):
    import psutil

    from tomoforge.io.mrc_stream import MrcSlabWriter

    n_views, img, depth = (41, 2048, 500) if not args.small else (41, 512, 128)
    vol_shape = (depth, img, img)
    tilts = torch.linspace(-60, 60, n_views, dtype=torch.float64)
    centres, sig, amp = make_phantom(vol_shape, 2000 if not args.small else 300)
    stack = project(vol_shape, (img, img), tilts, centres, sig, amp)
    xf = xf_from_parameters(torch.zeros(n_views, dtype=torch.float64))
    proc = psutil.Process()
    peak = [proc.memory_info().rss]
    out_bytes = math.prod(vol_shape) * 4

    def watch(y0, y1, slab):
        peak[0] = max(peak[0], proc.memory_info().rss)

    with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp:
        t = time.perf_counter()
        with MrcSlabWriter(Path(tmp) / "tomo.mrc", vol_shape, voxel_size_a=1.0) as writer:
            def sink(y0, y1, slab):
                writer.write_slab(y0, y1, slab)
                watch(y0, y1, slab)
            reconstruct_wbp(stack, tilts, xf, vol_shape, on_slab=sink)
        dt = time.perf_counter() - t
    peak[0] = max(peak[0], proc.memory_info().rss)
    try:
        import resource
        ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    except Exception:
        ru = peak[0]
    print(f"volume {vol_shape}: output {out_bytes / 2**30:.2f} GiB, input stack {stack.numel() * 4 / 2**30:.2f} GiB")
    print(f"peak RSS (sampled per slab) {peak[0] / 2**30:.2f} GiB, ru_maxrss {ru / 2**30:.2f} GiB "
          f"= {ru / out_bytes:.2f} x output; WBP + streaming write {dt:.1f} s")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true", help="41 x 256^2 -> 256^2 x 80 (memory: 512^2 x 128)")
    p.add_argument("--memory", action="store_true", help="peak RSS of a streamed 2k x 2k x 500 WBP")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--sirt-iterations", type=int, default=10)
    p.add_argument("--skip-sirt", action="store_true")
    p.add_argument("--skip-teamtomo", action="store_true")
    p.add_argument("--skimage-slices", type=int, default=16, help="Y slices for scikit-image (extrapolated)")
    p.add_argument("--teamtomo-rows", type=int, default=64, help="central Y rows for teamtomo (extrapolated)")
    p.add_argument("--raw-fraction", type=int, default=1, help="2D path on 1/N of the rows (extrapolated)")
    p.add_argument("--tmpdir", default=None, help="where the memory mode writes its MRC")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# {sys.version.split()[0]} torch {torch.__version__} cpu_count {os.cpu_count()}")
    if args.memory:
        memory(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
