"""Self-tests of the named checks and their evidence (fixtures/support/checks.py), on real
answers: batches sent through a running lab, its real Envoy proxies and echo servers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from eastwest.backends.lab.mesh import LabMesh
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
    assert reason is not None and reason.startswith("expected all 10 requests served in eu; observed")
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
    assert "in TLS 1.3 a server sidecar that refuses the client's certificate also closes only after the client's handshake" in text, text
    # the raw first failure keeps Envoy's own words
    assert "first failed response, raw:\nHTTP 503 from " + ECHO_EU_ONLY_URL in text
    assert "connection termination" in text, text


def test_evidence_of_a_time_out_says_where_to_look(lab: LabMesh) -> None:
    hung = lab.cluster("us").call(SLEEP, ECHO_EU_ONLY_URL + "?delay=2", count=1, timeout=0.3)
    text = checks.evidence(hung)
    assert text.startswith("tally: 1 x no response (timed out)")
    assert "likely cause: no answer within the request time limit" in text, text


def test_evidence_of_a_long_batch_is_bounded(from_both: list[EchoResponse]) -> None:
    text = checks.evidence(from_both * 3, limit=20)
    assert text.count(ECHO_URL + " -> 200") == 20 and "... 10 more" in text
    assert "first failed response" not in text and "likely cause" not in text


def test_expect_passes_quietly_or_fails_with_reason_and_evidence(from_eu_only: list[EchoResponse]) -> None:
    checks.expect(from_eu_only, checks.served_from("eu"))
    with pytest.raises(AssertionError) as failure:
        checks.expect(from_eu_only, checks.served_from("us"), context="the US client's endpoints: (none)")
    message = str(failure.value)
    assert message.startswith("expected all 6 requests served in us; observed {'200 from eu': 6}\nthe US client's endpoints: (none)\ntally: 6 x 200 from eu")
    assert message.count(f"{ECHO_EU_ONLY_URL} -> 200 cluster=eu") == 6
