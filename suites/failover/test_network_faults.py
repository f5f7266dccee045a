"""Failover under network faults on the US echo pods: partition, delay above and below the
connect timeout, packet loss.

A partition or a delay longer than the DestinationRule's connectTimeout (1 s) makes a new
connection fail: the endpoint is ejected and traffic moves to EU. A delay well inside it only
slows requests, and must not move traffic. Loss is mostly absorbed by TCP; its remote share
is reported and its errors bounded.
"""

from __future__ import annotations

import pytest

from eastwest.mesh import Cluster
from eastwest.settings import FailoverBounds
from eastwest.support.expectations import absorbs_loss, fails_over, stays_home
from eastwest.support.faults import go_duration
from eastwest.workloads import ECHO_UPSTREAM, ECHO_URL, SLEEP

pytestmark = [
    pytest.mark.extended,
    pytest.mark.features("multi-network", "locality-lb"),
    pytest.mark.manifests("locality/destinationrule-echo-failover.yaml"),
]


@pytest.mark.faults("NetworkChaos/partition")
def test_us_echo_partitioned_from_everything_fails_over_to_eu_and_back(us: Cluster, chaos, failover_bounds: FailoverBounds) -> None:
    """US echo partitioned: new connections time out after connectTimeout, the endpoint is ejected, traffic moves to EU and back."""
    with chaos.load(us, SLEEP, ECHO_URL, target="eu") as load:
        chaos.steady()
        with chaos.fault(us, "echo-partition.yaml"):
            chaos.hold(ejected_at=(us, SLEEP, ECHO_UPSTREAM))
        chaos.steady_state(load)
    chaos.expect(load, fails_over(failover_bounds, to="eu", silent=True, ejected=True))


@pytest.mark.faults("NetworkChaos/delay")
def test_delay_above_the_connect_timeout_fails_over_to_eu_and_back(us: Cluster, chaos, failover_bounds: FailoverBounds) -> None:
    """A 2 s delay on US echo (connectTimeout 1 s): connections time out as in a partition, traffic moves to EU and back."""
    with chaos.load(us, SLEEP, ECHO_URL, target="eu") as load:
        chaos.steady()
        with chaos.fault(us, "echo-delay-above-connect-timeout.yaml"):
            chaos.hold(ejected_at=(us, SLEEP, ECHO_UPSTREAM))
        chaos.steady_state(load)
    chaos.expect(load, fails_over(failover_bounds, to="eu", silent=True, ejected=True))


@pytest.mark.faults("NetworkChaos/delay")
def test_delay_below_the_connect_timeout_only_slows_requests(us: Cluster, chaos, failover_bounds: FailoverBounds) -> None:
    """A 200 ms delay on US echo: every request still succeeds in US, only slower; nothing moves to EU."""
    latency = go_duration(chaos.document(us, "echo-delay-below-connect-timeout.yaml").body["spec"]["delay"]["latency"])
    with chaos.load(us, SLEEP, ECHO_URL, target="eu") as load:
        chaos.steady()
        with chaos.fault(us, "echo-delay-below-connect-timeout.yaml"):
            chaos.hold()
        chaos.steady_state(load)
    chaos.expect(load, stays_home(failover_bounds, added_latency=latency))


@pytest.mark.faults("NetworkChaos/loss")
def test_packet_loss_on_us_echo_fails_few_requests(us: Cluster, chaos, failover_bounds: FailoverBounds) -> None:
    """30 % packet loss on US echo: TCP retransmits absorb most of it; few requests fail, the remote share is reported."""
    with chaos.load(us, SLEEP, ECHO_URL, target="eu") as load:
        chaos.steady()
        with chaos.fault(us, "echo-loss.yaml"):
            chaos.hold()
        chaos.steady_state(load)
    chaos.expect(load, absorbs_loss(failover_bounds))
