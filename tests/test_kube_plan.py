"""The kind plan, held by a golden file: what `eastwest kind plan` prints, on any machine, without Docker.

A change to the bring-up (a step, a command, a pinned version, a rendered object, a manifest
the workloads use) changes the plan; this test then fails with a diff, and the new plan is
reviewed and accepted by regenerating the golden file:

    EASTWEST_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_kube_plan.py
"""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
from pathlib import Path

from eastwest.backends.kube import plan, render
from eastwest.support import install
from eastwest.support.topology import load_topology

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"
GOLDEN = Path(__file__).with_name("golden") / "kind-plan.txt"


def current(state: Path) -> str:
    ctx = plan.KindContext(load_topology(MANIFESTS / "topology.yaml"), MANIFESTS, render.Layout("eastwest", state))
    return plan.format_plan(ctx, plan.build(ctx))


def test_plan_matches_the_golden_file(tmp_path: Path) -> None:
    text = current(tmp_path / "state")
    if os.environ.get("EASTWEST_UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    expected = GOLDEN.read_text()
    if text != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True), "golden", "now", n=2))
        raise AssertionError(f"the kind plan changed; review the diff, then EASTWEST_UPDATE_GOLDEN=1 to accept it:\n{diff[:6000]}")


def test_plan_is_in_install_order(tmp_path: Path) -> None:
    ctx = plan.KindContext(load_topology(MANIFESTS / "topology.yaml"), MANIFESTS, render.Layout("eastwest", tmp_path))
    keys: list[str] = []
    for step in plan.build(ctx):
        if not keys or keys[-1] != step.key:
            keys.append(step.key)
    assert keys == ["networks", "clusters", "transit", "images", "metallb", *(p.name for p in install.PHASES), "chaos-mesh", "readiness"]


def test_plan_needs_no_state_and_no_docker(tmp_path: Path) -> None:
    """`eastwest kind plan` runs where there is no docker, kind or helm (PATH emptied) and writes nothing."""
    state = tmp_path / "state"
    done = subprocess.run([sys.executable, "-m", "eastwest.cli", "kind", "plan", "--state", str(state)], capture_output=True, text=True,
                          timeout=120, env={"PATH": "", "HOME": str(tmp_path)}, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout == current(state)
    assert not state.exists()
