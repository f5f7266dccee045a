"""Benchmark: the 80/20 distribute test, run N times (default 20) against one healthy lab.

Shows the false-failure rate in practice: every run should pass. Prints each run's outcome,
the counts it saw (from the test's log line), the tally and the median wall time.
Usage: python bench/distribute_repeat.py [RUNS]
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = "suites/locality/test_locality_preference.py::test_distribute_splits_traffic_80_20"
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    name = f"bench-{uuid.uuid4().hex[:6]}"
    eastwest = [str(Path(sys.executable).with_name("eastwest"))]
    subprocess.run([*eastwest, "lab", "up", "--name", name], cwd=ROOT, env=ENV, check=True, capture_output=True)
    passed, times = 0, []
    try:
        for i in range(runs):
            t0 = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", "pytest", TEST, "--lab-name", name, "-q", "-p", "no:cacheprovider",
                                     "-o", "log_cli=true", "--log-cli-level=INFO"],
                                    cwd=ROOT, capture_output=True, text=True, env=ENV)
            times.append(time.perf_counter() - t0)
            plan = re.search(r"(\d+) requests; accept (\d+)\.\.(\d+)", result.stdout)
            converged = re.search(r"converged after ([\d.]+)s \((\d+) attempts\)", result.stdout)
            ok = result.returncode == 0
            passed += ok
            detail = f"n={plan[1]} band {plan[2]}..{plan[3]}" if plan else "no plan line"
            detail += f", converged in {converged[2]} batch(es)" if converged else ""
            print(f"run {i + 1}: {'passed' if ok else 'FAILED'} in {times[-1]:.1f} s ({detail})", flush=True)
    finally:
        subprocess.run([*eastwest, "lab", "down", "--name", name], cwd=ROOT, env=ENV, capture_output=True)
    print(f"distribute 80/20: {passed}/{runs} passed; median {statistics.median(times):.1f} s per run")


if __name__ == "__main__":
    main()
