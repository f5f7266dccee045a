"""Self-tests of what the security suite reads: identity from XFCC only as the server's sidecar
appended it, and TLS facts from a packet capture (eastwest.support.tlswire) on real handshakes.

The handshakes are made by Python's ssl module (OpenSSL) between two memory BIOs and cut into
TCP segments of a synthetic pcap, so the parser meets real ClientHello/ServerHello bytes.
"""

from __future__ import annotations

import ssl
import struct
from pathlib import Path

import pytest

from eastwest.support import security_checks
from eastwest.support.echo import EchoResponse, last_xfcc_element, parse_xfcc
from eastwest.support.pki import mesh_cas
from eastwest.support.spiffe import SpiffeId
from eastwest.support.tlswire import analyse, read_pcap

SLEEP_ID = "spiffe://corp.local/ns/sleep/sa/sleep"
ECHO_ID = "spiffe://corp.local/ns/echo/sa/echo"
FORGED_ID = "spiffe://corp.local/ns/kube-system/sa/cluster-admin"
SIDECAR = f'By={ECHO_ID};Hash={"a" * 64};Subject="";URI={SLEEP_ID}'


def answer(xfcc: str | None) -> EchoResponse:
    headers = {"X-Forwarded-Client-Cert": xfcc} if xfcc is not None else {}
    return EchoResponse(status=200, latency_s=0.0, cluster="eu", request_headers=headers)


# --------------------------------------------------------------------------- identity from XFCC


@pytest.mark.parametrize("forged", [
    f"By={FORGED_ID};Hash=0000;Subject=\"\";URI={FORGED_ID}",  # a whole forged element before the sidecar's
    f"URI={FORGED_ID}",  # a bare URI
    f"By={FORGED_ID};Hash=0000;Subject=\"\";URI={FORGED_ID};DNS=\"",  # an open quote that swallows what follows
    f"URI={FORGED_ID},By={FORGED_ID};URI=\"",  # several elements and a dangling quote
], ids=["element", "bare-uri", "open-quote", "several"])
def test_the_peer_is_the_sidecars_element_whatever_the_client_wrote_before_it(forged: str) -> None:
    r = answer(f"{forged},{SIDECAR}")  # APPEND_FORWARD: what the client sent, then the sidecar's element
    assert r.peer_identity == SpiffeId.parse(SLEEP_ID)
    assert r.server_identity == SpiffeId.parse(ECHO_ID)
    assert security_checks.no_identity_from(SpiffeId.parse(FORGED_ID))([r]) is None


def test_reading_from_the_left_would_be_fooled_by_an_open_quote() -> None:
    # why last_xfcc_element reads from the right: from the left the forged By= survives in the last element
    value = f"By={FORGED_ID};Hash=0000;DNS=\",{SIDECAR}"
    assert parse_xfcc(value)[-1].by == FORGED_ID
    element = last_xfcc_element(value)
    assert element is not None and element.by == ECHO_ID and element.uri == SLEEP_ID


def test_a_last_element_without_by_or_uri_vouches_for_nobody() -> None:
    # never fall back to an earlier element: only the sidecar's own element counts
    assert answer(f"{SIDECAR},Hash=abc;Subject=\"\"").peer_identity is None
    assert answer(f"{SIDECAR},By={ECHO_ID};Hash=abc").peer_identity is None
    assert answer(f"{SIDECAR},URI={FORGED_ID}").peer_identity is None


def test_a_forwarded_forgery_alone_is_read_as_the_peer_and_caught_by_the_checks() -> None:
    # a sidecar that forwards the client's header (ALWAYS_FORWARD_ONLY) makes the forgery the last element:
    # nothing on the app side can tell, so the suite's checks must compare with the real peer
    forged = answer(f"By={FORGED_ID};Hash=0;URI={FORGED_ID}")
    assert forged.peer_identity == SpiffeId.parse(FORGED_ID)
    reason = security_checks.no_identity_from(SpiffeId.parse(FORGED_ID))([forged])
    assert reason is not None and "forwarded the client's own X-Forwarded-Client-Cert" in reason
    reason = security_checks.sidecar_vouches_for(SpiffeId.parse(SLEEP_ID))([forged])
    assert reason is not None and "the sidecar forwarded the client's own header" in reason
    reason = security_checks.no_peer_identity()([answer(f"URI={FORGED_ID};DNS=\"")])
    assert reason is not None and "XFCC the app got" in reason


def test_no_xfcc_means_no_identity_and_the_check_says_why() -> None:
    r = answer(None)
    assert r.peer_identity is None and r.server_identity is None and r.xfcc_header is None
    assert security_checks.no_peer_identity()([r]) is None
    reason = security_checks.sidecar_vouches_for(SpiffeId.parse(SLEEP_ID))([r])
    assert reason is not None and "no XFCC reached the app although the hop was mTLS" in reason


def test_raw_http_answer_types_like_a_proxied_one() -> None:
    body = b'{"cluster": "eu", "pod": "echo-eu-only-eu-0", "headers": {"X-Forwarded-Client-Cert": "' + SIDECAR.replace('"', '\\"').encode() + b'"}}'
    raw = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n" + body
    r = EchoResponse.from_raw_http(url="http://x/", data=raw, latency_s=0.1)
    assert r.ok and r.cluster == "eu" and r.peer_identity == SpiffeId.parse(SLEEP_ID)
    r = EchoResponse.from_raw_http(url="http://x/", data=b"\x15\x03\x03\x00\x02\x02\x30", latency_s=0.1)
    assert r.status is None and "no HTTP answer" in (r.error or "")


# --------------------------------------------------------------------------- TLS on the wire


def _handshake(tmp_path: Path, *, max_version: ssl.TLSVersion, sni: str, alpn: list[str]) -> tuple[bytes, bytes]:
    """A real mTLS handshake (and one application record each way) between memory BIOs: (client bytes, server bytes)."""
    ca = mesh_cas(["eu"])["eu"]
    for name, sid in (("server", ECHO_ID), ("client", SLEEP_ID)):
        cert = ca.workload(SpiffeId.parse(sid))
        (tmp_path / f"{name}.pem").write_bytes(cert.chain_pem)
        (tmp_path / f"{name}.key").write_bytes(cert.key_pem)
        (tmp_path / "root.pem").write_bytes(cert.root_pem)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    server_ctx.load_verify_locations(tmp_path / "root.pem")
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.set_alpn_protocols(["h2", "http/1.1"])
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname, client_ctx.verify_mode = False, ssl.CERT_NONE
    client_ctx.maximum_version = max_version
    client_ctx.load_cert_chain(tmp_path / "client.pem", tmp_path / "client.key")
    client_ctx.set_alpn_protocols(alpn)
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=sni)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    up, down = b"", b""
    for _ in range(10):
        for side in (client, server):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        data = c_out.read()
        up += data
        s_in.write(data)
        data = s_out.read()
        down += data
        c_in.write(data)
    client.write(b"GET / HTTP/1.1\r\n\r\n")
    up += c_out.read()
    return up, down


def _pcap(streams: list[tuple[tuple[str, int], tuple[str, int], bytes, bytes]], *, syn: bool = True, mss: int = 700,
          retransmit: bool = False) -> bytes:
    """Ethernet/IPv4/TCP frames carrying each stream (client bytes, server bytes), cut into ``mss`` segments."""
    def ip(a: str) -> bytes:
        return bytes(int(x) for x in a.split("."))

    frames = []

    def frame(src: tuple[str, int], dst: tuple[str, int], seq: int, flags: int, payload: bytes) -> None:
        tcp = struct.pack("!HHIIBBHHH", src[1], dst[1], seq, 0, 5 << 4, flags, 65535, 0, 0) + payload
        iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, ip(src[0]), ip(dst[0]))
        frames.append(b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + iph + tcp)

    for client, server, up, down in streams:
        if syn:
            frame(client, server, 1000, 0x02, b"")
            frame(server, client, 5000, 0x12, b"")
        for sender, receiver, data, isn in ((client, server, up, 1001), (server, client, down, 5001)):
            for off in range(0, len(data), mss):
                frame(sender, receiver, isn + off, 0x18, data[off:off + mss])
                if retransmit and off == 0:
                    frame(sender, receiver, isn + off, 0x18, data[off:off + mss])
    frames.append(b"\xff" * 12 + b"\x08\x06" + b"\0" * 28)  # an ARP frame
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, f in enumerate(frames):
        out.append(struct.pack("<IIII", 1000, i, len(f), len(f)) + f)
    return b"".join(out)


CLIENT, GATEWAY = ("10.10.0.12", 40000), ("172.31.255.20", 15443)
SNI = "outbound_.80_._.echo-eu-only.echo.svc.cluster.local"
ALPN = ["istio-http/1.1", "istio", "http/1.1"]


def test_a_tls13_stream_reads_with_sni_alpn_and_version(tmp_path: Path) -> None:
    up, down = _handshake(tmp_path, max_version=ssl.TLSVersion.TLSv1_3, sni=SNI, alpn=ALPN)
    report = analyse(_pcap([(CLIENT, GATEWAY, up, down)], retransmit=True))
    [stream] = report.streams
    assert report.other_frames == 1 and stream.complete and stream.tls and stream.plaintext_bytes == 0
    assert stream.client_hello is not None and stream.client_hello.sni == SNI and stream.client_hello.alpn == tuple(ALPN)
    assert "TLSv1.3" in stream.client_hello.versions and stream.version == "TLSv1.3"
    assert stream.identities_in_clear == () and stream.http_lines == ()
    assert security_checks.istio_mtls_only(SNI)(report) is None
    assert "negotiated TLSv1.3" in report.summary()


def test_a_tls12_stream_shows_its_identities_and_fails_the_check(tmp_path: Path) -> None:
    up, down = _handshake(tmp_path, max_version=ssl.TLSVersion.TLSv1_2, sni=SNI, alpn=ALPN)
    [stream] = analyse(_pcap([(CLIENT, GATEWAY, up, down)])).streams
    assert stream.version == "TLSv1.2" and "TLSv1.3" not in stream.client_hello.versions  # type: ignore[union-attr]
    assert stream.identities_in_clear == (ECHO_ID, SLEEP_ID)  # both certificates cross in clear
    reason = security_checks.istio_mtls_only(SNI)(analyse(_pcap([(CLIENT, GATEWAY, up, down)])))
    assert reason is not None and "negotiated TLSv1.2, expected TLSv1.3" in reason and "the client offered no TLS 1.3" in reason
    assert f"shows identities in clear: ['{ECHO_ID}', '{SLEEP_ID}']" in reason


def test_wrong_sni_and_alpn_are_named(tmp_path: Path) -> None:
    up, down = _handshake(tmp_path, max_version=ssl.TLSVersion.TLSv1_3, sni="echo.example", alpn=["h2"])
    reason = security_checks.istio_mtls_only(SNI)(analyse(_pcap([(CLIENT, GATEWAY, up, down)])))
    assert reason is not None and "SNI 'echo.example', expected" in reason and "offers none of Istio's" in reason


def test_plaintext_http_is_found_and_counted() -> None:
    up = b"GET / HTTP/1.1\r\nHost: echo.echo.svc.cluster.local\r\nX-Forwarded-Client-Cert: URI=" + SLEEP_ID.encode() + b"\r\n\r\n"
    down = b'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}'
    report = analyse(_pcap([(CLIENT, ("172.31.255.20", 8080), up, down)], mss=20))
    [stream] = report.streams
    assert stream.tls is False and stream.plaintext_bytes == len(up) + len(down)
    assert stream.http_lines == ("GET / HTTP/1.1", "HTTP/1.1 200")
    assert stream.identities_in_clear == (SLEEP_ID,)
    reason = security_checks.istio_mtls_only(SNI)(report)
    assert reason is not None and "is not TLS" in reason and "carries HTTP in clear" in reason
    assert "no TLS stream opened during the capture" in reason


def test_a_stream_joined_mid_way_is_not_judged_on_records(tmp_path: Path) -> None:
    up, down = _handshake(tmp_path, max_version=ssl.TLSVersion.TLSv1_3, sni=SNI, alpn=ALPN)
    report = analyse(_pcap([(CLIENT, GATEWAY, up[7:], down[3:])], syn=False))
    [stream] = report.streams
    assert not stream.complete and stream.tls is None and stream.plaintext_bytes == 0 and stream.client_hello is None
    assert "joined mid-stream" in stream.summary()


def test_not_a_pcap_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="not a pcap file"):
        read_pcap(b"\0" * 40)
