"""Likely causes read from the evidence: one response's TLS failure reason and the side that raised it,
the SAN the server presented, response flags, upstream attempts; a client's endpoint table for locality.

Every cause here is derived from something observed and says so; when the observations do not
decide, the answer is :data:`NOT_DETERMINED`, never a guess from a list of usual suspects.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from eastwest.mesh import ProxyEndpoint
from eastwest.support.echo import EchoResponse
from eastwest.support.spiffe import SpiffeId

NOT_DETERMINED = "cause not determined from the observations (see the raw response and the proxy's config and logs)"
GATEWAY_PORT_SUFFIX = ":15443"

_SAN_SEEN = re.compile(r"SAN matcher, certificate SANs are \[([^\]]*)\]")


def _norm(text: str) -> str:
    """Envoy writes spaces as underscores in header values: compare on spaces."""
    return text.replace("_", " ")


def cause_of(r: EchoResponse) -> str | None:
    """What one response's own evidence says went wrong; None when nothing did."""
    if r.ok and not r.retried:
        return None
    failure = _norm(r.upstream_failure or "")
    flags = set((r.response_flags or "").split(","))
    host = r.upstream_host or "?"
    via_gateway = host.endswith(GATEWAY_PORT_SUFFIX)
    if r.ok and r.retried:
        return (f"answered only after {r.upstream_attempts} upstream attempts: the first attempt failed and the client "
                f"proxy retried (the answer came from {r.cluster or 'a non-echo server'}; the failed path stays hidden "
                f"from a status-code check)")
    if "CERTIFICATE VERIFY FAILED" in failure:
        seen = _SAN_SEEN.search(failure)
        if seen:
            sans = [s.strip() for s in seen.group(1).split(",") if s.strip()]
            domains = sorted({SpiffeId.parse(s).trust_domain for s in sans if _is_spiffe(s)})
            return (f"the client sidecar refused the server's certificate at {host} on its SAN check: the server "
                    f"presented {sans or 'no URI SAN'}{f' (trust domain {domains[0]})' if len(domains) == 1 else ''}, "
                    f"which is not an identity the client expects for this service (client side raised it)")
        return (f"the client sidecar could not chain the certificate presented at {host} to its root CA (client side "
                f"raised CERTIFICATE_VERIFY_FAILED, not a SAN mismatch): the two sides do not share one root CA, "
                f"or something on the path terminated TLS with a certificate of its own")
    if "TLSV1 ALERT UNKNOWN CA" in failure:
        return (f"the server side at {host} rejected the client's certificate with a TLS alert 'unknown CA': the "
                f"server does not trust the root that issued the client's certificate")
    if "TLSV1 ALERT" in failure or "SSLV3 ALERT" in failure:
        alert = re.search(r"(TLSV1|SSLV3) ALERT [A-Z ]+", failure)
        return (f"the server side at {host} aborted the handshake ({alert.group(0).strip() if alert else 'TLS alert'}): "
                f"it refused the client's certificate or identity")
    if "WRONG VERSION NUMBER" in failure or "PACKET LENGTH TOO LONG" in failure:
        return f"the client sidecar expected TLS from {host} but got plaintext back (the server side does not speak mTLS there)"
    body = _norm(r.body).lower()
    if "connection refused" in failure.lower() or "connection refused" in body:
        return f"nothing listens at {host}: the client proxy's connection was refused (a wrong endpoint port, or no listener there)"
    if "UH" in flags or "no healthy upstream" in body:
        return "the client proxy had no healthy endpoint for this service (none published, or all ejected by outlier detection)"
    from_proxy = (r.response_headers.get("server") or r.response_headers.get("Server")) == "envoy" and r.cluster is None
    if "NR" in flags or (r.status == 404 and from_proxy and not r.response_flags):
        # a route's response headers never reach an answer for which no route matched: 404 from the proxy itself
        return "the client proxy has no route for this host (no service or ServiceEntry for it in the client's cluster)"
    if flags & {"UF", "UC"} and ("connection termination" in body or "reset" in body or not failure):
        if via_gateway:
            return (f"the east-west gateway at {host} closed the connection during or right after the TLS handshake: its "
                    f"AUTO_PASSTHROUGH filter chains match neither the SNI nor the ALPN the client sent, or it cannot reach "
                    f"what is behind that SNI; in TLS 1.3 a server sidecar that refuses the client's certificate also closes "
                    f"only after the client's handshake (the gateway's SNI chains and the server's ssl.fail_verify_* stats say which)")
        return (f"the server at {host} closed the connection right after the TLS handshake: in TLS 1.3 that is how a server "
                f"sidecar refuses the client's certificate (its ssl.fail_verify_* stats confirm it)")
    if r.status is None and r.error:
        if "timed out" in r.error:
            return f"no answer within the request time limit; the client side cannot tell where it stalled ({NOT_DETERMINED})"
        return f"the request got no HTTP response ({r.error}); {NOT_DETERMINED}"
    if r.ok:
        return None
    return NOT_DETERMINED


def _is_spiffe(text: str) -> bool:
    try:
        SpiffeId.parse(text)
        return True
    except ValueError:
        return False


def likely_cause(batch: Sequence[EchoResponse]) -> str | None:
    """The cause the batch's evidence shows, most common first; None when every response is clean."""
    causes = Counter(c for c in (cause_of(r) for r in batch) if c)
    if not causes:
        return None
    (top, n), *rest = causes.most_common()
    more = f" (and {len(rest)} other symptom(s) in the batch)" if rest else ""
    return f"{top} [{n}/{len(batch)} responses]{more}"


def _region(locality: str) -> str:
    return locality.split("/")[0]


def locality_cause(endpoints: Sequence[ProxyEndpoint], weights: dict[str, int] | None, *, own_region: str,
                   expected_shares: dict[str, float] | None = None) -> str:
    """The likely cause of a locality failure, read from the client's endpoint table (locality, priority,
    weight, health) and its locality weights; ``expected_shares`` (region -> share) for distribute.

    Never guesses: when the configuration matches what was expected and every endpoint is healthy,
    it says the cause is not determined.
    """
    if not endpoints:
        return "the client proxy has no endpoint at all for this service"
    unhealthy = [e for e in endpoints if not e.healthy]
    if unhealthy:
        where = ", ".join(f"{e.address}:{e.port} ({e.locality or 'no locality'})" for e in unhealthy)
        return (f"endpoint(s) {where} are unhealthy or ejected by outlier detection: Envoy moves their locality's "
                f"share to healthy endpoints; the locality settings are not the cause, the failing endpoint is")
    regions = {_region(e.locality) for e in endpoints}
    priorities = {e.priority for e in endpoints}
    if expected_shares is not None:
        if weights is None:
            if len(priorities) > 1:
                return ("the client applies failover priorities, not distribute weights: the DestinationRule in force "
                        "is not the distribute one")
            return ("locality load balancing is off: the client has no locality weights and one priority for every "
                    "locality (Istio applies distribute only with localityLbSetting enabled)")
        total = sum(weights.values()) or 1
        shares: dict[str, float] = {}
        for loc, w in weights.items():
            shares[_region(loc)] = shares.get(_region(loc), 0.0) + w / total
        observed = ", ".join(f"{r} {s:.0%}" for r, s in sorted(shares.items()))
        wanted = ", ".join(f"{r} {s:.0%}" for r, s in sorted(expected_shares.items()))
        if any(abs(shares.get(r, 0.0) - s) > 0.005 for r, s in expected_shares.items()):
            inverted = all(abs(shares.get(r, 0.0) - (1 - s)) < 0.005 for r, s in expected_shares.items()) and len(expected_shares) == 2
            return (f"the client's locality weights are {observed}, not the expected {wanted}"
                    f"{': inverted' if inverted else ''} (the distribute rule in force differs from the one under test)")
        return (f"the client's locality weights are the expected {wanted} and every endpoint is healthy; "
                f"{NOT_DETERMINED}")
    # preference: the client's own region must be the only priority-0 locality
    if len(priorities) == 1 and len(regions) > 1:
        return ("locality load balancing is off: every locality has the same priority (Istio applies failover "
                "priorities only with localityLbSetting enabled and outlierDetection set)")
    top = min(priorities)
    disguised = [e for e in endpoints if e.priority == top and e.port == int(GATEWAY_PORT_SUFFIX[1:]) and _region(e.locality) == own_region]
    if disguised:
        where = ", ".join(f"{e.address}:{e.port}" for e in disguised)
        return (f"an endpoint behind an east-west gateway ({where}) carries the client's own locality {disguised[0].locality}: "
                f"a remote cluster's workloads are labelled with this region (istio-locality or node labels)")
    first = {_region(e.locality) for e in endpoints if e.priority == top}
    if first != {own_region}:
        return f"the client's first priority holds {sorted(first)}, not its own region {own_region}"
    if own_region not in regions:
        return f"the client has no endpoint in its own region {own_region}"
    return f"the client's own region {own_region} alone has the first priority and is healthy; {NOT_DETERMINED}"


def endpoint_table(endpoints: Sequence[ProxyEndpoint], weights: dict[str, int] | None) -> str:
    """The endpoint table for evidence: address, locality, priority, weight, health; and locality weights."""
    lines = [f"  {e.summary()}" for e in endpoints] or ["  (no endpoints)"]
    lines.append(f"  locality weights: {weights if weights else 'none (no locality-weighted load balancing)'}")
    return "\n".join(lines)
