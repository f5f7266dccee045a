"""Topology: a client's endpoints for a remote service point at the remote gateway (split-horizon EDS)."""

from __future__ import annotations

import pytest

from eastwest.mesh import Cluster
from eastwest.workloads import ECHO, ECHO_UPSTREAM, GATEWAY_PORT, SLEEP

pytestmark = [pytest.mark.core, pytest.mark.features("multi-network", "proxy-config-dump")]


def test_us_client_reaches_eu_echo_through_the_eu_gateway(us: Cluster, eu: Cluster) -> None:
    """The US sidecar's endpoints for echo are US pod IPs plus the EU gateway on 15443, never an EU pod IP."""
    endpoints = us.proxy_endpoints(SLEEP, ECHO_UPSTREAM)
    seen = [f"{e.address}:{e.port} ({e.locality or 'no locality'})" for e in endpoints]
    gateway = (eu.gateway_address(), GATEWAY_PORT)
    leaked = sorted(set(eu.pod_ips(ECHO)) & {e.address for e in endpoints})
    assert not leaked, f"EU pod IPs {leaked} appear as endpoints in the US: the mesh treats the networks as flat; observed {seen}"
    assert gateway in [(e.address, e.port) for e in endpoints], (
        f"expected the EU gateway {gateway[0]}:{gateway[1]} among {ECHO_UPSTREAM} endpoints; observed {seen} (the US control "
        f"plane has no EU endpoint behind a gateway: it does not see the EU cluster, or knows no gateway for its network)"
    )
    assert set(us.pod_ips(ECHO)) <= {e.address for e in endpoints}, f"expected the US echo pods {us.pod_ips(ECHO)} as local endpoints; observed {seen}"
