"""The default preset on a simulated session with 1 and 2 local workers: wall time per step and the scaling.

    .venv/bin/python benchmarks/bench_workflow.py [--case hiv-small] [--workers 1 2] [--seed 1]

Units are tilt series, so a one-series case (hiv-small) cannot use a second worker for the steps
themselves; a several-series case (exosome) shows what the workers buy.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tomoforge.execution import InlineExecutor, LocalExecutor
from tomoforge.io.sim_session import simulate_case
from tomoforge.project.store import Project
from tomoforge.project.workflow import apply_sets, load_workflow, run_workflow


def run(session: Path, root: Path, workers: int) -> tuple[float, dict[str, float]]:
    proj = Project.create(root)
    wf = apply_sets(load_workflow("default"), {"import.mdoc": str(session / "*.mdoc")})
    ex = InlineExecutor() if workers == 1 else LocalExecutor(workers, threads_per_worker=1)
    t0 = time.perf_counter()
    try:
        run_workflow(proj, wf, executor=ex)
    finally:
        ex.shutdown()
    total = time.perf_counter() - t0
    return total, {j.step: j.finished - j.started for j in proj.jobs()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="hiv-small")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        session = Path(tmp) / "session"
        t0 = time.perf_counter()
        simulate_case(args.case, session, seed=args.seed)
        print(f"simulated {args.case} in {time.perf_counter() - t0:.1f} s")
        results = {w: run(session, Path(tmp) / f"p{w}", w) for w in args.workers}
    base = results[args.workers[0]][0]
    steps = list(results[args.workers[0]][1])
    print(f"\ndefault preset on {args.case}: wall seconds per step")
    print(f"{'step':<16}" + "".join(f"{f'{w} worker(s)':>14}" for w in args.workers))
    for s in steps:
        print(f"{s:<16}" + "".join(f"{results[w][1].get(s, float('nan')):>14.1f}" for w in args.workers))
    print(f"{'total':<16}" + "".join(f"{results[w][0]:>14.1f}" for w in args.workers))
    print(f"{'speed-up':<16}" + "".join(f"{base / results[w][0]:>14.2f}" for w in args.workers))


if __name__ == "__main__":
    main()
