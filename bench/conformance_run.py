"""Benchmark: a whole `pytest suites/ --mesh lab` run, lab bring-up included.

Prints every run's wall time and outcome, then the median, min and max.
Usage: python bench/conformance_run.py [RUNS]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "pytest", "suites/", "--mesh", "lab", "-q", "-p", "no:cacheprovider"],
                                cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        elapsed = time.perf_counter() - t0
        last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr.strip()[-200:]
        times.append(elapsed)
        failed = "" if result.returncode == 0 else " FAILED"
        print(f"run {i + 1}: {elapsed:.1f} s ({last}){failed}", flush=True)
        for line in result.stdout.splitlines():  # which tests, so a failed run can be followed up
            if line.startswith(("FAILED ", "ERROR ")):
                print(f"    {line[:300]}", flush=True)
    print(f"pytest suites/ --mesh lab: median {statistics.median(times):.1f} s (min {min(times):.1f}, max {max(times):.1f}, {runs} runs)")


if __name__ == "__main__":
    main()
