"""Self-tests of the named checks and their evidence (fixtures/support/checks.py), on real
answers: batches sent through a running lab, its real Envoy proxies and echo servers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from eastwest.backends.lab.mesh import LabMesh
from eastwest.mesh import ProxyEndpoint
from eastwest.support import checks
from eastwest.support.echo import EchoResponse
from eastwest.workloads import CLIENT_WITH_UNTRUSTED_ROOT, CLIENT_WITHOUT_SIDECAR, ECHO_EU_ONLY_URL, ECHO_URL, SLEEP
from tests.labs import running_lab

SLEEP_ID = "spiffe://corp.local/ns/sleep/sa/sleep"

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="the lab needs unshare (util-linux)")


@pytest.fixture(scope="module")
def lab() -> Iterator[LabMesh]:
    with running_lab("security/echo-in-eu-only.yaml", "security/client-with-untrusted-root.yaml",
                     "security/client-without-sidecar.yaml") as mesh:
        yield mesh


@pytest.fixture(scope="module")
def from_eu_only(lab: LabMesh) -> list[EchoResponse]:
    """Six answers that crossed the east-west hop over mTLS."""
    return lab.cluster("us").call(SLEEP, ECHO_EU_ONLY_URL, count=6)


@pytest.fixture(scope="module")
def from_both(lab: LabMesh) -> list[EchoResponse]:
    """Ten answers round-robined over the US echo and the EU gateway."""
    return lab.cluster("us").call(SLEEP, ECHO_URL, count=10)


@pytest.fixture(scope="module")
def untrusted(lab: LabMesh) -> list[EchoResponse]:
    """Answers to a client whose certificate comes from a root the mesh does not trust."""
    return lab.cluster("us").call(CLIENT_WITH_UNTRUSTED_ROOT, ECHO_EU_ONLY_URL, count=3)


def test_served_from_holds_only_when_every_answer_came_from_that_cluster(from_eu_only: list[EchoResponse], from_both: list[EchoResponse]) -> None:
    assert checks.served_from("eu")(from_eu_only) is None
    reason = checks.served_from("eu")(from_both)
    assert reason is not None and reason.startswith("expected all 10 requests served in eu on the first attempt; observed")
    assert "'200 from us'" in reason and "'200 from eu'" in reason, reason


def test_peer_is_reads_the_spiffe_id_from_xfcc(lab: LabMesh, from_eu_only: list[EchoResponse]) -> None:
    sleep_id = lab.cluster("us").spiffe_id("sleep", "sleep")
    assert str(sleep_id) == SLEEP_ID
    assert checks.peer_is(sleep_id)(from_eu_only) is None
    plaintext = lab.cluster("us").call(CLIENT_WITHOUT_SIDECAR, ECHO_URL, count=2)
    assert all(r.ok for r in plaintext), [r.summary() for r in plaintext]
    assert checks.peer_is(sleep_id)(plaintext) == f"expected peer {SLEEP_ID} on every answer; observed {{'no XFCC URI (not mTLS)': 2}}"


def test_ok_and_refused_are_opposites_on_real_batches(from_eu_only: list[EchoResponse], untrusted: list[EchoResponse]) -> None:
    assert checks.ok()(from_eu_only) is None and checks.refused()(untrusted) is None
    assert checks.refused()(from_eu_only) == "expected every request to be refused; 6/6 succeeded ({'200 from eu': 6})"
    reason = checks.ok()(untrusted)
    assert reason is not None and reason.startswith("expected every request to succeed; 3/3 did not"), reason


def test_all_of_gives_the_first_failing_reason(lab: LabMesh, from_both: list[EchoResponse]) -> None:
    sleep_id = lab.cluster("us").spiffe_id("sleep", "sleep")
    both = checks.all_of(checks.peer_is(sleep_id), checks.served_from("us"))
    assert both(from_both) == checks.served_from("us")(from_both)
    assert checks.all_of(checks.ok(), checks.peer_is(sleep_id))(from_both) is None


def test_evidence_names_the_cause_of_an_untrusted_certificate(untrusted: list[EchoResponse]) -> None:
    # TLS 1.3: the server checks the client's certificate after the client's handshake, so the client
    # proxy sees only the connection close; the cause names both readings and where to tell them apart
    text = checks.evidence(untrusted)
    assert text.startswith("tally: 3 x 503 flags=")
    assert "a server sidecar that refuses the client's certificate" in text, text
    # the raw first failure keeps Envoy's own words
    assert "first failed or retried response, raw:\nHTTP 503 from " + ECHO_EU_ONLY_URL in text
    assert "connection termination" in text, text


def test_evidence_of_a_time_out_says_where_to_look(lab: LabMesh) -> None:
    hung = lab.cluster("us").call(SLEEP, ECHO_EU_ONLY_URL + "?delay=2", count=1, timeout=0.3)
    text = checks.evidence(hung)
    assert text.startswith("tally: 1 x no response (timed out)")
    assert "likely cause: no answer within the request time limit" in text, text


def test_evidence_of_a_long_batch_is_bounded(from_both: list[EchoResponse]) -> None:
    text = checks.evidence(from_both * 3, limit=20)
    assert text.count(ECHO_URL + " -> 200") == 20 and "... 10 more" in text
    assert "first failed or retried response" not in text and "likely cause" not in text


def test_expect_passes_quietly_or_fails_with_reason_and_evidence(from_eu_only: list[EchoResponse]) -> None:
    checks.expect(from_eu_only, checks.served_from("eu"))
    with pytest.raises(AssertionError) as failure:
        checks.expect(from_eu_only, checks.served_from("us"), context="the US client's endpoints: (none)")
    message = str(failure.value)
    assert message.startswith("expected all 6 requests served in us on the first attempt; observed {'200 from eu': 6}\n"
                              "the US client's endpoints: (none)\ntally: 6 x 200 from eu")
    assert message.count(f"{ECHO_EU_ONLY_URL} -> 200 service=echo-eu-only cluster=eu") == 6


def test_served_by_names_the_service_that_answered(from_eu_only: list[EchoResponse]) -> None:
    assert checks.served_by("echo-eu-only", "eu")(from_eu_only) is None
    assert checks.served_by("echo", "eu")(from_eu_only) == (
        "expected every answer from echo in eu on the first attempt; observed {'echo-eu-only in eu': 6}")


def retried(cluster: str, attempts: int) -> EchoResponse:
    body = f'{{"cluster": "{cluster}", "service": "echo"}}'
    return EchoResponse.from_http(url=ECHO_URL, status=200, body=body, latency_s=0.01,
                                  headers={"x-eastwest-upstream-attempts": str(attempts), "x-eastwest-response-flags": "-"})


def test_a_retried_answer_counts_as_a_failed_first_path() -> None:
    """A request answered locally after a failed remote attempt is not a clean 200."""
    batch = [retried("us", 2), retried("us", 1)]
    assert checks.tally(batch) == {"200 from us after 2 attempts": 1, "200 from us": 1}
    assert checks.served_from("us")(batch) is not None
    assert checks.first_attempt()(batch) is not None and checks.first_attempt()(batch[1:]) is None
    assert "answered only after 2 upstream attempts" in (checks.likely_cause(batch) or "")


def failed(reason: str, host: str = "172.31.255.20:15443", flags: str = "URX,UF", body: str = "upstream connect error") -> EchoResponse:
    return EchoResponse.from_http(url=ECHO_URL, status=503, body=body, latency_s=0.01, headers={
        "x-eastwest-upstream-failure": reason, "x-eastwest-upstream-host": host, "x-eastwest-response-flags": flags})


@pytest.mark.parametrize(("reason", "cause"), [
    ("TLS_error:|268435581:SSL_routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify_cert_failed:_SAN_matcher,"
     "_certificate_SANs_are_[spiffe://other.local/ns/echo/sa/echo]:TLS_error_end",
     "on its SAN check: the server presented ['spiffe://other.local/ns/echo/sa/echo'] (trust domain other.local)"),
    ("TLS_error:|268435581:SSL_routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end",
     "could not chain the certificate presented at 172.31.255.20:15443 to its root CA"),
    ("TLS_error:|268436504:SSL_routines:OPENSSL_internal:TLSV1_ALERT_UNKNOWN_CA:TLS_error_end", "TLS alert 'unknown CA'"),
    ("TLS_error:|268436502:SSL_routines:OPENSSL_internal:TLSV1_ALERT_CERTIFICATE_UNKNOWN:TLS_error_end",
     "aborted the handshake (TLSV1 ALERT CERTIFICATE UNKNOWN)"),
    ("TLS_error:|268435703:SSL_routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end", "got plaintext back"),
    ("-", "its AUTO_PASSTHROUGH filter chains match neither the SNI nor the ALPN"),
])
def test_tls_causes_are_read_from_the_failure_reason_and_the_side_that_raised_it(reason: str, cause: str) -> None:
    found = checks.likely_cause([failed(reason)])
    assert found is not None and cause in found, found


def test_an_unknown_symptom_is_not_guessed() -> None:
    found = checks.likely_cause([failed("-", host="10.10.0.11:8080", flags="-", body="teapot")])
    assert found is not None and found.startswith(checks.NOT_DETERMINED), found


def ep(address: str, locality: str, priority: int = 0, healthy: bool = True) -> ProxyEndpoint:
    return ProxyEndpoint(address, 15443 if address.startswith("172") else 8080, locality, priority, healthy)


US, EU = ep("10.10.0.11", "us/us-a"), ep("172.31.255.20", "eu/eu-a")
DISTRIBUTE = {"us": 0.8, "eu": 0.2}


@pytest.mark.parametrize(("endpoints", "weights", "cause"), [
    ([US, EU], {"us/us-a": 20, "eu/eu-a": 80}, "locality weights are eu 80%, us 20%, not the expected eu 20%, us 80%: inverted"),
    ([US, EU], {"us/us-a": 70, "eu/eu-a": 30}, "locality weights are eu 30%, us 70%, not the expected eu 20%, us 80%"),
    ([US, ep("172.31.255.20", "eu/eu-a", healthy=False)], {"us/us-a": 80, "eu/eu-a": 20}, "are unhealthy or ejected"),
    ([US, EU], None, "locality load balancing is off"),
    ([US, ep("172.31.255.20", "eu/eu-a", priority=1)], None, "applies failover priorities, not distribute weights"),
    ([US, EU], {"us/us-a": 80, "eu/eu-a": 20}, checks.NOT_DETERMINED),
])
def test_distribute_causes_come_from_the_endpoint_table(endpoints: list[ProxyEndpoint], weights: dict[str, int] | None, cause: str) -> None:
    """Inverted weights or an unhealthy remote endpoint are never blamed on "locality load balancing is off"."""
    found = checks.locality_cause(endpoints, weights, own_region="us", expected_shares=DISTRIBUTE)
    assert cause in found, found


@pytest.mark.parametrize(("endpoints", "cause"), [
    ([US, EU], "locality load balancing is off"),
    ([ep("10.10.0.11", "us/us-a", priority=1), ep("172.31.255.20", "eu/eu-a", priority=0)], "not its own region us"),
    ([ep("10.10.0.11", "us/us-a", healthy=False), ep("172.31.255.20", "eu/eu-a", priority=1)], "unhealthy or ejected"),
    ([US, ep("172.31.255.20", "eu/eu-a", priority=1)], checks.NOT_DETERMINED),
])
def test_preference_causes_come_from_the_endpoint_table(endpoints: list[ProxyEndpoint], cause: str) -> None:
    found = checks.locality_cause(endpoints, None, own_region="us")
    assert cause in found, found
