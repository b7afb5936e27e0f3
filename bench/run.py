"""Run every benchmark (`make bench`); each writes its numbers to bench/results/*.json.

Benchmarks measure speed and cost; the tests assert behaviour. Each bench_*.py is
run as its own process, one after the other (the machine has two cores), and a
failing benchmark makes the whole run fail.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    (HERE / "results").mkdir(exist_ok=True)
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"== {script.name}", flush=True)
        started = time.monotonic()
        rc = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        print(f"== {script.name}: exit {rc} in {time.monotonic() - started:.0f} s")
        if rc:
            failed.append(script.name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    print("results: " + ", ".join(p.name for p in sorted(HERE.glob("results/*.json"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
