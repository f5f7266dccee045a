"""Failover when US echo pods die, stop serving, or lose their app: US traffic moves to EU and comes back.

Each test: a US client streams requests to echo from before the fault until after it is
gone (steady state), the fault is injected into US and held, then removed; the figures of
the stream are judged against bounds derived from the failover DestinationRule
(``FailoverBounds``; ../shared/notes/chaos-failover.md §3.2).
"""

from __future__ import annotations

import pytest

from eastwest.mesh import Cluster
from eastwest.settings import FailoverBounds
from eastwest.support.expectations import fails_over
from eastwest.workloads import ECHO, ECHO_UPSTREAM, ECHO_URL, SLEEP

pytestmark = [
    pytest.mark.extended,
    pytest.mark.features("multi-network", "locality-lb"),
    pytest.mark.manifests("locality/destinationrule-echo-failover.yaml"),
]


@pytest.mark.faults("PodChaos/pod-kill")
def test_every_us_echo_pod_killed_fails_over_to_eu_and_back(us: Cluster, chaos, failover_bounds: FailoverBounds) -> None:
    """Every US echo pod killed: traffic moves to EU within the deadline and returns to the replacement pods."""
    with chaos.load(us, SLEEP, ECHO_URL, target="eu") as load:
        chaos.steady()
        with chaos.fault(us, "echo-pod-kill.yaml", replaced=ECHO):
            chaos.hold(ejected_at=(us, SLEEP, ECHO_UPSTREAM))
        chaos.steady_state(load)
    chaos.expect(load, fails_over(failover_bounds, to="eu"))


@pytest.mark.faults("PodChaos/pod-failure")
def test_us_echo_pods_failing_for_a_while_fail_over_to_eu_and_back(us: Cluster, chaos, failover_bounds: FailoverBounds) -> None:
    """US echo pods failing (same pods, same IPs, nothing serving): traffic moves to EU and comes back once they serve again."""
    with chaos.load(us, SLEEP, ECHO_URL, target="eu") as load:
        chaos.steady()
        with chaos.fault(us, "echo-pod-failure.yaml"):
            chaos.hold(ejected_at=(us, SLEEP, ECHO_UPSTREAM))
        chaos.steady_state(load)
    chaos.expect(load, fails_over(failover_bounds, to="eu"))


@pytest.mark.faults("PodChaos/container-kill")
def test_us_echo_app_killed_behind_its_sidecar_fails_over_on_503(us: Cluster, chaos, failover_bounds: FailoverBounds) -> None:
    """The US echo app killed, its sidecar alive: the sidecar answers 503, one 503 ejects it, traffic moves to EU and back."""
    with chaos.load(us, SLEEP, ECHO_URL, target="eu") as load:
        chaos.steady()
        with chaos.fault(us, "echo-app-container-kill.yaml"):
            chaos.hold(ejected_at=(us, SLEEP, ECHO_UPSTREAM))
        chaos.steady_state(load)
    chaos.expect(load, fails_over(failover_bounds, to="eu", answers_5xx=True))
