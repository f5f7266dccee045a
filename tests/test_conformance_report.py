"""The machine-readable conformance report: it validates against its schema for a passing, a failing
and a broken run, says what was tested, counts by profile, area and feature, and gives each cause."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from eastwest.fixtures.conformance import SCHEMA_VERSION, read_failover
from tests.signoff import SCHEMA, SuiteRun


def validate(report: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(report)]
    assert not errors, "\n".join(errors)


def test_the_schema_is_valid_and_versioned_with_the_writer() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"].endswith(f"/v{SCHEMA_VERSION}.json"), (schema["$id"], SCHEMA_VERSION)


def test_the_schema_rejects_a_report_that_lies(failing_run: SuiteRun) -> None:
    """A failure with no cause, or a broken run called a success, does not validate."""
    report = failing_run.report
    failed = next(t for t in report["tests"] if t["outcome"] == "failed")
    failed["cause"] = None
    with pytest.raises(AssertionError, match="cause"):
        validate(report)
    report = failing_run.report
    report["result"], report["globalErrors"] = "success", ["the mesh could not be brought up"]
    with pytest.raises(AssertionError):
        validate(report)


def test_a_failing_run(failing_run: SuiteRun) -> None:
    assert failing_run.returncode == 1, failing_run.stdout[-3000:]
    report = failing_run.report
    validate(report)
    assert report["result"] == "failure" and report["reason"] == "2 of 4 tests failed (Trust and mTLS: 2)"
    impl = report["implementation"]
    assert impl["backend"] == "lab" and impl["controlPlaneStandIn"] is True and impl["istioVersion"] == "1.30.3"
    assert impl["deliberateBreaks"] == ["split-roots"] and impl["envoyVersion"].count(".") == 2
    assert report["topology"]["meshId"] == "training-mesh" and [c["network"] for c in report["topology"]["clusters"]] == ["us-net", "eu-net"]
    assert report["summary"] == {"passed": 2, "failed": 2, "broken": 0, "skipped": 0, "total": 4}
    core = next(p for p in report["profiles"] if p["name"] == "core")
    assert core["result"] == "failure" and core["summary"]["failed"] == 2 and len(core["failedTests"]) == 2
    assert core["supportedFeatures"] == ["mtls", "multi-network"] and core["unsupportedFeatures"] == []
    assert next(p for p in report["profiles"] if p["name"] == "extended")["result"] == "not-run"
    areas = {a["name"]: a for a in report["areas"]}
    assert areas["security"]["summary"]["failed"] == 2 and areas["topology"]["result"] == "success"
    assert {f["name"]: f["summary"]["total"] for f in report["features"]}["mtls"] == 2
    assert "foreign-root-client" not in {f["name"] for f in report["features"]}
    mtls = next(t for t in report["tests"] if t["id"].endswith("test_eu_server_sees_the_us_client_spiffe_id"))
    assert mtls["outcome"] == "failed" and mtls["category"] == "conformance/security"
    assert mtls["cause"].startswith("US client reaching the EU-only echo over mTLS: not converged within 2s")
    assert mtls["title"].startswith("Answers come from EU") and mtls["profile"] == "core"
    untrusted = next(t for t in report["tests"] if "untrusted" in t["id"])
    assert untrusted["capabilities"] == ["foreign-root-client"] and untrusted["parameters"] == {
        "url": "http://echo-eu-only.echo.svc.cluster.local/"}
    assert {c["id"]: c["count"] for c in report["categories"]}["conformance/security"] == 2


def test_a_passing_run_on_two_xdist_workers(passing_run: SuiteRun) -> None:
    assert passing_run.returncode == 0, passing_run.stdout[-3000:]
    report = passing_run.report
    validate(report)
    assert report["result"] == "success", report["reason"]
    assert report["summary"]["passed"] == report["summary"]["total"] >= 4
    # the controller never opened the mesh: the implementation came from the workers
    assert report["implementation"]["istioVersion"] == "1.30.3" and report["implementation"]["envoyVersion"] != "unknown"
    assert report["run"]["exitStatus"] == 0 and report["selection"]["paths"]


def test_a_broken_run(broken_run: SuiteRun) -> None:
    assert broken_run.returncode == 3, broken_run.stdout[-3000:]
    report = broken_run.report
    validate(report)
    assert report["result"] == "broken" and report["run"]["exitStatus"] == 3
    assert report["reason"].startswith("the lab mesh could not be brought up: ") and report["globalErrors"] == [report["reason"]]
    assert report["implementation"]["envoyVersion"] == "unknown"
    assert {t["outcome"] for t in report["tests"]} == {"broken"}
    assert {t["category"] for t in report["tests"]} == {"infrastructure/bring-up"}
    assert report["summary"]["broken"] == report["summary"]["total"] >= 4


def test_failover_figures_are_included_only_when_this_run_wrote_them(tmp_path: Any) -> None:
    report = tmp_path / "conformance-report.json"
    figures = tmp_path / "failover.json"
    figures.write_text(json.dumps([{"test": "pod-kill", "timeToFailoverSeconds": 1.2}]))
    assert read_failover(report, "2000-01-01T00:00:00+00:00") == [{"test": "pod-kill", "timeToFailoverSeconds": 1.2}]
    figures.write_text(json.dumps({"entries": [{"test": "partition"}]}))
    assert read_failover(report, "2000-01-01T00:00:00+00:00") == [{"test": "partition"}]
    assert read_failover(report, "2999-01-01T00:00:00+00:00") == [], "a file older than the run is a leftover"
