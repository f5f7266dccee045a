"""Self-tests of the lab's tester operations on a running lab: the capture sees plaintext that crosses,
the raw TLS client reports what the server did, and scans stay bounded."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from eastwest.backends.lab.mesh import LabMesh
from eastwest.support import security_checks
from eastwest.workloads import ECHO_EU_ONLY_SNI, GATEWAY_PORT, SIDECAR_ALPNS, SLEEP
from tests.labs import running_lab

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="the lab needs unshare (util-linux)")

PLAINTEXT = b"GET / HTTP/1.1\r\nHost: echo.echo.svc.cluster.local\r\nX-Forwarded-Client-Cert: URI=spiffe://corp.local/ns/sleep/sa/sleep\r\n\r\n"


@pytest.fixture(scope="module")
def lab() -> Iterator[LabMesh]:
    with running_lab("security/echo-in-eu-only.yaml") as mesh:
        yield mesh


def test_the_capture_sees_plaintext_that_crosses_the_transit(lab: LabMesh) -> None:
    us, eu = lab.cluster("us"), lab.cluster("eu")
    gateway = eu.gateway_address()
    assert gateway
    with lab.capture_transit(limit=10) as capture:
        probe = us.probe(SLEEP, gateway, GATEWAY_PORT, send=PLAINTEXT)
    assert probe.connected
    assert capture.report is not None
    [stream] = [s for s in capture.report.streams if s.server == f"{gateway}:{GATEWAY_PORT}"]
    assert stream.complete and stream.tls is False and stream.plaintext_bytes >= len(PLAINTEXT)
    assert stream.http_lines == ("GET / HTTP/1.1",) and stream.identities_in_clear == ("spiffe://corp.local/ns/sleep/sa/sleep",)
    reason = security_checks.istio_mtls_only(ECHO_EU_ONLY_SNI)(capture.report)
    assert reason is not None and "is not TLS" in reason and "carries HTTP in clear: ['GET / HTTP/1.1']" in reason


def test_the_raw_tls_client_reports_the_server_side_of_the_handshake(lab: LabMesh) -> None:
    us, eu = lab.cluster("us"), lab.cluster("eu")
    gateway = eu.gateway_address()
    assert gateway
    refused = us.tls_connect(SLEEP, gateway, GATEWAY_PORT, sni=ECHO_EU_ONLY_SNI, alpn=SIDECAR_ALPNS, certificate="none",
                             send=b"GET / HTTP/1.1\r\nHost: echo-eu-only.echo.svc.cluster.local\r\n\r\n")
    assert refused.handshake_completed and refused.version == "TLSv1.3" and refused.alpn == "http/1.1"
    assert refused.server_sans == ("spiffe://corp.local/ns/echo/sa/echo-eu-only",)
    assert refused.certificate_requested and refused.certificate_sent is None
    assert refused.alert == "certificate required" and refused.http_status is None
    # an unknown SNI: the gateway closes before any server certificate
    lost = us.tls_connect(SLEEP, gateway, GATEWAY_PORT, sni="outbound_.80_._.nothing.example", alpn=SIDECAR_ALPNS)
    assert lost.connected and not lost.handshake_completed and lost.server_sans == ()


def test_bad_requests_are_refused_by_name(lab: LabMesh) -> None:
    us = lab.cluster("us")
    with pytest.raises(ValueError, match="a scan probes 1 to 128 ports, got 129"):
        us.scan(SLEEP, "172.31.255.20", range(1, 130))
    with pytest.raises(ValueError, match="certificate must be one of none, own, untrusted-root, other-trust-domain"):
        us.tls_connect(SLEEP, "172.31.255.20", GATEWAY_PORT, sni="x", certificate="stolen")
