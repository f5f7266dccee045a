"""Self-tests of XFCC parsing (fixtures/support/echo.py, spiffe.py) and of EchoResponse
against the real echo server (fixtures/apps/echo.py) over real HTTP on loopback."""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from eastwest.apps import echo as echo_app
from eastwest.support.echo import EchoResponse, XfccElement, as_dicts, parse_xfcc
from eastwest.support.pki import mesh_cas
from eastwest.support.spiffe import SpiffeId

SLEEP_ID = "spiffe://corp.local/ns/sleep/sa/sleep"
ECHO_ID = "spiffe://corp.local/ns/echo/sa/echo"
GW_ID = "spiffe://corp.local/ns/istio-system/sa/istio-eastwestgateway"


@pytest.fixture(scope="module")
def client_cert_hash() -> str:
    """Envoy's XFCC Hash: hex SHA-256 of the client certificate's DER, here of a real workload cert."""
    ca = mesh_cas(["us"])["us"]
    cert = x509.load_pem_x509_certificate(ca.workload(SpiffeId.parse(SLEEP_ID)).cert_pem)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


# --------------------------------------------------------------------------- SPIFFE IDs


def test_spiffe_id_round_trip_and_rejects_non_istio_ids():
    sid = SpiffeId.parse(" spiffe://corp.local/ns/sleep/sa/sleep ")
    assert (sid.trust_domain, sid.namespace, sid.service_account) == ("corp.local", "sleep", "sleep")
    assert str(sid) == SLEEP_ID and SpiffeId.parse(sid.uri) == sid
    for bad in ("spiffe://corp.local/sleep", "http://corp.local/ns/a/sa/b", "spiffe://corp.local/ns/a/sa/b/c", ""):
        with pytest.raises(ValueError) as exc:
            SpiffeId.parse(bad)
        assert repr(bad) in str(exc.value)


# --------------------------------------------------------------------------- parse_xfcc


def test_istio_sidecar_xfcc(client_cert_hash):
    # what an Istio sidecar (FORWARD_ONLY/APPEND_FORWARD, Subject+URI+DNS details) puts on the request
    value = f'By={ECHO_ID};Hash={client_cert_hash};Subject="";URI={SLEEP_ID}'
    [el] = parse_xfcc(value)
    assert el == XfccElement(by=ECHO_ID, hash=client_cert_hash, uri=SLEEP_ID, subject="", dns=())
    assert el.hash is not None and len(el.hash) == 64


def test_append_forward_chain_is_oldest_first(client_cert_hash):
    first = f'By={GW_ID};Hash={client_cert_hash};Subject="";URI={SLEEP_ID}'
    second = f'By={ECHO_ID};Hash={"0" * 64};Subject="";URI={GW_ID}'
    elements = parse_xfcc(f"{first},{second}")
    assert [e.by for e in elements] == [GW_ID, ECHO_ID]
    assert [e.uri for e in elements] == [SLEEP_ID, GW_ID]
    assert elements[1].hash == "0" * 64


def test_quoted_subject_keeps_separators_and_escaped_quotes():
    # Envoy quotes a Subject that contains ',' ';' or '"', escaping inner quotes with '\'
    value = (
        'By=spiffe://corp.local/ns/echo/sa/echo;Hash=abc;'
        'Subject="CN=a,O=b;c";URI=spiffe://corp.local/ns/sleep/sa/sleep,'
        'By=spiffe://corp.local/ns/echo/sa/echo;Subject="CN=\\"quoted\\" name,OU=x";URI=spiffe://corp.local/ns/b/sa/b'
    )
    elements = parse_xfcc(value)
    assert len(elements) == 2
    assert elements[0].subject == "CN=a,O=b;c"
    assert elements[0].uri == SLEEP_ID and elements[0].hash == "abc"
    assert elements[1].subject == 'CN="quoted" name,OU=x'
    assert elements[1].uri == "spiffe://corp.local/ns/b/sa/b"


def test_envoy_docs_example_with_dns_repeated():
    # the example of Envoy's documentation, with two DNS SANs
    value = (
        "By=http://frontend.lyft.com;"
        "Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;"
        'Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/O=Lyft/CN=Test Client";'
        "URI=http://testclient.lyft.com;DNS=lyft.com;DNS=www.lyft.com"
    )
    [el] = parse_xfcc(value)
    assert el.dns == ("lyft.com", "www.lyft.com")
    assert el.subject == "/C=US/ST=CA/L=San Francisco/OU=Lyft/O=Lyft/CN=Test Client"
    assert el.by == "http://frontend.lyft.com" and el.uri == "http://testclient.lyft.com"


def test_keys_are_case_insensitive_and_unknown_keys_ignored():
    [el] = parse_xfcc(f"by={ECHO_ID};uri={SLEEP_ID};dns=a.local;Cert=%2D%2D%2D;Chain=x")
    assert (el.by, el.uri, el.dns) == (ECHO_ID, SLEEP_ID, ("a.local",))


def test_empty_and_trailing_separators():
    assert parse_xfcc("") == []
    assert parse_xfcc(f"URI={SLEEP_ID};") == [XfccElement(uri=SLEEP_ID)]
    assert parse_xfcc(f"URI={SLEEP_ID},") == [XfccElement(uri=SLEEP_ID)]


@pytest.mark.parametrize(
    "value, needle",
    [
        ('By=x;Subject="CN=a,O=b;URI=y', "unterminated quote"),
        ("By=x;Hash;URI=y", "without '='"),
        ("By=x,Hash,URI=y", "without '='"),
        ("By=x;URI=y;Trailing", "without '='"),
    ],
)
def test_malformed_xfcc_raises_value_error(value, needle):
    with pytest.raises(ValueError) as exc:
        parse_xfcc(value)
    assert needle in str(exc.value)
    assert value in str(exc.value)  # the bad input is shown


# --------------------------------------------------------------------------- the real echo server

ECHO_ENV = {
    "CLUSTER": "eu",
    "POD_NAME": "echo-eu-0",
    "POD_NAMESPACE": "echo",
    "SERVICE_ACCOUNT": "echo",
    "LOCALITY": "eu/eu-a",
    "VERSION": "v1",
    "POD_IP": "10.20.0.11",
}


@pytest.fixture(scope="module")
def echo_server():
    # one server for the module: shutdown() waits out serve_forever's 0.5 s poll
    with pytest.MonkeyPatch.context() as mp:
        for k, v in ECHO_ENV.items():
            mp.setenv(k, v)
        mp.delenv("SERVICE_NAME", raising=False)
        server = echo_app.serve("127.0.0.1", 0)  # identity() is read here, from the env above
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _get(server, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> EchoResponse:
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}{path}"
    conn = http.client.HTTPConnection(host, port, timeout=5)
    start = time.monotonic()
    try:
        conn.request(method, path, headers={"Host": "echo.echo.svc.cluster.local", **(headers or {})})
        resp = conn.getresponse()
        body = resp.read().decode()
        return EchoResponse.from_http(
            url=url, status=resp.status, headers=dict(resp.getheaders()), body=body,
            latency_s=time.monotonic() - start,
        )
    finally:
        conn.close()


def test_echo_answer_types_into_echo_response(echo_server, client_cert_hash):
    xfcc = f'By={ECHO_ID};Hash={client_cert_hash};Subject="";URI={SLEEP_ID}'
    r = _get(echo_server, "/some/path?x=1", {"X-Forwarded-Client-Cert": xfcc})
    assert r.status == 200 and r.ok and r.error is None
    # identity fields come from the environment the server was started with
    assert (r.cluster, r.pod, r.namespace, r.locality, r.service_account) == (
        "eu", "echo-eu-0", "echo", "eu/eu-a", "echo",
    )
    body = json.loads(r.body)
    assert body["path"] == "/some/path?x=1" and body["method"] == "GET"
    assert body["host"] == "echo.echo.svc.cluster.local" and body["ip"] == "10.20.0.11"
    assert body["service"] == "echo" and body["version"] == "v1"
    assert body["remote_addr"] == "127.0.0.1"
    # the XFCC the server received is parsed back out of the echoed request headers
    assert r.peer_identity == SpiffeId("corp.local", "sleep", "sleep")
    assert r.server_identity == SpiffeId("corp.local", "echo", "echo")
    assert r.xfcc[0].hash == client_cert_hash
    assert r.response_headers["Content-Type"] == "application/json"
    assert r.response_flags is None
    summary = r.summary()
    assert r.url in summary and " 200 " in summary
    for fact in ("cluster=eu", "pod=echo-eu-0", "locality=eu/eu-a", f"peer={SLEEP_ID}"):
        assert fact in summary
    assert "flags=" not in summary
    raw = r.raw()
    assert raw.startswith(f"HTTP 200 from {r.url}\n")
    assert "Content-Type: application/json" in raw and client_cert_hash in raw
    d = json.loads(json.dumps(as_dicts([r])))[0]
    assert d["cluster"] == "eu" and d["peer_identity"] == SLEEP_ID and d["status"] == 200


def test_appended_xfcc_chain_identifies_nearest_hop(echo_server, client_cert_hash):
    # through a gateway that terminated mTLS and re-originated it: the last element is the nearest proxy
    chain = f'By={GW_ID};Hash={client_cert_hash};URI={SLEEP_ID},By={ECHO_ID};Hash={"1" * 64};Subject="";URI={GW_ID}'
    r = _get(echo_server, "/", {"x-forwarded-client-cert": chain})
    assert len(r.xfcc) == 2
    assert r.peer_identity == SpiffeId.parse(GW_ID)
    assert r.server_identity == SpiffeId.parse(ECHO_ID)


def test_plaintext_hop_has_no_identity(echo_server):
    r = _get(echo_server, "/")
    assert r.ok and r.cluster == "eu"
    assert r.xfcc == [] and r.peer_identity is None and r.server_identity is None
    assert "peer=-" in r.summary()


def test_status_knob_answers_from_echo_but_not_ok(echo_server):
    r = _get(echo_server, "/?status=503")
    assert r.status == 503 and not r.ok
    assert r.cluster == "eu" and r.pod == "echo-eu-0"  # the echo server itself answered
    assert " 503 service=echo cluster=eu" in r.summary()


def test_delay_knob_delays_the_answer(echo_server):
    fast = _get(echo_server, "/")
    slow = _get(echo_server, "/?delay=0.2")
    assert slow.ok and slow.latency_s >= 0.2
    assert slow.latency_s > fast.latency_s


@pytest.mark.parametrize("query", ["status=abc", "status=99", "status=600", "delay=soon"])
def test_bad_knobs_are_400(echo_server, query):
    r = _get(echo_server, f"/?{query}")
    assert r.status == 400 and not r.ok
    assert r.cluster is None and "bad status or delay parameter" in r.body


def test_healthz_and_head(echo_server):
    r = _get(echo_server, "/healthz")
    assert r.status == 200 and r.body == "ok\n" and r.cluster is None
    head = _get(echo_server, "/", method="HEAD")
    assert head.status == 200 and head.body == "" and int(head.response_headers["Content-Length"]) > 0


# --------------------------------------------------------------------------- non-echo answers


ENVOY_503_BODY = "upstream connect error or disconnect/reset before headers. reset reason: connection termination"


def test_proxy_error_page_leaves_echo_fields_none():
    headers = {
        "content-length": str(len(ENVOY_503_BODY)),
        "content-type": "text/plain",
        "date": "Tue, 05 May 2026 10:00:00 GMT",
        "server": "envoy",
        "x-eastwest-response-flags": "UC",
    }
    r = EchoResponse.from_http(
        url="http://echo.echo.svc.cluster.local/", status=503, headers=headers, body=ENVOY_503_BODY, latency_s=0.012
    )
    assert not r.ok and r.status == 503
    assert (r.cluster, r.pod, r.namespace, r.locality, r.service_account) == (None,) * 5
    assert r.request_headers == {} and r.xfcc == [] and r.peer_identity is None
    assert r.response_flags == "UC"
    summary = r.summary()
    assert "503" in summary and "not echo" in summary and "flags=UC" in summary and "12 ms" in summary
    raw = r.raw()
    assert "HTTP 503 from http://echo.echo.svc.cluster.local/" in raw
    assert "x-eastwest-response-flags: UC" in raw and "server: envoy" in raw
    assert raw.rstrip().endswith(ENVOY_503_BODY)


def test_broken_json_and_no_flags_marker():
    r = EchoResponse.from_http(
        url="u", status=200, headers={"X-Eastwest-Response-Flags": "-"}, body='{"cluster": "eu"', latency_s=0.0
    )
    assert r.ok and r.cluster is None  # truncated JSON is not an echo answer
    assert r.response_flags == "-"  # header lookup is case-insensitive
    assert "flags=" not in r.summary()  # '-' is Envoy's "no flags"


def test_failed_request_from_a_real_refused_connection():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens there now
    start = time.monotonic()
    with pytest.raises(OSError) as exc:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    url = f"http://127.0.0.1:{port}/"
    r = EchoResponse.failed(url=url, error=str(exc.value), latency_s=time.monotonic() - start)
    assert r.status is None and not r.ok and r.cluster is None and r.response_flags is None
    assert r.error == str(exc.value)
    assert r.summary().startswith(f"{url} -> no response (")
    assert "refused" in r.summary().lower()
    assert r.raw() == r.summary()
    assert r.to_dict()["status"] is None and r.to_dict()["error"] == r.error
