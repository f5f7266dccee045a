"""What the east-west gateway exposes: from the other cluster only its east-west ports, none of them plaintext to
mesh services; and no proxy's admin API answers from outside its pod.

A real east-west gateway (the istio/gateway chart with networkGateway) publishes 15021 (status), 15443
(mTLS passthrough), and 15012/15017 (istiod and its webhook, served only where istiod is exposed through
it); nothing else may be open on its external address.
"""

from __future__ import annotations

import pytest

from eastwest.mesh import Mesh, ProbeResult
from eastwest.support import security_checks
from eastwest.workloads import EASTWEST_GATEWAY, ECHO, GATEWAY_PORT, SLEEP

pytestmark = [pytest.mark.core, pytest.mark.features("multi-network", "gateway-port-scan")]

EAST_WEST_PORTS = (15021, GATEWAY_PORT, 15012, 15017)
#: the well-known Istio proxy and istiod ports, the range around them, and common application ports: 108 in all
SCAN_PORTS = sorted({*range(15000, 15100), GATEWAY_PORT, 80, 443, 8000, 8080, 8443, 9080, 9090})
PLAINTEXT_REQUEST = b"GET / HTTP/1.1\r\nHost: echo.echo.svc.cluster.local\r\nConnection: close\r\n\r\n"
ADMIN_REQUEST = b"GET /server_info HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
ADMIN_PORT = 15000


@pytest.mark.parametrize("gateway_cluster", ["us", "eu"])
def test_the_gateway_serves_only_east_west_ports_from_the_other_cluster(mesh: Mesh, gateway_cluster: str) -> None:
    """From the other cluster, a scan of a gateway's address finds 15443 and only east-west ports, none serving plaintext."""
    (client,) = mesh.others(gateway_cluster)
    address = mesh.cluster(gateway_cluster).gateway_address()
    assert address, f"the {gateway_cluster} gateway has no address"
    scan = client.scan(SLEEP, address, SCAN_PORTS, send=PLAINTEXT_REQUEST)
    reason = security_checks.only_ports(EAST_WEST_PORTS, [GATEWAY_PORT], f"the {gateway_cluster} gateway's address {address}")(scan)
    assert reason is None, reason


@pytest.mark.features("raw-tcp-probe")
def test_no_proxy_admin_api_answers_from_outside_its_pod(mesh: Mesh) -> None:
    """The admin API of sidecars and gateways answers neither other pods of its cluster nor the other cluster."""
    results: dict[str, ProbeResult] = {}
    for cluster in mesh.clusters.values():
        for workload in (ECHO, EASTWEST_GATEWAY):
            for ip in cluster.pod_ips(workload):
                results[f"{cluster.name}/{workload} at {ip}:{ADMIN_PORT} from {cluster.name}/{SLEEP}"] = cluster.probe(
                    SLEEP, ip, ADMIN_PORT, send=ADMIN_REQUEST)
        address = cluster.gateway_address()
        for other in mesh.others(cluster.name):
            if address:
                results[f"{cluster.name}/{EASTWEST_GATEWAY} at {address}:{ADMIN_PORT} from {other.name}/{SLEEP}"] = other.probe(
                    SLEEP, address, ADMIN_PORT, send=ADMIN_REQUEST)
    reason = security_checks.admin_unreachable(results)
    assert reason is None, reason
