"""Tests that run at once against one lab do not collide (pytest-xdist workers attached by name)."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from eastwest.support import locks

ROOT = Path(__file__).resolve().parents[1]


def _hold(identity: str, name: str, seconds: float, started: multiprocessing.synchronize.Event) -> None:
    with locks.held(identity, exclusive=[name]):
        started.set()
        time.sleep(seconds)


def test_an_exclusive_lock_waits_for_the_other_process() -> None:
    identity = f"selftest-{uuid.uuid4().hex[:8]}"
    started = multiprocessing.Event()
    other = multiprocessing.Process(target=_hold, args=(identity, "us.DestinationRule.echo.echo-locality", 1.0, started))
    other.start()
    try:
        assert started.wait(10)
        t0 = time.monotonic()
        with locks.held(identity, exclusive=["us.DestinationRule.echo.echo-locality"]):
            waited = time.monotonic() - t0
        with locks.held(identity, exclusive=["us.Namespace..legacy"]):  # another object: no wait
            pass
    finally:
        other.join(10)
    assert waited >= 0.5, f"expected to wait for the other holder (about 1 s); waited {waited:.2f}s"


@pytest.mark.skipif(shutil.which("unshare") is None, reason="the lab needs unshare (util-linux)")
def test_two_workers_share_one_lab() -> None:
    """Both locality tests apply a DestinationRule of the same name; on one lab they must not interleave."""
    name = f"selftest-xdist-{os.getpid()}"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    up = subprocess.run([sys.executable, "-m", "eastwest.cli", "lab", "up", "--name", name], cwd=ROOT,
                        capture_output=True, text=True, env=env, timeout=120)
    assert up.returncode == 0, up.stderr
    try:
        # the failover suite runs alone whatever the workers (tests/test_failover_harness.py shows it): here it would
        # only add its serial minute and a half
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--lab-name", name,
                              "suites/", "--ignore=suites/failover"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
        assert run.returncode == 0, run.stdout[-4000:]
    finally:
        subprocess.run([sys.executable, "-m", "eastwest.cli", "lab", "down", "--name", name], cwd=ROOT,
                       capture_output=True, text=True, env=env, timeout=60)
