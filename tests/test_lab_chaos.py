"""Faults through a running lab: each one lands (AllInjected), acts, and its removal restores the pod.

The lab runs the base install (no DestinationRule: requests to echo go round robin to both
clusters' endpoints), so every check reads one thing: a US pod's answers, its address, its
readiness, or the US client's endpoint table. Failover under these faults is the failover
suites' subject; here it is the mechanism.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from eastwest.backends.lab.mesh import LabMesh
from eastwest.backends.lab.protocol import PodStatus
from eastwest.mesh import Cluster
from eastwest.support.errors import FaultNotInjected, FaultUnsupported
from eastwest.support.manifest import Document
from eastwest.support.waiting import wait_until
from eastwest.workloads import ECHO, ECHO_UPSTREAM, ECHO_URL, SLEEP
from tests.labs import running_lab

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="the lab needs unshare (util-linux)")

READY_WITHIN = 15.0  # a replaced or restarted pod: the kubelet's 1 s, then Envoy and the echo app starting on a loaded machine


@pytest.fixture(scope="module")
def lab() -> Iterator[LabMesh]:
    with running_lab() as mesh:
        yield mesh


def chaos(kind: str, name: str, spec: dict[str, Any], namespace: str = "echo") -> Document:
    body = {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": kind, "metadata": {"name": name, "namespace": namespace},
            "spec": {"mode": "all", "selector": {"labelSelectors": {"app": "echo"}}, **spec}}
    return Document(body, f"test:{name}")


def echo_pod(lab: LabMesh) -> PodStatus:
    (pod,) = [p for p in lab.status().clusters["us"].pods if p.namespace == "echo"]
    return pod


def us_answers(us: Cluster, n: int = 8) -> list[str]:
    """Who answered each of n requests from the US client: a US pod's name, 'eu', or the status/error."""
    out = []
    for r in us.call(SLEEP, ECHO_URL, count=n, timeout=2.0):
        out.append(str(r.pod) if r.ok and r.cluster == "us" else "eu" if r.ok else str(r.status or r.error))
    return out


def wait_ready(lab: LabMesh, *, not_named: str | None = None) -> PodStatus:
    def check() -> PodStatus | None:
        pods = [p for p in lab.status().clusters["us"].pods if p.namespace == "echo"]
        return pods[0] if len(pods) == 1 and pods[0].ready and pods[0].alive and pods[0].name != not_named else None

    return wait_until(check, within=READY_WITHIN, interval=0.05, what="the US echo pod ready")


def active_listeners(cluster: Cluster, workload: Any) -> str:
    """The listeners a proxy serves new connections with (not the ones still draining)."""
    dump = cluster.proxy_config_dump(workload)
    listeners = [c for c in dump["configs"] if c["@type"].endswith("ListenersConfigDump")][0]
    return str([d.get("active_state") for d in listeners.get("dynamic_listeners", [])])


def us_endpoints(us: Cluster) -> list[str]:
    return [e.address for e in us.proxy_endpoints(SLEEP, ECHO_UPSTREAM) if e.address.startswith("10.10.")]


def test_partition_cuts_the_pod_off_until_recovered(lab: LabMesh) -> None:
    us = lab.cluster("us")
    ip = us.pod_ips(ECHO)[0]
    assert us.probe(SLEEP, ip, 8080).connected, "control: the echo pod answers before the fault"
    with us.inject(chaos("NetworkChaos", "partition", {"action": "partition", "direction": "both"})) as status:
        assert status.all_injected and status.records == (f"echo/{echo_pod(lab).name}: Injected (selector: partition rules in place)",)
        cut = us.probe(SLEEP, ip, 8080, timeout=1.0)
        assert not cut.connected and cut.error == "timed out", cut.summary()
    assert us.probe(SLEEP, ip, 8080).connected, "the pod is still cut off after recovery"


def test_an_interrupted_block_still_removes_the_fault(lab: LabMesh) -> None:
    us = lab.cluster("us")
    ip = us.pod_ips(ECHO)[0]
    fault = chaos("NetworkChaos", "interrupted", {"action": "partition"})
    with pytest.raises(KeyboardInterrupt):
        with us.inject(fault):
            raise KeyboardInterrupt
    assert us.probe(SLEEP, ip, 8080).connected, "the fault outlived its block"
    with us.inject(fault) as again:  # the lab forgot it: the same name injects again
        assert again.all_injected


def test_duration_recovers_on_its_own(lab: LabMesh) -> None:
    us = lab.cluster("us")
    ip = us.pod_ips(ECHO)[0]
    with us.inject(chaos("NetworkChaos", "brief", {"action": "partition", "duration": "1s"})):
        assert not us.probe(SLEEP, ip, 8080, timeout=0.5).connected
        wait_until(lambda: us.probe(SLEEP, ip, 8080, timeout=0.5).connected, within=5, interval=0.1,
                   what="the partition lifted after its 1s duration")


def test_a_selector_that_matches_nothing_never_lands(lab: LabMesh) -> None:
    us = lab.cluster("us")
    with pytest.raises(FaultNotInjected, match="no pod in us matches the selector"):
        with us.inject(chaos("NetworkChaos", "nobody", {"action": "partition", "selector": {"labelSelectors": {"app": "nobody"}}})):
            pass


def test_http_abort_answers_503_from_the_sidecar_until_recovered(lab: LabMesh) -> None:
    us = lab.cluster("us")
    pod = echo_pod(lab).name
    with us.inject(chaos("HTTPChaos", "abort", {"target": "Request", "port": 8080, "abort": True})):
        answers = us_answers(us, 12)
        # the first request to the pod may ride the connection opened before its listener changed (Envoy drains it)
        assert "503" in answers and answers.count(pod) <= 1, answers
        assert "envoy.extensions.filters.http.fault.v3.HTTPFault" in active_listeners(us, ECHO)
    assert "HTTPFault" not in active_listeners(us, ECHO), "the fault filter stayed in the sidecar"
    assert pod in us_answers(us, 8), "the US pod does not answer again after recovery"


def test_http_delay_holds_matching_requests(lab: LabMesh) -> None:
    us = lab.cluster("us")
    pod = echo_pod(lab).name
    with us.inject(chaos("HTTPChaos", "delay", {"target": "Request", "port": 8080, "delay": "300ms", "path": "/slow*"})):
        # the first request to the pod may ride the connection opened before its listener changed (Envoy drains it)
        slow = [r for r in us.call(SLEEP, ECHO_URL + "slow?x=1", count=9, timeout=3.0) if r.ok and r.pod == pod][1:]
        fast = [r for r in us.call(SLEEP, ECHO_URL, count=8, timeout=3.0) if r.ok and r.pod == pod]
        # Envoy's timers may fire a millisecond or two early (its event loop's resolution)
        assert slow and all(r.latency_s >= 0.29 for r in slow), [r.latency_s for r in slow]
        assert fast and all(r.latency_s < 0.2 for r in fast), "a path the fault does not match was delayed"


def test_http_faults_need_a_sidecar_listener(lab: LabMesh) -> None:
    us = lab.cluster("us")
    with pytest.raises(FaultUnsupported, match="no inbound listener on port 9999"):
        with us.inject(chaos("HTTPChaos", "wrong-port", {"target": "Request", "port": 9999, "abort": True})):
            pass


def test_pod_kill_replaces_the_pod_with_a_new_ip_published_only_when_ready(lab: LabMesh) -> None:
    us = lab.cluster("us")
    before = echo_pod(lab)
    with us.inject(chaos("PodChaos", "kill", {"action": "pod-kill"})) as status:
        assert status.all_injected
        assert us_endpoints(us) == [], "the killed pod is still an endpoint of the US client"
        assert all(a == "eu" for a in us_answers(us, 6)), "a request reached the deleted pod"
        after = wait_ready(lab, not_named=before.name)
        ready_at = time.monotonic()
    assert after.ip != before.ip and after.name != before.name, f"not a new pod: {after}"
    assert us_endpoints(us) == [after.ip]
    served = wait_until(lambda: after.name in us_answers(us, 4), within=1.0, interval=0.0, what="the new pod serving")
    assert served and time.monotonic() - ready_at < 1.5


def test_pod_failure_keeps_the_ip_withdraws_the_endpoint_and_restores_both(lab: LabMesh) -> None:
    us = lab.cluster("us")
    before = echo_pod(lab)
    with us.inject(chaos("PodChaos", "fail", {"action": "pod-failure", "duration": "30s"})):
        assert not echo_pod(lab).alive
        wait_until(lambda: us_endpoints(us) == [], within=5, interval=0.1, what="the failed pod withdrawn after the readiness lag")
        assert all(a == "eu" for a in us_answers(us, 6))
    after = wait_ready(lab)
    assert (after.name, after.ip) == (before.name, before.ip), "pod-failure replaced the pod"
    wait_until(lambda: before.name in us_answers(us, 4), within=2, interval=0.0, what="the pod serving again")


@pytest.mark.parametrize("container", ["echo", "istio-proxy"])
def test_container_kill_restarts_the_container_like_a_kubelet(lab: LabMesh, container: str) -> None:
    us = lab.cluster("us")
    before = echo_pod(lab)
    with us.inject(chaos("PodChaos", f"kill-{container}", {"action": "container-kill", "containerNames": [container]})) as status:
        assert status.records == (f"echo/{before.name}/{container}: Injected (selector: killed (SIGKILL))",)
        answers = us_answers(us, 4)
        if container == "echo":  # the live sidecar answers for the dead app
            assert "503" in answers, answers
    time.sleep(1.2)  # the kubelet notices the dead container after its relist (1 s)
    after = wait_ready(lab)
    assert (after.name, after.ip) == (before.name, before.ip)
    if container == "istio-proxy":
        assert after.envoy_pid != before.envoy_pid, "the sidecar was not restarted"
    wait_until(lambda: before.name in us_answers(us, 4), within=2, interval=0.0, what="the pod serving again")


def test_the_gateway_refuses_connections_while_killed_and_comes_back(lab: LabMesh) -> None:
    us, eu = lab.cluster("us"), lab.cluster("eu")
    address = eu.gateway_address()
    assert address is not None and us.probe(SLEEP, address, 15443).connected
    gateway = chaos("PodChaos", "kill-gw", {"action": "pod-kill", "selector": {"labelSelectors": {"istio": "eastwestgateway"}}},
                    namespace="istio-system")
    with eu.inject(gateway):
        refused = us.probe(SLEEP, address, 15443)
        assert not refused.connected and refused.error == "connection refused", refused.summary()
        wait_until(lambda: us.probe(SLEEP, address, 15443).connected, within=READY_WITHIN, interval=0.1,
                   what="the replacement gateway listening on the external address")
    wait_until(lambda: "eu" in us_answers(us, 6), within=5, interval=0.1, what="US reaching EU through the new gateway")


def test_container_kill_of_a_container_the_pod_lacks_never_lands(lab: LabMesh) -> None:
    with pytest.raises(FaultNotInjected, match="no container named nginx"):
        with lab.cluster("us").inject(chaos("PodChaos", "no-such", {"action": "container-kill", "containerNames": ["nginx"]})):
            pass
