"""Mutual authentication through the east-west hop: the EU server accepts only a mesh certificate of its trust domain."""

from __future__ import annotations

import pytest

from eastwest.mesh import Cluster, TlsResult
from eastwest.support import security_checks
from eastwest.support.eventually import Eventually
from eastwest.workloads import ECHO_EU_ONLY_HOST, ECHO_EU_ONLY_SNI, GATEWAY_PORT, SIDECAR_ALPNS, SLEEP

pytestmark = [
    pytest.mark.core,
    pytest.mark.features("multi-network", "mtls", "raw-tls-client"),
    pytest.mark.manifests("security/echo-in-eu-only.yaml"),
]

REQUEST = f"GET / HTTP/1.1\r\nHost: {ECHO_EU_ONLY_HOST}\r\nConnection: close\r\n\r\n".encode()


@pytest.mark.parametrize("certificate", ["none", "untrusted-root", "other-trust-domain"])
def test_eu_server_refuses_a_client_without_a_mesh_certificate_of_its_trust_domain(
    us: Cluster, eu: Cluster, eventually: Eventually, certificate: str
) -> None:
    """A US client completing TLS through the EU gateway with no certificate, another root's or another trust domain's gets no answer."""
    gateway = eu.gateway_address()
    assert gateway, "the EU gateway has no address"

    def connect(presenting: str) -> TlsResult:
        return us.tls_connect(SLEEP, gateway, GATEWAY_PORT, sni=ECHO_EU_ONLY_SNI, alpn=SIDECAR_ALPNS,
                              certificate=presenting, send=REQUEST)

    eventually(lambda: connect("own"), until=security_checks.answered(),
               what="control: the same client with its own mesh certificate answered through the EU gateway")
    result = connect(certificate)
    reason = security_checks.refused_client(us.topology.trust_domain, certificate)(result)
    assert reason is None, reason
    assert result.handshake_completed or result.alert, (
        f"expected the refusal to come from the EU server's TLS, not from the path; observed {security_checks.refusal_evidence(result)}"
    )
