"""Benchmark: `pytest suites/failover` runs, with each test's figures across runs.

Prints every run's wall time and outcome, then per test: how many runs passed, its median
duration, and the median (min-max) of its figures (time to failover and failback, errors
during the fault and after the deadline, remote share, latency p50/p99 before and during),
read from each run's reports/failover.json. ``--markdown`` prints the table for the README.
Usage: python bench/failover_suite.py [RUNS] [--markdown] [-- extra pytest args]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

FIGURES: list[tuple[str, Callable[[dict[str, Any]], float | None], str]] = [
    ("failover", lambda f: f["time_to_failover_s"], "s"),
    ("failback", lambda f: f["time_to_failback_s"], "s"),
    ("errors", lambda f: f["errors_during"], ""),
    ("after deadline", lambda f: f["errors_after_deadline"], ""),
    ("remote", lambda f: f["remote_share_during"] * 100, "%"),
    ("p50 before", lambda f: f["before"]["p50_ms"], "ms"),
    ("p99 before", lambda f: f["before"]["p99_ms"], "ms"),
    ("p50 during", lambda f: f["during"]["p50_ms"], "ms"),
    ("p99 during", lambda f: f["during"]["p99_ms"], "ms"),
]


def spread(values: list[float | None], unit: str) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "none"
    digits = 2 if unit == "s" else 0 if unit in ("ms", "") else 1
    med = f"{statistics.median(known):.{digits}f}"
    missing = f", none in {len(values) - len(known)}" if len(known) < len(values) else ""
    if min(known) == max(known):
        return f"{med}{unit}{missing}"
    return f"{med}{unit} ({min(known):.{digits}f}-{max(known):.{digits}f}){missing}"


def main() -> None:
    args = sys.argv[1:]
    extra = args[args.index("--") + 1:] if "--" in args else []
    args = args[: args.index("--")] if "--" in args else args
    markdown = "--markdown" in args
    runs = int(next((a for a in args if a.isdigit()), "3"))
    reports: list[dict[str, Any]] = []
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            report = Path(tmp) / f"run-{i}.json"
            t0 = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", "pytest", "suites/failover", "-q", "-p", "no:cacheprovider",
                                     "--failover-report", str(report), *extra],
                                    cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
            walls.append(time.perf_counter() - t0)
            last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr.strip()[-200:]
            print(f"run {i + 1}: {walls[-1]:.1f} s ({last}){'' if result.returncode == 0 else ' FAILED'}", flush=True)
            if report.exists():
                reports.append(json.loads(report.read_text()))
    print(f"pytest suites/failover: median {statistics.median(walls):.1f} s (min {min(walls):.1f}, max {max(walls):.1f}, {runs} runs)")
    by_test: dict[str, list[dict[str, Any]]] = {}
    for run in reports:
        for entry in run["tests"]:
            by_test.setdefault(entry["test"], []).append(entry)
    if markdown:
        print("\n| test | load | passed | duration | " + " | ".join(name for name, _, _ in FIGURES) + " |")
        print("|---" * (4 + len(FIGURES)) + "|")
    for test, entries in sorted(by_test.items()):
        passed = sum(1 for e in entries if e["outcome"] == "passed")
        duration = statistics.median(e["duration_s"] for e in entries)
        loads: dict[str, list[dict[str, Any]]] = {}
        for e in entries:
            for load in e["loads"]:
                loads.setdefault(f"{load['load']['client']} -> {load['load']['url']}", []).append(load["figures"])
        name = test.split("::")[-1]
        for label, figs in loads.items():
            cells = [spread([get(f) for f in figs], unit) for _, get, unit in FIGURES]
            if markdown:
                short = label.replace("http://", "").replace(".echo.svc.cluster.local/", "")
                print(f"| `{name}` | {short} | {passed}/{len(entries)} | {duration:.1f} s | " + " | ".join(cells) + " |")
            else:
                print(f"{name} [{passed}/{len(entries)} passed, median {duration:.1f} s] {label}")
                print("   " + "; ".join(f"{n} {c}" for (n, _, _), c in zip(FIGURES, cells, strict=True)))


if __name__ == "__main__":
    main()
