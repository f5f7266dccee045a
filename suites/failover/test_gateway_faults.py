"""The EU east-west gateway down while a US client calls a service that only EU runs.

Nothing can fail over: the EU gateway is the only way to echo-eu-only. A conformant mesh
never answers from the wrong cluster, fails fast once the gateway's endpoint is ejected
(Istio disables the panic threshold, so the client proxy answers 503 UH at once), and
serves again once the gateway is back. Meanwhile EU's own clients, which never use their
gateway for local traffic, see nothing at all: no error, nothing served elsewhere.
"""

from __future__ import annotations

import pytest

from eastwest.mesh import Cluster
from eastwest.settings import FailoverBounds
from eastwest.support.expectations import nothing_else_answers, stays_home
from eastwest.workloads import EASTWEST_GATEWAY, ECHO_EU_ONLY_URL, ECHO_URL, SLEEP

ECHO_EU_ONLY_UPSTREAM = "outbound|80||echo-eu-only.echo.svc.cluster.local"

pytestmark = [
    pytest.mark.extended,
    pytest.mark.features("multi-network", "locality-lb"),
    pytest.mark.manifests("locality/destinationrule-echo-failover.yaml", "security/echo-in-eu-only.yaml",
                          "failover/destinationrule-echo-eu-only.yaml"),
]


@pytest.mark.faults("PodChaos/pod-kill")
def test_eu_gateway_killed_us_calls_to_an_eu_only_service_fail_fast_and_recover(
        us: Cluster, eu: Cluster, chaos, failover_bounds: FailoverBounds) -> None:
    """EU gateway killed: US calls to echo-eu-only fail fast, never answered by US, and recover; EU's local traffic is untouched."""
    with chaos.load(us, SLEEP, ECHO_EU_ONLY_URL, home="eu") as remote, chaos.load(eu, SLEEP, ECHO_URL, target="us") as local:
        chaos.steady()
        with chaos.fault(eu, "eastwest-gateway-pod-kill.yaml", replaced=EASTWEST_GATEWAY):
            chaos.hold(ejected_at=(us, SLEEP, ECHO_EU_ONLY_UPSTREAM), region="eu")
        chaos.steady_state(remote)
    chaos.expect(remote, nothing_else_answers(failover_bounds), (local, stays_home(failover_bounds)))


@pytest.mark.faults("NetworkChaos/partition")
def test_eu_gateway_partitioned_us_calls_to_an_eu_only_service_fail_fast_and_recover(
        us: Cluster, eu: Cluster, chaos, failover_bounds: FailoverBounds) -> None:
    """EU gateway partitioned: US calls to echo-eu-only time out until ejected, then fail fast, and recover; EU's local traffic is untouched."""
    with chaos.load(us, SLEEP, ECHO_EU_ONLY_URL, home="eu") as remote, chaos.load(eu, SLEEP, ECHO_URL, target="us") as local:
        chaos.steady()
        with chaos.fault(eu, "eastwest-gateway-partition.yaml"):
            chaos.hold(ejected_at=(us, SLEEP, ECHO_EU_ONLY_UPSTREAM), region="eu")
        chaos.steady_state(remote)
    chaos.expect(remote, nothing_else_answers(failover_bounds, ejected=True), (local, stays_home(failover_bounds)))
