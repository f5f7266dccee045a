"""Topology: pod networks are not routed across clusters."""

from __future__ import annotations

import pytest

from eastwest.mesh import Cluster
from eastwest.workloads import ECHO, SLEEP

pytestmark = [pytest.mark.core, pytest.mark.features("multi-network", "raw-tcp-probe")]

ECHO_PORT = 8080


def test_us_pod_cannot_reach_an_eu_pod_ip(us: Cluster, eu: Cluster) -> None:
    """A US pod cannot open a connection to an EU pod IP, while it can reach a US pod IP the same way."""
    local = us.probe(SLEEP, us.pod_ips(ECHO)[0], ECHO_PORT)
    assert local.connected, f"control failed: a US pod cannot reach a US echo pod either ({local.summary()}), so the probe proves nothing"
    for ip in eu.pod_ips(ECHO):
        remote = us.probe(SLEEP, ip, ECHO_PORT)
        assert not remote.connected, f"a US pod reached EU pod {ip}:{ECHO_PORT} directly: the pod networks are flat, not multi-network"
