"""Where the lab must behave as Istio does for failover to mean anything (chaos-failover.md §3.3).

With the locality-failover DestinationRule (connect timeout 1 s, outlier detection with one
consecutive error, interval 1 s, base ejection 5 s) in both clusters:

- outbound endpoints come through EDS, as istiod sends them, so an endpoint update keeps the
  outlier state of the hosts that stay (a STATIC cluster is replaced, and every ejection with it);
- with outlierDetection present the panic threshold is minHealthPercent, 0 unless set, as istiod
  sets it: with every endpoint ejected Envoy answers "no healthy upstream" at once (UH);
- a replacement pod is published only once ready, so failback comes at once, not after an ejection.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from eastwest.backends.lab.mesh import LabMesh
from eastwest.mesh import Cluster
from eastwest.support.manifest import Document
from eastwest.support.waiting import wait_until
from eastwest.workloads import ECHO_UPSTREAM, ECHO_URL, SLEEP
from tests.labs import running_lab

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="the lab needs unshare (util-linux)")

BASE_EJECTION = 5.0  # the DestinationRule's baseEjectionTime
READY_WITHIN = 15.0


@pytest.fixture(scope="module")
def lab() -> Iterator[LabMesh]:
    with running_lab("locality/destinationrule-echo-failover.yaml") as mesh:
        yield mesh


def chaos(kind: str, name: str, spec: dict[str, Any]) -> Document:
    body = {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": kind, "metadata": {"name": name, "namespace": "echo"},
            "spec": {"mode": "all", "selector": {"labelSelectors": {"app": "echo"}}, **spec}}
    return Document(body, f"test:{name}")


def us_echo_ejected(us: Cluster) -> bool:
    return any(e.address.startswith("10.10.") and not e.healthy for e in us.proxy_endpoints(SLEEP, ECHO_UPSTREAM))


def settled(us: Cluster) -> None:
    """Every US request served in the US again (no ejection left from an earlier test)."""
    wait_until(lambda: all(r.ok and r.cluster == "us" for r in us.call(SLEEP, ECHO_URL, count=5)), within=2 * BASE_EJECTION + 5,
               interval=0.5, what="US traffic served locally")


def test_outbound_clusters_are_eds_with_istiods_panic_threshold(lab: LabMesh) -> None:
    dump = lab.cluster("us").proxy_config_dump(SLEEP)
    clusters = [c for c in dump["configs"] if c["@type"].endswith("ClustersConfigDump")][0]["dynamic_active_clusters"]
    (echo,) = [c["cluster"] for c in clusters if c["cluster"]["name"] == ECHO_UPSTREAM]
    assert echo["type"] == "EDS", echo
    assert echo["common_lb_config"].get("healthy_panic_threshold", {}).get("value", 0) == 0, echo["common_lb_config"]


def test_an_ejection_survives_an_endpoint_update(lab: LabMesh) -> None:
    us, eu = lab.cluster("us"), lab.cluster("eu")
    settled(us)
    with us.inject(chaos("HTTPChaos", "abort-us", {"target": "Request", "port": 8080, "abort": True})):
        wait_until(lambda: bool(us.call(SLEEP, ECHO_URL, count=2)) and us_echo_ejected(us), within=3, interval=0.1,
                   what="the aborting US echo ejected")
        ejected_at = time.monotonic()
        # the EU echo is replaced: the US client's endpoints for echo change twice (EU gone, EU back)
        with eu.inject(chaos("PodChaos", "kill-eu", {"action": "pod-kill"})):
            wait_until(lambda: any(e.address.startswith("172.") for e in us.proxy_endpoints(SLEEP, ECHO_UPSTREAM)) and
                       any(p.namespace == "echo" and p.ready for p in lab.status().clusters["eu"].pods),
                       within=READY_WITHIN, interval=0.1, what="the EU echo replaced and published")
        assert time.monotonic() - ejected_at < BASE_EJECTION, "too slow to tell an ejection kept from one renewed"
        assert us_echo_ejected(us), "the US echo's ejection was lost with an endpoint update (the cluster was replaced)"


def test_every_endpoint_ejected_fails_fast_with_no_healthy_upstream(lab: LabMesh) -> None:
    us, eu = lab.cluster("us"), lab.cluster("eu")
    settled(us)
    abort = chaos("HTTPChaos", "abort-all", {"target": "Request", "port": 8080, "abort": True})
    with us.inject(abort), eu.inject(abort):
        wait_until(lambda: "UH" in {r.response_flags for r in us.call(SLEEP, ECHO_URL, count=4)}, within=3, interval=0.1,
                   what="both localities ejected")
        answers = us.call(SLEEP, ECHO_URL, count=10)
    # Envoy's default 50 % panic threshold would send these to the ejected hosts (503 from their fault filter)
    assert all(r.status == 503 and r.response_flags == "UH" for r in answers), [r.summary() for r in answers]
    assert max(r.latency_s for r in answers) < 0.1


def test_failback_after_pod_kill_comes_as_soon_as_the_replacement_is_ready(lab: LabMesh) -> None:
    us = lab.cluster("us")
    settled(us)
    with us.inject(chaos("PodChaos", "kill-us", {"action": "pod-kill"})):
        assert all(r.ok and r.cluster == "eu" for r in us.call(SLEEP, ECHO_URL, count=5))
        wait_until(lambda: any(p.namespace == "echo" and p.ready and p.alive for p in lab.status().clusters["us"].pods),
                   within=READY_WITHIN, interval=0.02, what="the replacement US echo ready")
        ready_at = time.monotonic()
        back = wait_until(lambda: all(r.ok and r.cluster == "us" for r in us.call(SLEEP, ECHO_URL, count=3)), within=BASE_EJECTION,
                          interval=0.0, what="US traffic back in the US")
        failback = time.monotonic() - ready_at
    assert back and failback < 1.0, f"failback took {failback:.2f}s after the replacement was ready (ejected on publication?)"
