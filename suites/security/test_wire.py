"""What crosses the wire between the clusters: only Istio mTLS at TLS 1.3, nothing in clear."""

from __future__ import annotations

import pytest

from eastwest.mesh import Cluster, Mesh
from eastwest.support import checks, security_checks
from eastwest.support.eventually import Eventually
from eastwest.workloads import ECHO_EU_ONLY_SNI, ECHO_EU_ONLY_URL, WIRE_CLIENT

pytestmark = [
    pytest.mark.core,
    pytest.mark.features("multi-network", "mtls", "transit-capture"),
    pytest.mark.manifests("security/echo-in-eu-only.yaml", "security/client-for-wire-capture.yaml"),
]


def test_every_stream_between_the_clusters_is_istio_mtls_at_tls_1_3(mesh: Mesh, us: Cluster, eu: Cluster, eventually: Eventually) -> None:
    """Every TCP stream captured between the clusters during cross-cluster calls is TLS 1.3 with Istio's SNI and ALPN, and no plaintext crosses."""
    with mesh.capture_transit(limit=mesh.timeouts.convergence + 10) as capture:
        eventually(
            lambda: us.call(WIRE_CLIENT, ECHO_EU_ONLY_URL, count=5),
            until=checks.served_from(eu.name),
            what="a fresh US client reaching the EU-only echo across the transit",
        )
    assert capture.report is not None
    reason = security_checks.istio_mtls_only(ECHO_EU_ONLY_SNI)(capture.report)
    assert reason is None, f"{reason}\n\nwhat the capture saw:\n{capture.report.summary()}"
