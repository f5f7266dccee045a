"""Topology: every cluster has an east-west gateway reachable from the other network on 15443."""

from __future__ import annotations

import pytest

from eastwest.mesh import Mesh
from eastwest.workloads import GATEWAY_PORT, SLEEP

pytestmark = [pytest.mark.core, pytest.mark.features("multi-network", "raw-tcp-probe")]


@pytest.mark.parametrize("gateway_cluster", ["us", "eu"])
def test_gateway_has_an_address_and_listens_on_15443(mesh: Mesh, gateway_cluster: str) -> None:
    """The gateway has an external address, and a pod of the other cluster connects to it on 15443."""
    gateway = mesh.cluster(gateway_cluster)
    (client,) = [c for c in mesh.clusters.values() if c.name != gateway_cluster]
    address = gateway.gateway_address()
    assert address, f"the {gateway_cluster} east-west gateway has no external address"
    result = client.probe(SLEEP, address, GATEWAY_PORT)
    assert result.connected, f"{client.name} pod could not connect to the {gateway_cluster} gateway at {address}:{GATEWAY_PORT}: {result.summary()}"
