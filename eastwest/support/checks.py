"""Named checks over batches of responses, and assertions that fail with evidence.

A check takes a batch of :class:`EchoResponse` and returns None when it holds, or one
sentence saying what was expected and what was observed. ``eventually`` waits on checks;
``expect`` asserts one and appends the evidence: a tally, every response's summary, the
raw text of the first odd response and, where the symptom is a known one, its likely cause.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from eastwest.support.echo import EchoResponse
from eastwest.support.spiffe import SpiffeId

Batch = Sequence[EchoResponse]
BatchCheck = Callable[[Batch], "str | None"]

# Known symptoms and what usually causes them (../shared/notes/istio-multinetwork.md, pitfalls).
_CAUSES = (
    ("CERTIFICATE_VERIFY_FAILED", "TLS verification failed between the sidecars: the clusters do not share one root CA "
     "(create cacerts from a common root in every cluster before istiod starts)"),
    ("TLSV1_ALERT_UNKNOWN_CA", "the server's sidecar rejected the client certificate: it was issued by a root the server does not trust"),
    ("TLSV1_ALERT", "the peer's sidecar aborted the TLS handshake"),
    ("connection termination", "the upstream closed the connection: an east-west gateway does this during the handshake "
     "when the SNI (or ALPN) matches none of its AUTO_PASSTHROUGH filter chains; in TLS 1.3 a server sidecar that refuses "
     "the client's certificate also closes only after the client's handshake (its ssl.fail_verify_* stats say which)"),
    ("no healthy upstream", "the client proxy has no healthy endpoint for this service"),
    ("timed out", "no answer within the request time limit: something on the path drops packets (a partition, "
     "an unreachable or dead east-west gateway) or the server hangs; the client proxy's access log shows where"),
)


def tally(batch: Batch) -> Counter[str]:
    """How many responses came from each cluster, or failed in each way."""
    out: Counter[str] = Counter()
    for r in batch:
        if r.status is None:
            out[f"no response ({r.error})"] += 1
        elif r.cluster:
            out[f"{r.status} from {r.cluster}"] += 1
        else:
            out[f"{r.status} {('flags=' + r.response_flags) if r.response_flags else 'not from echo'}"] += 1
    return out


def likely_cause(batch: Batch) -> str | None:
    """Name the known cause of the first failed response, if its symptom is a known one."""
    for r in batch:
        if r.ok:
            continue
        text = " ".join([r.body, r.error or "", *r.response_headers.values()])
        for needle, cause in _CAUSES:
            if needle.lower() in text.lower():
                return cause
    return None


def evidence(batch: Batch, *, limit: int = 20) -> str:
    """The tally, the summaries and the first unexpected raw response."""
    lines = ["tally: " + ", ".join(f"{n} x {k}" for k, n in tally(batch).most_common())]
    cause = likely_cause(batch)
    if cause:
        lines.append(f"likely cause: {cause}")
    lines += [r.summary() for r in batch[:limit]]
    if len(batch) > limit:
        lines.append(f"... {len(batch) - limit} more")
    odd = next((r for r in batch if not r.ok), None)
    if odd is not None:
        lines += ["first failed response, raw:", odd.raw()]
    return "\n".join(lines)


def ok() -> BatchCheck:
    """Every request got a 2xx answer."""
    def check(batch: Batch) -> str | None:
        bad = [r for r in batch if not r.ok]
        return None if not bad else f"expected every request to succeed; {len(bad)}/{len(batch)} did not ({dict(tally(bad))})"
    return check


def served_from(cluster: str) -> BatchCheck:
    """Every request succeeded and was served in ``cluster``."""
    def check(batch: Batch) -> str | None:
        counts = tally(batch)
        want = f"200 from {cluster}"
        return None if counts == Counter({want: len(batch)}) else (
            f"expected all {len(batch)} requests served in {cluster}; observed {dict(counts)}"
        )
    return check


def peer_is(identity: SpiffeId) -> BatchCheck:
    """Every answer names ``identity`` as the client's mTLS peer (XFCC ``URI=``)."""
    def check(batch: Batch) -> str | None:
        seen = Counter(str(r.peer_identity) if r.peer_identity else "no XFCC URI (not mTLS)" for r in batch)
        return None if seen == Counter({str(identity): len(batch)}) else f"expected peer {identity} on every answer; observed {dict(seen)}"
    return check


def server_is(identity: SpiffeId) -> BatchCheck:
    """Every answer names ``identity`` as the proxy that terminated mTLS (XFCC ``By=`` of the sidecar's element)."""
    def check(batch: Batch) -> str | None:
        seen = Counter(str(r.server_identity) if r.server_identity else "no XFCC By (not mTLS)" for r in batch)
        return None if seen == Counter({str(identity): len(batch)}) else f"expected server {identity} on every answer; observed {dict(seen)}"
    return check


def _servers(batch: Batch) -> dict[str, int]:
    return dict(Counter(str(r.server_identity or f"{r.status} from {r.cluster} (no XFCC)") for r in batch if r.ok))


def refused_by_server_identity(expected: SpiffeId) -> BatchCheck:
    """No answer: the client's DestinationRule expects ``expected`` and the server is someone else."""
    def check(batch: Batch) -> str | None:
        good = [r for r in batch if r.ok]
        if not good:
            return None
        return (f"expected no answer from a server other than {expected}; observed {len(good)}/{len(batch)} answers from "
                f"{_servers(good)}\nlikely cause: the client proxy accepted a server whose SPIFFE ID is not in its "
                f"DestinationRule's subjectAltNames: it does not check the server's SAN (no match_typed_subject_alt_names)")
    return check


def refused_untrusted_server() -> BatchCheck:
    """No answer from a server whose certificate comes from a root the mesh does not trust."""
    def check(batch: Batch) -> str | None:
        good = [r for r in batch if r.ok]
        if not good:
            return None
        return (f"expected the client to refuse a server certificate from a root the mesh does not trust; observed "
                f"{len(good)}/{len(batch)} answers from {_servers(good)}\nlikely cause: the client proxy does not verify "
                f"the server's certificate chain (no validation context, as DestinationRule tls.insecureSkipVerify does)")
    return check


def refused() -> BatchCheck:
    """No request got a 2xx answer."""
    def check(batch: Batch) -> str | None:
        good = [r for r in batch if r.ok]
        return None if not good else f"expected every request to be refused; {len(good)}/{len(batch)} succeeded ({dict(tally(good))})"
    return check


def all_of(*checks: BatchCheck) -> BatchCheck:
    """Every check holds; the first that does not gives the reason."""
    def check(batch: Batch) -> str | None:
        for c in checks:
            reason = c(batch)
            if reason:
                return reason
        return None
    return check


def expect(batch: Batch, check: BatchCheck, *, context: str = "") -> None:
    """Assert ``check`` on ``batch``; the failure carries the evidence."""
    __tracebackhide__ = True
    reason = check(batch)
    if reason:
        extra = f"\n{context}" if context else ""
        raise AssertionError(f"{reason}{extra}\n{evidence(batch)}")
