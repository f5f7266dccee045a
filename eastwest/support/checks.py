"""Named checks over batches of responses, and assertions that fail with evidence.

A check takes a batch of :class:`EchoResponse` and returns None when it holds, or one
sentence saying what was expected and what was observed. ``eventually`` waits on checks;
``expect`` asserts one and appends the evidence: a tally, every response's summary, the
raw text of the first odd response and a likely cause *read from what was observed* (the
TLS failure reason and which side raised it, the SAN the server presented, the response
flags, the upstream attempts), or "cause not determined" when the observations do not say.

Retries are counted, not hidden: a request the client proxy answered only after a failed
attempt (``upstream_attempts > 1``) is tallied apart, so a remote path that fails while a
retry lands on a local endpoint does not pass as "200".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

# the causes live in causes.py; suites read them through checks
from eastwest.support.causes import NOT_DETERMINED as NOT_DETERMINED
from eastwest.support.causes import endpoint_table as endpoint_table
from eastwest.support.causes import likely_cause
from eastwest.support.causes import locality_cause as locality_cause
from eastwest.support.echo import EchoResponse
from eastwest.support.spiffe import SpiffeId
from eastwest.support.stats import AllPlan, SplitPlan

Batch = Sequence[EchoResponse]
BatchCheck = Callable[[Batch], "str | None"]


def tally(batch: Batch) -> Counter[str]:
    """How many responses came from each cluster (and service), or failed in each way."""
    out: Counter[str] = Counter()
    for r in batch:
        retried = f" after {r.upstream_attempts} attempts" if r.retried else ""
        if r.status is None:
            out[f"no response ({r.error})"] += 1
        elif r.cluster:
            out[f"{r.status} from {r.cluster}{retried}"] += 1
        else:
            out[f"{r.status} {('flags=' + r.response_flags) if r.response_flags else 'not from echo'}{retried}"] += 1
    return out


def evidence(batch: Batch, *, limit: int = 20) -> str:
    """The tally, the likely cause, the summaries and the first unexpected raw response."""
    lines = ["tally: " + ", ".join(f"{n} x {k}" for k, n in tally(batch).most_common())]
    cause = likely_cause(batch)
    if cause:
        lines.append(f"likely cause: {cause}")
    lines += [r.summary() for r in batch[:limit]]
    if len(batch) > limit:
        lines.append(f"... {len(batch) - limit} more")
    odd = next((r for r in batch if not r.ok or r.retried), None)
    if odd is not None:
        lines += ["first failed or retried response, raw:", odd.raw()]
    return "\n".join(lines)


def ok() -> BatchCheck:
    """Every request got a 2xx answer."""
    def check(batch: Batch) -> str | None:
        bad = [r for r in batch if not r.ok]
        return None if not bad else f"expected every request to succeed; {len(bad)}/{len(batch)} did not ({dict(tally(bad))})"
    return check


def served_from(cluster: str, plan: AllPlan | None = None) -> BatchCheck:
    """Every request succeeded on its first attempt and was served in ``cluster``."""
    def check(batch: Batch) -> str | None:
        counts = tally(batch)
        want = f"200 from {cluster}"
        if counts == Counter({want: len(batch)}):
            return None
        stats = f" ({plan.describe()})" if plan else ""
        return f"expected all {len(batch)} requests served in {cluster} on the first attempt; observed {dict(counts)}{stats}"
    return check


def served_by(service: str, cluster: str) -> BatchCheck:
    """Every request was answered, on its first attempt, by ``service`` in ``cluster`` (the echo body names both):
    a gateway that sends an SNI to the wrong service, or a retry that lands elsewhere, fails it."""
    def check(batch: Batch) -> str | None:
        seen = Counter(
            f"{r.service} in {r.cluster}" + (f" after {r.upstream_attempts} attempts" if r.retried else "") if r.cluster
            else next(iter(tally([r])))
            for r in batch
        )
        want = f"{service} in {cluster}"
        return None if seen == Counter({want: len(batch)}) else f"expected every answer from {want} on the first attempt; observed {dict(seen)}"
    return check


def first_attempt() -> BatchCheck:
    """No request needed a retry: a failed attempt answered by another endpoint is a failure of the first path."""
    def check(batch: Batch) -> str | None:
        retried = [r for r in batch if r.retried]
        return None if not retried else (
            f"expected every request answered on its first upstream attempt; {len(retried)}/{len(batch)} were retried "
            f"({dict(tally(retried))})"
        )
    return check


def split(plan: SplitPlan, cluster: str) -> BatchCheck:
    """The count served in ``cluster`` lies in the plan's band; every request succeeded on its first attempt."""
    def check(batch: Batch) -> str | None:
        bad = [r for r in batch if not r.ok or r.retried]
        if bad:
            return f"{len(bad)}/{len(batch)} requests failed or needed a retry ({dict(tally(bad))}); {plan.describe()}"
        if len(batch) != plan.n:
            return f"expected a batch of {plan.n} requests, got {len(batch)}"
        served = sum(1 for r in batch if r.cluster == cluster)
        if plan.accepts(served):
            return None
        return (f"expected {plan.low}..{plan.high} of {plan.n} served in {cluster}; observed {served} "
                f"({served / plan.n:.1%}); {plan.describe()}")
    return check


def peer_is(identity: SpiffeId) -> BatchCheck:
    """Every answer names ``identity`` as the client's mTLS peer (XFCC ``URI=``)."""
    def check(batch: Batch) -> str | None:
        seen = Counter(str(r.peer_identity) if r.peer_identity else "no XFCC URI (not mTLS)" for r in batch)
        return None if seen == Counter({str(identity): len(batch)}) else f"expected peer {identity} on every answer; observed {dict(seen)}"
    return check


def identities_in(trust_domain: str, clusters: Sequence[str]) -> BatchCheck:
    """Every answer came over mTLS, every identity the workloads presented (XFCC ``By=`` the server,
    ``URI=`` the client) is in ``trust_domain``, and servers of every one of ``clusters`` answered."""
    def check(batch: Batch) -> str | None:
        seen: Counter[str] = Counter()
        for r in batch:
            if not r.ok or r.retried:
                seen[next(iter(tally([r])))] += 1
                continue
            for role, ident in (("server", r.server_identity), ("client", r.peer_identity)):
                seen[f"{role} {ident.trust_domain if ident else 'no identity (not mTLS)'} in {r.cluster}"] += 1
        wrong = {k: n for k, n in seen.items() if not k.split(" in ")[0].endswith(f" {trust_domain}")}
        answered = {r.cluster for r in batch if r.ok and not r.retried}
        missing = [c for c in clusters if c not in answered]
        if wrong or missing:
            return (f"expected every presented identity in trust domain {trust_domain} and servers of {', '.join(clusters)} "
                    f"answering; observed {dict(seen)}" + (f"; no answer from {', '.join(missing)}" if missing else ""))
        return None
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
