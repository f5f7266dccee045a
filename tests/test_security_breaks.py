"""The security suite has teeth: for each property, a lab broken so that it does not hold makes the
matching suite test fail, and the failure names the cause.

Each case runs the real suite tests in a pytest subprocess against a lab started with one
``--lab-break`` (eastwest/backends/lab/breaks.py); a control run proves the same tests pass on
the healthy lab. A broken mesh never converges, so broken runs wait only 4 s.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_suites_catch_broken_meshes import run_suites

SECURITY = "suites/security"
MUTUAL = f"{SECURITY}/test_mutual_authentication.py"
SERVER = f"{SECURITY}/test_server_identity.py"
FORGED = f"{SECURITY}/test_forged_identity_headers.py"
EXPOSURE = f"{SECURITY}/test_gateway_exposure.py"
WIRE = f"{SECURITY}/test_wire.py"

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="the lab needs unshare (util-linux)")

# (break, suite tests, how many fail, what the failure must say)
CASES = [
    ("one-way-tls", [MUTUAL], 3,
     ["expected the server to refuse a client holding no certificate at all",
      "likely cause: the server never asked for a client certificate: its TLS is one-way"]),
    ("server-skips-trust-domain", [MUTUAL], 1,
     ["expected the server to refuse a client holding a certificate from the client cluster's own CA",
      "it does not check the peer's trust domain (no SAN match on spiffe://corp.local/"]),
    ("client-skips-san-check", [SERVER], 1,
     ["expected no answer from a server other than spiffe://corp.local/ns/echo/sa/someone-else; observed 5/5 answers "
      "from {'spiffe://corp.local/ns/echo/sa/echo-eu-only': 5}",
      "likely cause: the client proxy accepted a server whose SPIFFE ID is not in its DestinationRule's subjectAltNames"]),
    ("client-skips-server-verification", [f"{SERVER}::test_client_refuses_a_server_with_a_certificate_from_another_root"], 1,
     ["expected the client to refuse a server certificate from a root the mesh does not trust",
      "likely cause: the client proxy does not verify the server's certificate chain"]),
    ("xfcc-forwarded", [FORGED], 3,
     ["observed peer spiffe://corp.local/ns/kube-system/sa/cluster-admin on 5/5 answers",
      "likely cause: the server's sidecar forwarded the client's X-Forwarded-Client-Cert on a connection without a client certificate",
      "the sidecar forwarded the client's own header instead of appending to it"]),
    ("gateway-plaintext-port", [f"{EXPOSURE}::test_the_gateway_serves_only_east_west_ports_from_the_other_cluster"], 2,
     ["port 8080 open, which a real east-west gateway does not serve",
      "port 8080 answered a plaintext request for a mesh service with b'HTTP/1.1 200 OK': the mesh service itself answered in clear"]),
    ("admin-on-all-addresses", [f"{EXPOSURE}::test_no_proxy_admin_api_answers_from_outside_its_pod"], 1,
     ["expected no proxy's admin API to answer from outside its pod; observed answers from us/echo/echo at",
      "likely cause: the proxy's admin API listens on a non-loopback address"]),
    ("tls12-max", [WIRE], 1,
     ["negotiated TLSv1.2, expected TLSv1.3; offered ['TLSv1.2']: the client offered no TLS 1.3",
      "shows identities in clear: ['spiffe://corp.local/ns/echo/sa/echo-eu-only', 'spiffe://corp.local/ns/sleep/sa/sleep']"]),
]


def test_the_healthy_lab_passes_the_security_suite() -> None:
    result = run_suites(SECURITY, convergence=30)
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.parametrize(("breakage", "tests", "failures", "causes"), CASES, ids=[c[0] for c in CASES])
def test_a_broken_property_fails_its_test_naming_the_cause(breakage: str, tests: list[str], failures: int, causes: list[str]) -> None:
    result = run_suites(*tests, "--lab-break", breakage)
    assert result.returncode == 1, result.stdout[-3000:]
    assert f"{failures} failed" in result.stdout, result.stdout[-3000:]
    for cause in causes:
        assert cause in result.stdout, f"missing {cause!r} in:\n{result.stdout[-4000:]}"


def test_the_wire_evidence_is_attached_to_the_report(tmp_path: Path) -> None:
    """The streams the wire test saw (SNI, ALPN, TLS version, plaintext found) land in the Allure results."""
    result = run_suites(WIRE, f"--alluredir={tmp_path}", convergence=30)
    assert result.returncode == 0, result.stdout[-3000:]
    [test] = [json.loads(p.read_text()) for p in tmp_path.glob("*-result.json")]
    [attached] = [a for a in _attachments(test) if "transit capture" in a["name"]]
    text = (tmp_path / attached["source"]).read_text()
    for needle in ("-> 172.31.255.20:15443 (opened in capture;", "SNI outbound_.80_._.echo-eu-only.echo.svc.cluster.local",
                   "ALPN offered ['istio-http/1.1', 'istio', 'http/1.1']", "negotiated TLSv1.3", "identities in clear: none",
                   "plaintext bytes: 0"):
        assert needle in text, f"missing {needle!r} in the attached evidence:\n{text}"


def _attachments(item: dict[str, Any]) -> list[dict[str, Any]]:
    """A test's attachments, those of its steps included (each reading of the mesh is a step of its own)."""
    return [*item.get("attachments", []), *(a for step in item.get("steps", []) for a in _attachments(step))]
