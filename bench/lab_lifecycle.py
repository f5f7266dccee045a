"""Benchmark: bring-up and teardown of the whole two-cluster lab.

Bring-up = supervisor start, network, both control planes and east-west gateways, echo
and sleep with their sidecars, every proxy synced, plus one cross-cluster request that
succeeds. Teardown = until the supervisor (PID 1 of the lab) has exited. Prints every run
and the median, min and max. Usage: python bench/lab_lifecycle.py [RUNS]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eastwest.backends.lab.mesh import LabMesh  # noqa: E402
from eastwest.workloads import ECHO_URL, SLEEP  # noqa: E402


def one_run() -> tuple[float, float]:
    t0 = time.perf_counter()
    mesh = LabMesh(ROOT / "manifests")
    mesh.install()
    answers = mesh.cluster("us").call(SLEEP, ECHO_URL, count=2)  # round robin: one local, one via the EU gateway
    up = time.perf_counter() - t0
    if {r.cluster for r in answers} != {"us", "eu"}:
        raise SystemExit(f"bring-up incomplete: {[r.summary() for r in answers]}")
    t1 = time.perf_counter()
    mesh.close()
    return up, time.perf_counter() - t1


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    one_run()  # warm-up: imports, page cache
    ups, downs = [], []
    for i in range(runs):
        up, down = one_run()
        ups.append(up)
        downs.append(down)
        print(f"run {i + 1}: bring-up {up:.2f} s, teardown {down:.2f} s", flush=True)
    for name, xs in (("bring-up", ups), ("teardown", downs)):
        print(f"{name}: median {statistics.median(xs):.2f} s (min {min(xs):.2f}, max {max(xs):.2f}, {runs} runs)")


if __name__ == "__main__":
    main()
