"""The Allure results a suite run writes: labels, traffic evidence, proxy state on failure.

One real run of two suite modules against a lab broken with split roots: the mTLS test
fails, the mesh-identity tests pass, and the results directory is read back as Allure's
own JSON files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="the lab needs unshare (util-linux)")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Allure results by test name, from one run of a failing and a passing module."""
    out = tmp_path_factory.mktemp("allure")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--alluredir={out}",
         "--lab-break", "split-roots", "--mesh-timeout", "convergence=2",
         "suites/security/test_mtls_across_gateway.py", "suites/topology/test_mesh_identity.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert run.returncode == 1 and "1 failed, 2 passed" in run.stdout, run.stdout[-3000:]
    by_name = {}
    for path in out.glob("*-result.json"):
        result = json.loads(path.read_text())
        result["dir"] = out
        by_name[result["name"]] = result
    return by_name


def labels(result: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for label in result["labels"]:
        out.setdefault(label["name"], []).append(label["value"])
    return out


def attachment(result: dict[str, Any], prefix: str) -> str:
    found = [a for a in result.get("attachments", []) if a["name"].startswith(prefix)]
    assert found, f"no attachment named {prefix!r}*; have {[a['name'] for a in result.get('attachments', [])]}"
    return (result["dir"] / found[0]["source"]).read_text()


def test_every_test_carries_area_features_story_and_severity(results: dict[str, dict[str, Any]]) -> None:
    mtls = labels(results["test_eu_server_sees_the_us_client_spiffe_id"])
    assert mtls["epic"] == ["Multi-network mesh: security"]
    assert set(mtls["feature"]) == {"multi-network", "mtls"}
    assert mtls["story"] == ["Answers come from EU, and their XFCC names the US client's SPIFFE ID (By= the EU server's)."]
    assert mtls["severity"] == ["critical"] and "core" in mtls["tag"]
    identity = labels(results["test_clusters_share_mesh_id_and_trust_domain"])
    assert identity["epic"] == ["Multi-network mesh: topology"] and identity["feature"] == ["multi-network"]


def test_requests_are_attached_as_summary_and_raw_responses(results: dict[str, dict[str, Any]]) -> None:
    failed = results["test_eu_server_sees_the_us_client_spiffe_id"]
    assert failed["status"] == "failed"
    summary = attachment(failed, "requests from us/sleep/sleep")
    assert summary.startswith("10 x GET http://echo-eu-only.echo.svc.cluster.local/ from sleep/sleep in us: 10 x 503 None")
    raw = json.loads(attachment(failed, "raw responses from us/sleep/sleep"))
    assert len(raw) == 10 and {r["status"] for r in raw} == {503}
    assert "CERTIFICATE_VERIFY_FAILED" in failed["statusDetails"]["message"]


def test_a_failure_attaches_the_config_dump_and_logs_of_the_proxies_involved(results: dict[str, dict[str, Any]]) -> None:
    failed = results["test_eu_server_sees_the_us_client_spiffe_id"]
    for proxy in ("us/sleep/sleep", "eu/istio-system/istio-eastwestgateway", "us/istio-system/istio-eastwestgateway"):
        dump = json.loads(attachment(failed, f"config_dump {proxy}"))
        kinds = {c["@type"].rsplit(".", 1)[-1] for c in dump["configs"]}
        assert {"ClustersConfigDump", "ListenersConfigDump"} <= kinds, kinds
    client_logs = attachment(failed, "proxy logs us/sleep/sleep")
    assert "--- access.log" in client_logs and "172.31.255.20:15443" in client_logs


def test_a_passing_test_attaches_what_it_read_and_no_proxy_dump(results: dict[str, dict[str, Any]]) -> None:
    passed = results["test_clusters_share_mesh_id_and_trust_domain"]
    assert passed["status"] == "passed"
    names = [a["name"] for a in passed.get("attachments", [])]
    assert not [n for n in names if n.startswith("config_dump")], names
    assert "mesh_id='training-mesh'" in attachment(passed, "us: mesh config")
    assert "trust_domain='corp.local'" in attachment(passed, "eu: mesh config")
