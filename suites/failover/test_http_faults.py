"""Failover under HTTP faults at the US echo: aborted requests, and requests that hang.

An abort answers 503 from the server's side: one 503 ejects the endpoint and traffic moves
to EU. A hang behind a live sidecar is different: no connection fails and nothing answers
5xx, so with Istio's defaults (no route timeout) nothing is ever ejected and every request
waits until its client gives up (as with Chaos Mesh's HTTPChaos, only connections opened after
the injection are affected: a request on a connection the client proxy already had may still
be answered until it closes). With a VirtualService route timeout, the request is answered 504
(UT) after it, which outlier detection counts as a gateway error: then it fails over.
"""

from __future__ import annotations

import math

import pytest

from eastwest.mesh import Cluster
from eastwest.settings import FailoverBounds
from eastwest.support.expectations import fails_over, hangs_without_failover
from eastwest.support.faults import go_duration
from eastwest.support.manifest import load as load_manifest
from eastwest.workloads import ECHO_UPSTREAM, ECHO_URL, SLEEP

pytestmark = [
    pytest.mark.extended,
    pytest.mark.features("multi-network", "locality-lb"),
    pytest.mark.manifests("locality/destinationrule-echo-failover.yaml"),
]

ROUTE_TIMEOUT = "failover/virtualservice-echo-timeout.yaml"


@pytest.mark.faults("HTTPChaos/abort")
def test_http_abort_on_us_echo_fails_over_to_eu_and_back(us: Cluster, chaos, failover_bounds: FailoverBounds) -> None:
    """Every request to US echo aborted (503 from its sidecar): one 503 ejects it, traffic moves to EU and back."""
    with chaos.load(us, SLEEP, ECHO_URL, target="eu") as load:
        chaos.steady()
        with chaos.fault(us, "echo-http-abort.yaml"):
            chaos.hold(ejected_at=(us, SLEEP, ECHO_UPSTREAM))
        chaos.steady_state(load)
    chaos.expect(load, fails_over(failover_bounds, to="eu", answers_5xx=True, ejected=True))


@pytest.mark.faults("HTTPChaos/delay")
def test_hang_behind_a_live_sidecar_never_fails_over_without_a_route_timeout(us: Cluster, chaos, failover_bounds: FailoverBounds) -> None:
    """US echo hangs behind its live sidecar, no route timeout: Istio never ejects it; every request times out, none moves to EU."""
    with chaos.load(us, SLEEP, ECHO_URL, target="eu") as load:
        chaos.steady()
        with chaos.fault(us, "echo-http-delay.yaml"):
            chaos.hold(ejected_at=(us, SLEEP, ECHO_UPSTREAM))
        chaos.steady_state(load)
    chaos.expect(load, hangs_without_failover(failover_bounds))


@pytest.mark.manifests(ROUTE_TIMEOUT, clusters=("us",))
@pytest.mark.faults("HTTPChaos/delay")
def test_hang_behind_a_live_sidecar_fails_over_with_a_route_timeout(us: Cluster, chaos, settings, failover_bounds: FailoverBounds) -> None:
    """US echo hangs, a VirtualService sets a 1 s route timeout: 504 UT ejects it, traffic moves to EU and back."""
    [route] = load_manifest(settings.manifests / "suites" / ROUTE_TIMEOUT, us.topology.variables(us.name), root=settings.manifests)
    timeout = go_duration(route.body["spec"]["http"][0]["timeout"])
    with chaos.load(us, SLEEP, ECHO_URL, target="eu") as load:
        chaos.steady()
        with chaos.fault(us, "echo-http-delay.yaml"):
            chaos.hold(ejected_at=(us, SLEEP, ECHO_UPSTREAM))
        chaos.steady_state(load)
    # until the first 504 ejects the endpoint, every request sent to it waits out the route timeout
    caught = math.ceil(failover_bounds.rate * timeout) + failover_bounds.onset_error_bound()
    chaos.expect(load, fails_over(failover_bounds, to="eu", answers_5xx=True, onset=caught,
                                  onset_setting="rate x the route timeout + onset_errors", ejected=True))
