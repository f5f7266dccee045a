"""The suites catch broken meshes: break the lab by hand, the matching test fails and names the cause.

Each case runs the real suite test in a pytest subprocess against a lab broken in one way,
and checks both that it fails and that its message says why. A control run on the healthy
lab proves the same tests pass when nothing is broken.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MTLS = "suites/security/test_mtls_across_gateway.py"
SE_ROUTE = "suites/routing/test_service_entry.py::test_service_entry_with_destination_rule_routes_to_eu_over_mtls"
LOCALITY = "suites/locality/test_locality_preference.py::test_healthy_clusters_serve_their_own_region"
# failover tests whose failover needs the local endpoint ejected (the pod-kill ones need only EDS)
EJECTION = {
    "HTTPChaos/abort": "suites/failover/test_http_faults.py::test_http_abort_on_us_echo_fails_over_to_eu_and_back",
    "NetworkChaos/partition":
        "suites/failover/test_network_faults.py::test_us_echo_partitioned_from_everything_fails_over_to_eu_and_back",
}
DISTRIBUTE = "suites/locality/test_locality_preference.py::test_distribute_splits_traffic_80_20"

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="the lab needs unshare (util-linux)")


def run_suites(*args: str, convergence: float = 4) -> subprocess.CompletedProcess[str]:
    """Run suite tests; a broken mesh never converges, so its runs wait only ``convergence`` seconds."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--mesh-timeout", f"convergence={convergence}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


def broken_manifests(tmp_path: Path, relative: str, edit: Callable[[dict], None]) -> Path:
    """A copy of manifests/ with one document of one file edited."""
    copy = tmp_path / "manifests"
    shutil.copytree(ROOT / "manifests", copy)
    path = copy / relative
    doc = yaml.safe_load(path.read_text())
    edit(doc)
    path.write_text(yaml.safe_dump(doc))
    return copy


def ejection_tests() -> list[str]:
    """The ejection-dependent failover tests the lab can run (it declares the faults they inject)."""
    from eastwest.backends.lab.mesh import LabMesh

    return [test for fault, test in EJECTION.items() if fault in LabMesh.faults]


def test_the_healthy_lab_passes_the_same_tests() -> None:
    result = run_suites(MTLS, SE_ROUTE, LOCALITY, *ejection_tests(), convergence=30)
    assert result.returncode == 0, result.stdout[-3000:]


def test_two_root_cas_fail_mtls_naming_the_shared_root() -> None:
    result = run_suites(MTLS, "--lab-break", "split-roots")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "1 failed" in result.stdout
    assert "do not share one root CA" in result.stdout, result.stdout[-3000:]


def test_destination_rule_without_sni_fails_the_route_naming_the_sni(tmp_path: Path) -> None:
    def drop_sni(doc: dict) -> None:
        del doc["spec"]["trafficPolicy"]["tls"]["sni"]

    manifests = broken_manifests(tmp_path, "suites/routing/destinationrule-echo-eu.yaml", drop_sni)
    result = run_suites(SE_ROUTE, "--manifests", str(manifests))
    assert result.returncode == 1, result.stdout[-3000:]
    assert (
        "the US client sends SNI 'outbound_.80_._.echo.eu.mesh.local' (mTLS), which matches NONE of "
        "the EU gateway's AUTO_PASSTHROUGH chains"
    ) in result.stdout, result.stdout[-3000:]


def _drop_outlier_detection(doc: dict) -> None:
    del doc["spec"]["trafficPolicy"]["outlierDetection"]


def _disable_locality_lb(doc: dict) -> None:
    doc["spec"]["trafficPolicy"]["loadBalancer"]["localityLbSetting"]["enabled"] = False


@pytest.mark.parametrize("breakage", [_drop_outlier_detection, _disable_locality_lb], ids=["no-outlier-detection", "locality-lb-disabled"])
def test_locality_load_balancing_off_fails_preference_naming_it(tmp_path: Path, breakage: Callable[[dict], None]) -> None:
    manifests = broken_manifests(tmp_path, "suites/locality/destinationrule-echo-failover.yaml", breakage)
    result = run_suites(LOCALITY, "--manifests", str(manifests))
    assert result.returncode == 1, result.stdout[-3000:]
    assert "2 failed" in result.stdout
    assert "locality load balancing is off" in result.stdout, result.stdout[-3000:]


def test_failover_without_outlier_detection_fails_naming_it(tmp_path: Path) -> None:
    """No outlierDetection in the failover DestinationRule: Istio applies no failover priorities and never
    ejects, so the failover tests whose failover needs an ejection fail, and say why."""
    tests = ejection_tests()
    if not tests:
        pytest.skip(f"the lab cannot inject {' or '.join(EJECTION)} yet")
    manifests = broken_manifests(tmp_path, "suites/locality/destinationrule-echo-failover.yaml", _drop_outlier_detection)
    # traffic never comes home on such a mesh: wait for it only a second past the deadline
    result = run_suites(*tests, "--manifests", str(manifests), "--failover-bound", "failback_within=1")
    assert result.returncode == 1, result.stdout[-3000:]
    assert f"{len(tests)} failed" in result.stdout, result.stdout[-3000:]
    assert result.stdout.count("no failover: the local endpoint was never ejected (is outlierDetection set?)") >= len(tests), \
        result.stdout[-5000:]
    assert "locality failover is not in effect" in result.stdout, result.stdout[-5000:]


def _split(us: int, eu: int) -> Callable[[dict], None]:
    def edit(doc: dict) -> None:
        doc["spec"]["trafficPolicy"]["loadBalancer"]["localityLbSetting"]["distribute"][0]["to"] = {"us/*": us, "eu/*": eu}
    return edit


@pytest.mark.parametrize(("us", "eu"), [(70, 30), (90, 10)], ids=["70-30", "90-10"])
def test_a_wrong_split_fails_distribute_naming_the_weights(tmp_path: Path, us: int, eu: int) -> None:
    """The 80/20 check fails a lab switched to 70/30 or 90/10, and blames the weights, not locality LB being off."""
    manifests = broken_manifests(tmp_path, "suites/locality/destinationrule-echo-distribute.yaml", _split(us, eu))
    result = run_suites(DISTRIBUTE, "--manifests", str(manifests))
    assert result.returncode == 1, result.stdout[-3000:]
    assert f"the client's locality weights are eu {eu}%, us {us}%, not the expected eu 20%, us 80%" in result.stdout, result.stdout[-3000:]
    assert "locality load balancing is off" not in result.stdout
