"""Run every benchmark in this folder in turn and print their tables (``make bench``).

Each ``bench_*.py`` is a standalone script comparing tomoforge with the peers installed here; pass
``--quick`` for the small variants where a script has one.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

QUICK_ARGS = {"bench_reconstruct.py": ["--small"], "bench_motion.py": ["--views", "8"]}


def main() -> int:
    quick = "--quick" in sys.argv
    here = Path(__file__).parent
    failed = []
    for script in sorted(here.glob("bench_*.py")):
        args = QUICK_ARGS.get(script.name, []) if quick else []
        print(f"\n=== {script.name} {' '.join(args)}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(script), *args])
        print(f"=== {script.name}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            failed.append(script.name)
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
