"""Checks for the security suite over what a raw TLS client, a port scan and a wire capture saw.

Like :mod:`eastwest.support.checks`, a check returns None when it holds, or one sentence of
"expected ... observed ...", followed by the likely cause where the evidence names one: the
TLS alert the server sent, whether it asked for a client certificate, what a port answered,
which versions a ClientHello offered. A cause is never guessed from the test's intent alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from eastwest.mesh import CLIENT_CERTIFICATES, PortScan, ProbeResult, TlsResult
from eastwest.support.checks import Batch, BatchCheck
from eastwest.support.spiffe import SpiffeId
from eastwest.support.tlswire import ISTIO_ALPNS, Stream, WireReport

TlsCheck = Callable[[TlsResult], "str | None"]


def _trust_domain(uri: str | None) -> str | None:
    try:
        return SpiffeId.parse(uri).trust_domain if uri else None
    except ValueError:
        return None


def answered() -> TlsCheck:
    """The server answered the request sent after the handshake with HTTP 2xx."""
    def check(r: TlsResult) -> str | None:
        status = r.http_status
        return None if status is not None and 200 <= status < 300 else f"expected an HTTP 2xx answer over TLS; observed {r.summary()}"
    return check


def refused_client(trust_domain: str, holding: str) -> TlsCheck:
    """The server gave no answer to a client holding a certificate it must not accept (``holding``: a name of
    :data:`~eastwest.mesh.CLIENT_CERTIFICATES`)."""
    def check(r: TlsResult) -> str | None:
        if r.http_status is None:
            return None
        presented = r.certificate_sent
        if presented is None and not r.certificate_requested:
            cause = "the server never asked for a client certificate: its TLS is one-way (no client validation at all)"
        elif presented is None:
            cause = ("the server asked for a client certificate but went on without one: it does not require it "
                     "(require_client_certificate is false), so TLS is one-way")
        elif _trust_domain(presented) != trust_domain:
            cause = (f"the server accepted {presented}, outside its trust domain {trust_domain}: it does not check the "
                     f"peer's trust domain (no SAN match on spiffe://{trust_domain}/, e.g. PILOT_SKIP_VALIDATE_TRUST_DOMAIN)")
        else:
            cause = (f"the server accepted a certificate for {presented} that the mesh's root did not sign: it does not "
                     f"verify client certificates against the mesh root")
        return (f"expected the server to refuse a client holding {CLIENT_CERTIFICATES[holding]}; observed "
                f"{r.summary()}\nlikely cause: {cause}")
    return check


def refusal_evidence(r: TlsResult) -> str:
    """What a refusal looked like: what the server asked for, what it got, and how it said no."""
    return (f"server asked for a client certificate: {'yes' if r.certificate_requested else 'no'}; got: "
            f"{r.certificate_sent or 'none'}; refused with: {r.alert or r.error or 'a close without answer'}")


def sidecar_vouches_for(peer: SpiffeId) -> BatchCheck:
    """Every answer's identity, as the server's sidecar appended it to XFCC, is ``peer``."""
    def check(batch: Batch) -> str | None:
        bad = [r for r in batch if r.peer_identity != peer]
        if not bad:
            return None
        seen = dict(Counter(str(r.peer_identity or "none") for r in batch))
        header = bad[0].xfcc_header
        if bad[0].status is None:
            cause = f"no answer at all ({bad[0].error})"
        elif header is None:
            cause = ("no XFCC reached the app although the hop was mTLS: the server's sidecar did not append its element "
                     "for the peer it authenticated (forward_client_cert_details neither APPEND_FORWARD nor SANITIZE_SET)")
        else:
            cause = (f"the app's XFCC ends in an element the server's sidecar did not write ({header!r}): the sidecar "
                     f"forwarded the client's own header instead of appending to it")
        return f"expected every answer to name {peer} as the peer; observed {seen}\nlikely cause: {cause}"
    return check


def no_identity_from(forged: SpiffeId) -> BatchCheck:
    """No answer names ``forged`` as the peer or the server: an identity only the client wrote."""
    def check(batch: Batch) -> str | None:
        bad = [r for r in batch if forged in (r.peer_identity, r.server_identity)]
        if not bad:
            return None
        return (f"expected the forged identity {forged} never to be read as a peer or server identity; observed it on "
                f"{len(bad)}/{len(batch)} answers (XFCC as the app got it: {bad[0].xfcc_header!r})"
                f"\nlikely cause: the server's sidecar forwarded the client's own X-Forwarded-Client-Cert as its last element "
                f"instead of appending (APPEND_FORWARD) or replacing (SANITIZE_SET) it")
    return check


def no_peer_identity() -> BatchCheck:
    """Plaintext: no answer carries a peer identity, and no XFCC at all reached the app."""
    def check(batch: Batch) -> str | None:
        bad = [r for r in batch if r.peer_identity is not None or r.xfcc_header is not None]
        if not bad:
            return None
        xfcc = bad[0].xfcc_header
        return (f"expected no peer identity and no XFCC for a plaintext client; observed peer {bad[0].peer_identity} "
                f"on {len(bad)}/{len(batch)} answers (XFCC the app got: {xfcc!r})\nlikely cause: the server's sidecar "
                f"forwarded the client's X-Forwarded-Client-Cert on a connection without a client certificate "
                f"(forward_client_cert_details ALWAYS_FORWARD_ONLY) where Envoy removes it (SANITIZE, APPEND_FORWARD)")
    return check


def first_line(reply: bytes) -> bytes:
    return reply.split(b"\r\n", 1)[0]


def answers_plaintext(result: ProbeResult) -> bool:
    """A plaintext request got an HTTP 2xx answer (something served a mesh service in the clear)."""
    head = result.reply.split(b"\r\n", 1)[0].split()
    return len(head) >= 2 and head[0].startswith(b"HTTP/1.") and head[1][:1] == b"2"


#: what listens on the well-known ports of an Istio proxy or istiod, to name what a scan found
PORT_ROLES = {
    15000: "Envoy's admin API", 15001: "the sidecar's outbound capture", 15004: "the debug interface of istiod",
    15006: "the sidecar's inbound capture", 15008: "the HBONE tunnel", 15009: "HBONE (gateway)",
    15010: "istiod's plaintext xDS", 15012: "istiod's mTLS xDS and CA", 15014: "istiod's monitoring",
    15017: "istiod's webhook", 15020: "pilot-agent's merged metrics", 15021: "the health status port",
    15053: "the DNS proxy", 15090: "Envoy's Prometheus stats", 15443: "the mTLS passthrough port",
}


def _port(port: int) -> str:
    return f"port {port}" + (f" ({PORT_ROLES[port]})" if port in PORT_ROLES else "")


def only_ports(allowed: Iterable[int], required: Iterable[int], what: str) -> Callable[[PortScan], str | None]:
    """Only ``allowed`` ports are open, ``required`` are, and none answers a plaintext request with 2xx."""
    allowed, required = set(allowed), set(required)

    def check(scan: PortScan) -> str | None:
        problems = []
        missing = sorted(required - set(scan.open_ports))
        if missing:
            problems.append(f"{', '.join(_port(p) for p in missing)} closed ({', '.join(scan.results[p].summary() for p in missing)})")
        for port in scan.open_ports:
            result = scan.results[port]
            if port not in allowed:
                problems.append(f"{_port(port)} open, which a real east-west gateway does not serve")
            if answers_plaintext(result):
                problems.append(f"{_port(port)} answered a plaintext request for a mesh service with {first_line(result.reply)!r}"
                                + (": the mesh service itself answered in clear" if b"application/json" in result.reply else ""))
        if not problems:
            return None
        return (f"expected {what} to serve only {sorted(allowed)} (with {sorted(required)} open) and no plaintext to mesh "
                f"services; observed: " + "; ".join(problems))
    return check


def admin_unreachable(results: dict[str, ProbeResult]) -> str | None:
    """No admin API answered (``results``: "who at address:port" -> probe)."""
    answered = {target: r for target, r in results.items() if r.reply.startswith(b"HTTP/")}
    if not answered:
        return None
    lines = [f"{target}: {first_line(r.reply)!r}" for target, r in answered.items()]
    return ("expected no proxy's admin API to answer from outside its pod; observed answers from " + "; ".join(lines)
            + "\nlikely cause: the proxy's admin API listens on a non-loopback address (Istio's bootstrap binds it to 127.0.0.1)")


def _stream_problems(s: Stream, sni: str) -> list[str]:
    problems: list[str] = []
    if s.empty:
        return problems
    if s.tls is False:
        problems.append(f"{s.client} -> {s.server} is not TLS ({s.plaintext_bytes} plaintext bytes)")
    if s.http_lines:
        problems.append(f"{s.client} -> {s.server} carries HTTP in clear: {list(s.http_lines)}")
    if s.identities_in_clear:
        problems.append(f"{s.client} -> {s.server} shows identities in clear: {list(s.identities_in_clear)}")
    ch, version = s.client_hello, s.version
    if s.complete and s.tls:
        if ch is None:
            problems.append(f"{s.client} -> {s.server}: no ClientHello")
            return problems
        if ch.sni != sni:
            problems.append(f"{s.client} -> {s.server}: SNI {ch.sni!r}, expected {sni!r}")
        if not ISTIO_ALPNS & set(ch.alpn):
            problems.append(f"{s.client} -> {s.server}: ALPN {list(ch.alpn)} offers none of Istio's {sorted(ISTIO_ALPNS)}")
        if version != "TLSv1.3":
            offered = list(ch.versions) or [ch.legacy_version or "?"]
            why = ("the client offered no TLS 1.3 (its maximum is TLS 1.2: Envoy's client default when tls_params "
                   "set no maximum)" if "TLSv1.3" not in offered else "the server chose below TLS 1.3")
            problems.append(f"{s.client} -> {s.server}: negotiated {version}, expected TLSv1.3; offered {offered}: {why}")
    return problems


def istio_mtls_only(sni: str) -> Callable[[WireReport], str | None]:
    """Every TCP stream on the wire is TLS, opened with ``sni`` and Istio's ALPN, at TLS 1.3; nothing in clear."""
    def check(report: WireReport) -> str | None:
        opened = [s for s in report.streams if s.complete and s.client_hello is not None]
        problems = [p for s in report.streams for p in _stream_problems(s, sni)]
        if not opened:
            problems.insert(0, "no TLS stream opened during the capture")
        if not problems:
            return None
        return "expected only Istio mTLS (TLS 1.3, SNI " + sni + ", Istio ALPN) between the clusters; observed:\n- " + \
            "\n- ".join(problems)
    return check
