"""The CI workflows, checked offline: they cannot run here, so they are validated against GitHub's
workflow schema (check-jsonschema's built-in copy) and held to the project's rules: pinned actions,
a time limit on every job, the nightly kind road on a schedule, the lab on every push, reports and
history published."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.signoff import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
#: actions that could not be read here to pin a SHA: a major tag, kept current by Dependabot
MAJOR_ONLY = {"azure/setup-helm"}


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
                          capture_output=True, text=True, timeout=120)


def load(path: Path) -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(path.read_text())
    return data


def uses(workflow: dict[Any, Any]) -> list[str]:
    return [step["uses"] for job in workflow["jobs"].values() for step in job["steps"] if "uses" in step]


def test_workflows_validate_against_githubs_schema_and_every_job_has_a_time_limit() -> None:
    assert {p.name for p in WORKFLOWS} == {"lab.yml", "nightly-kind.yml"}
    for schema in ("vendor.github-workflows", "custom.github-workflows-require-timeout"):
        done = check_jsonschema(schema, *WORKFLOWS)
        assert done.returncode == 0, done.stdout + done.stderr
    done = check_jsonschema("vendor.dependabot", ROOT / ".github" / "dependabot.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_validation_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = load(ROOT / ".github" / "workflows" / "lab.yml")
    broken["jobs"]["lab"]["runs-on"] = None
    del broken["jobs"]["lab"]["timeout-minutes"]
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken))
    assert check_jsonschema("vendor.github-workflows", path).returncode != 0
    path.write_text(yaml.safe_dump({**load(ROOT / ".github" / "workflows" / "lab.yml"),
                                    "jobs": {"lab": {**broken["jobs"]["lab"], "runs-on": "ubuntu-24.04"}}}))
    assert check_jsonschema("custom.github-workflows-require-timeout", path).returncode != 0


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_by_sha_and_dependabot_keeps_them_current(path: Path) -> None:
    text = path.read_text()
    for ref in uses(load(path)):
        action, _, version = ref.partition("@")
        if action in MAJOR_ONLY:
            assert re.fullmatch(r"v\d+", version), ref
            continue
        assert re.fullmatch(r"[0-9a-f]{40}", version), f"{ref}: pin by commit SHA"
        assert re.search(rf"{re.escape(ref)}\s+# v\d+\.\d+\.\d+", text), f"{ref}: say which tag the SHA is"
    ecosystems = {u["package-ecosystem"] for u in load(ROOT / ".github" / "dependabot.yml")["updates"]}
    assert {"github-actions", "npm"} <= ecosystems


def test_the_nightly_runs_the_kind_road_and_the_lab_runs_on_every_push() -> None:
    nightly = load(ROOT / ".github" / "workflows" / "nightly-kind.yml")
    triggers = nightly[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"schedule", "workflow_dispatch"} and triggers["schedule"][0]["cron"]
    steps = nightly["jobs"]["conformance"]["steps"]
    run = next(s["run"] for s in steps if s.get("name") == "Conformance on kind")
    assert "--mesh kind" in run and "--mesh-timeout bring_up=1500" in run and "--conformance-report" in run
    exports = next(s for s in steps if s.get("name") == "Export logs and cluster state")
    assert exports["if"] == "steps.conformance.outcome != 'success'" and "kind export logs" in exports["run"]
    lab = load(ROOT / ".github" / "workflows" / "lab.yml")
    assert "push" in lab[True]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_reports_and_history_are_published(path: Path) -> None:
    workflow = load(path)
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "make report" in runs and "make report-gate" in runs, "the HTML report and the quality gate"
    caches = [s for s in steps if str(s.get("uses", "")).startswith("actions/cache/")]
    assert {s["with"]["path"] for s in caches} == {"reports/history.jsonl"} and len(caches) == 2, "history restored and saved"
    assert all(s.get("if") == "always()" for s in caches if "save" in s["uses"])
    uploads = [s["with"] for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    paths = "\n".join(u["path"] for u in uploads)
    assert "reports/allure-report/index.html" in paths and "reports/conformance-report.json" in paths
    assert int(workflow["env"]["EASTWEST_MIN_TESTS"]) <= collected_suite_tests(), "the gate's minimum is a real count"


def collected_suite_tests() -> int:
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "suites/"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    found = re.search(r"(\d+) tests? collected", done.stdout)
    assert found, done.stdout[-2000:]
    return int(found.group(1))


def test_the_report_tools_are_pinned() -> None:
    package = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())
    pinned = package["devDependencies"]["allure"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), f"allure {pinned!r}: an exact version"
    assert lock["packages"]["node_modules/allure"]["version"] == pinned
    assert all("integrity" in p for name, p in lock["packages"].items() if name), "every package locked by hash"
