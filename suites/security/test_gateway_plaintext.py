"""mTLS across the east-west hop: the gateway's 15443 passes only Istio mTLS, never plaintext."""

from __future__ import annotations

import pytest

from eastwest.mesh import Mesh
from eastwest.workloads import GATEWAY_PORT, SLEEP

pytestmark = [pytest.mark.core, pytest.mark.features("multi-network", "mtls", "raw-tcp-probe")]

PLAINTEXT_REQUEST = b"GET / HTTP/1.1\r\nHost: echo.echo.svc.cluster.local\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize("gateway_cluster", ["us", "eu"])
def test_plaintext_to_15443_is_refused(mesh: Mesh, gateway_cluster: str) -> None:
    """Plain HTTP sent to a gateway's 15443 gets no answer: the gateway closes the connection."""
    (client,) = [c for c in mesh.clusters.values() if c.name != gateway_cluster]
    address = mesh.cluster(gateway_cluster).gateway_address()
    assert address, f"the {gateway_cluster} gateway has no address"
    result = client.probe(SLEEP, address, GATEWAY_PORT, send=PLAINTEXT_REQUEST)
    assert not result.reply.startswith(b"HTTP/"), f"the {gateway_cluster} gateway answered plaintext HTTP on {GATEWAY_PORT}: {result.summary()}"
    assert not result.connected or result.closed_by_peer, (
        f"expected the {gateway_cluster} gateway to refuse or close a plaintext connection; {result.summary()}"
    )
