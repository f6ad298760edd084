"""Generation time and size of every simulator case (docs/simulator.md quotes this table).

    .venv/bin/python benchmarks/bench_simulate.py [CASE ...] [--out DIR] [--seed N] [--set KEY=VALUE ...]

Prints one row per case: wall time, CPU time, files, bytes, views, image size and pixel size.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from tomoforge.core.sim.cases import list_cases
from tomoforge.io.sim_session import load_truth, simulate_case


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", nargs="*", default=list_cases())
    ap.add_argument("--out", type=Path, default=None, help="keep the sessions here (default: a temp dir)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    overrides = dict(s.split("=", 1) for s in args.set)
    root = args.out or Path(tempfile.mkdtemp(prefix="tomoforge-sim-"))
    print(f"{'case':<10} {'wall s':>7} {'cpu s':>7} {'files':>6} {'MB':>8} {'series':>6} {'views':>6} "
          f"{'image':>10} {'Å/px':>6}")
    for case in args.cases:
        out = root / case
        shutil.rmtree(out, ignore_errors=True)
        t0, c0 = time.perf_counter(), _cpu_s()
        path = simulate_case(case, out, seed=args.seed, overrides=overrides)
        wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
        files = [p for p in out.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files) / 1e6
        t = load_truth(path)
        ts = t.tilt_series[0]
        h, w = ts.acquisition.image_size_yx
        views = sum(len(s.views) for s in t.tilt_series)
        print(f"{case:<10} {wall:7.1f} {cpu:7.1f} {len(files):6d} {size:8.1f} {len(t.tilt_series):6d} {views:6d} "
              f"{f'{w}x{h}':>10} {ts.acquisition.pixel_size_a:6.2f}", flush=True)
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
