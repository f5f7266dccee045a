"""Real suite runs and their sign-off reports, for the self-tests of the reporting modules.

``run_suites`` runs pytest on suite tests against a lab of its own (hermetic: every output
goes under the given folder) and reads back what the run wrote: the Allure results, the
conformance report and the exit status. ``render_report`` turns results into the single-file
HTML report with the project's pinned Allure 3 CLI, exactly as ``make report`` does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ALLURE_CLI = ROOT / "node_modules" / "allure" / "cli.js"
SCHEMA = ROOT / "reports" / "conformance-report.schema.json"


@dataclass
class SuiteRun:
    """One finished pytest run of suite tests, and everything it wrote."""

    folder: Path
    returncode: int
    stdout: str

    @property
    def results(self) -> Path:
        return self.folder / "allure-results"

    @property
    def report_path(self) -> Path:
        return self.folder / "conformance-report.json"

    @property
    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.report_path.read_text())
        return data

    def allure(self) -> dict[str, dict[str, Any]]:
        """The Allure test results by test name (the title), each with its folder."""
        out = {}
        for path in self.results.glob("*-result.json"):
            result = json.loads(path.read_text())
            result["path"] = path
            out[result["name"]] = result
        return out

    def containers(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in self.results.glob("*-container.json")]


def run_suites(folder: Path, *args: str, timeout: float = 300) -> SuiteRun:
    folder.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--alluredir={folder / 'allure-results'}",
         "--clean-alluredir", "--conformance-report", str(folder / "conformance-report.json"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    return SuiteRun(folder, run.returncode, run.stdout + run.stderr)


def allure_missing() -> str | None:
    """Why the report cannot be rendered here, or None."""
    if shutil.which("node") is None:
        return "rendering the report needs Node.js (apt-get install nodejs)"
    if not ALLURE_CLI.is_file():
        return "the pinned Allure 3 CLI is not installed: run `make report-tools` (make test does it where npm exists)"
    return None


def render_report(run: SuiteRun, out: Path, history: Path) -> Path:
    """The single-file HTML report of ``run`` (history appended to ``history``), as `make report` renders it."""
    env = dict(os.environ, EASTWEST_ALLURE_RESULTS=str(run.results), EASTWEST_CONFORMANCE_REPORT=str(run.report_path),
               EASTWEST_ALLURE_REPORT=str(out), EASTWEST_ALLURE_HISTORY=str(history))
    done = subprocess.run(
        ["node", "--import", "./reports/node-iterator-helpers.mjs", str(ALLURE_CLI), "generate", str(run.results),
         "--config", "reports/allurerc.mjs"],
        cwd=ROOT, capture_output=True, text=True, timeout=180, env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out / "index.html"


def quality_gate(run: SuiteRun, min_tests: int | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, EASTWEST_ALLURE_RESULTS=str(run.results), EASTWEST_CONFORMANCE_REPORT=str(run.report_path))
    if min_tests is not None:
        env["EASTWEST_MIN_TESTS"] = str(min_tests)
    return subprocess.run(
        ["node", "--import", "./reports/node-iterator-helpers.mjs", str(ALLURE_CLI), "quality-gate", str(run.results),
         "--config", "reports/allurerc.mjs"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=env,
    )
