"""The sign-off report as a release manager sees it: one HTML file, rendered by the pinned Allure 3
CLI, opened from disk in headless Chromium.

What is checked is what a sign-off needs: the run's identity (backend, control plane, Istio and
Envoy versions, commit), the counts, the areas, a failing test's cause in its first line, its
steps and applied manifests; a broken run that says so with its reason; history across runs;
and the CI gate. Screenshots stay in ``reports/screenshots/`` as the artifacts of this test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chromium import Chromium, find_chromium
from tests.signoff import ROOT, SuiteRun, allure_missing, quality_gate, render_report

SCREENSHOTS = ROOT / "reports" / "screenshots"
MTLS = "Answers come from EU, and their XFCC names the US client's SPIFFE ID (By= the EU server's)."
IDENTITY = "Every cluster's control plane runs the same mesh ID and trust domain."

pytestmark = pytest.mark.skipif(allure_missing() is not None, reason=allure_missing() or "")


@pytest.fixture(scope="module")
def reports(failing_run: SuiteRun, passing_run: SuiteRun, broken_run: SuiteRun,
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The HTML reports of three runs; the failing and the passing one share a history, in that order."""
    out = tmp_path_factory.mktemp("html")
    history = out / "history.jsonl"
    return {
        "failing": render_report(failing_run, out / "failing", history),
        "passing": render_report(passing_run, out / "passing", history),
        "broken": render_report(broken_run, out / "broken", out / "broken-history.jsonl"),
        "history": history,
    }


@pytest.fixture
def browser() -> Iterator[Chromium]:
    """A fresh browser per test: the report keeps its UI state (the open tab) in the origin's storage."""
    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium here (apt-get install chromium; .ci/run installs it)")
    with Chromium(binary) as page:
        yield page


def test_the_report_is_one_file_that_opens_from_disk(reports: dict[str, Path]) -> None:
    html = reports["failing"]
    assert html.name == "index.html" and html.stat().st_size > 100_000
    assert not [p for p in html.parent.iterdir() if p.is_dir()], "a single-file report has no asset folders"


def test_a_release_manager_sees_what_was_tested_and_what_failed(reports: dict[str, Path], browser: Chromium) -> None:
    browser.open(reports["failing"].as_uri())
    text = browser.wait_for_text("Variables")
    assert "eastwest conformance on lab (istiod stand-in mirroring Istio 1.30.3): FAILURE" in text
    for line in ("Result\nfailure: 2 of 4 tests failed (Trust and mTLS: 2)", "Backend\nlab",
                 "Control plane\neastwest lab control plane, the project's stand-in for istiod; mirrors Istio 1.30.3",
                 "Istio\n1.30.3 (mirrored, not installed)", "Envoy\n1.40.0", "Mesh\ntraining-mesh, trust domain corp.local",
                 "Failed\n2", "Passed\n2", "Trust and mTLS\n2", "Topology\n2"):
        assert line in text, f"the overview lacks {line!r}:\n{text[:3000]}"
    browser.screenshot(SCREENSHOTS / "sign-off-overview.png", height=1300)

    browser.click_text(MTLS)
    text = browser.wait_for_text("Set up")
    cause = text.split("Error\n", 1)[1].strip().splitlines()[0]
    assert cause.startswith("US client reaching the EU-only echo over mTLS: not converged within 2s"), cause
    assert "Category: Mesh conformance: Trust and mTLS" in text
    assert "Converge: US client reaching the EU-only echo over mTLS" in text and "Proxy state of us/sleep/sleep" in text
    browser.click_text("Apply the test's manifests")
    browser.click_text("Apply manifests suites/security/echo-in-eu-only.yaml to us, eu")
    text = browser.wait_for_text("eu: applied manifests")
    assert "application/yaml" in text
    browser.scroll_to_top()
    time.sleep(0.3)
    browser.screenshot(SCREENSHOTS / "sign-off-failing-test.png", height=2000)


def test_a_run_whose_mesh_never_came_up_says_broken_with_the_reason(reports: dict[str, Path], browser: Chromium) -> None:
    browser.open(reports["broken"].as_uri())
    text = browser.wait_for_text("Variables")
    assert "eastwest conformance on lab (the mesh never came up): BROKEN" in text
    assert "Broken\n6" in text and "Global Errors 1" in text, text[:1500]
    assert "Result\nbroken: the lab mesh could not be brought up: " in text
    browser.click_text("Global Errors")
    assert "the lab mesh could not be brought up: " in browser.wait_for_text("Error")
    browser.screenshot(SCREENSHOTS / "sign-off-broken.png", height=1000)


def test_history_is_kept_between_runs(reports: dict[str, Path], browser: Chromium) -> None:
    lines = reports["history"].read_text().splitlines()
    assert len(lines) == 2, f"two runs, two history entries; got {len(lines)}"
    assert all(json.loads(line) for line in lines)
    browser.open(reports["passing"].as_uri())
    browser.wait_for_text("Variables")
    browser.click_text("Topology")
    browser.click_text("Mesh identity")
    browser.click_text(IDENTITY)
    browser.wait_for_text("Set up")
    browser.click_text("History")
    assert "History\n1" in browser.text(), "the earlier run is in this test's history"


def test_the_ci_gate_fails_a_broken_run_and_a_short_one(passing_run: SuiteRun, broken_run: SuiteRun) -> None:
    """A broken run counts against "no failures" (a skipped one did not), and so does too small a run."""
    assert quality_gate(passing_run).returncode == 0
    broken = quality_gate(broken_run)
    assert broken.returncode != 0 and "maxFailures" in broken.stdout + broken.stderr
    short = quality_gate(passing_run, min_tests=100)
    assert short.returncode != 0 and "minTestsCount" in short.stdout + short.stderr
