"""A raw TLS client inside a pod: a handshake that bypasses the pod's sidecar, with a chosen certificate.

It plays a workload that speaks TLS itself (as ``openssl s_client`` in the pod would): it
offers the SNI and ALPN it is told, presents the certificate it is given (or none), reads
the server's certificate without verifying it, and reports what the server did: whether it
asked for a client certificate (a CertificateRequest arrived), which alert it sent, and what
it answered to the bytes sent after the handshake.

``SSLContext._msg_callback`` (CPython's hook on OpenSSL's message callback, there since 3.8)
is the only way the standard library shows a CertificateRequest or an alert's code; it sees
TLS 1.3's handshake messages after decryption.
"""

from __future__ import annotations

import socket
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography import x509

from eastwest.backends.lab.netns import NetNS
from eastwest.backends.lab.protocol import TlsReply
from eastwest.support.pki import WorkloadCert

HANDSHAKE, ALERT = 22, 21
CERTIFICATE_REQUEST = 13
MAX_REPLY = 64 * 1024
# TLS alert descriptions (RFC 8446 section 6) a mesh server plausibly sends
ALERTS = {
    0: "close notify", 10: "unexpected message", 40: "handshake failure", 42: "bad certificate",
    43: "unsupported certificate", 44: "certificate revoked", 45: "certificate expired", 46: "certificate unknown",
    47: "illegal parameter", 48: "unknown CA", 49: "access denied", 50: "decode error", 51: "decrypt error",
    70: "protocol version", 71: "insufficient security", 80: "internal error", 112: "unrecognized name",
    116: "certificate required", 120: "no application protocol",
}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def _server_certificate(sock: ssl.SSLSocket) -> tuple[tuple[str, ...], str | None]:
    der = sock.getpeercert(binary_form=True)
    if not der:
        return (), None
    cert = x509.load_der_x509_certificate(der)
    try:
        sans = tuple(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                     .get_values_for_type(x509.UniformResourceIdentifier))
    except x509.ExtensionNotFound:
        sans = ()
    return sans, cert.issuer.rfc4514_string()


def handshake(ns: NetNS, address: str, port: int, *, sni: str, alpn: list[str], cert: WorkloadCert | None,
              send: bytes, timeout: float, workdir: Path) -> TlsReply:
    """Connect from ``ns``, complete TLS, send ``send``, read the answer until the peer closes or ``timeout``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # read the server's certificate, judge it in the report
    if alpn:
        ctx.set_alpn_protocols(alpn)
    seen: dict[str, Any] = {"requested": False, "alert": None}

    def on_message(conn: object, direction: str, version: object, content_type: int, msg_type: int, data: bytes) -> None:
        if direction != "read":
            return
        if content_type == HANDSHAKE and msg_type == CERTIFICATE_REQUEST:
            seen["requested"] = True
        elif content_type == ALERT and len(data) >= 2 and seen["alert"] is None:
            seen["alert"] = ALERTS.get(data[1], f"alert {data[1]}")

    ctx._msg_callback = on_message  # type: ignore[attr-defined]
    sent_as = None
    if cert is not None:
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            (Path(tmp) / "chain.pem").write_bytes(cert.chain_pem)
            (Path(tmp) / "key.pem").write_bytes(cert.key_pem)
            ctx.load_cert_chain(Path(tmp) / "chain.pem", Path(tmp) / "key.pem")
        sent_as = cert.spiffe_id.uri
    raw = ns.socket()
    raw.settimeout(timeout)
    try:
        raw.connect((address, port))
    except OSError as exc:
        raw.close()
        return TlsReply(False, error=_describe(exc))
    sock = ctx.wrap_socket(raw, server_hostname=sni, do_handshake_on_connect=False)
    fields: dict[str, Any] = {}
    reply, closed, error = b"", False, None
    try:
        sock.do_handshake()
        sans, issuer = _server_certificate(sock)
        fields = {"handshake_completed": True, "version": sock.version(), "alpn": sock.selected_alpn_protocol(),
                  "server_sans": list(sans), "server_issuer": issuer}
        if send:
            sock.sendall(send)
        deadline = time.monotonic() + timeout
        while len(reply) < MAX_REPLY and time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(MAX_REPLY - len(reply))
            if not chunk:
                closed = True
                break
            reply += chunk
    except TimeoutError:
        if not fields:
            error = "timed out"
    except (ssl.SSLError, OSError) as exc:
        closed = True
        error = _describe(exc)
    finally:
        sock.close()
    # in TLS 1.3 a client that sent no certificate learns so only from the server's alert
    # a client sends its certificate only when asked (RFC 8446 4.4.2)
    return TlsReply(True, certificate_requested=seen["requested"], certificate_sent=sent_as if seen["requested"] else None, alert=seen["alert"],
                    error=error, reply=reply, closed_by_peer=closed, **fields)
