"""Self-tests of fixtures/support/pki.py, checked with cryptography's verifier, openssl and a
real mutual-TLS handshake over loopback."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID

from eastwest.support.pki import mesh_cas
from eastwest.support.spiffe import SpiffeId

SLEEP = SpiffeId("corp.local", "sleep", "sleep")
ECHO = SpiffeId("corp.local", "echo", "echo")


def certs(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem)


def one(pem: bytes) -> x509.Certificate:
    [cert] = certs(pem)
    return cert


@pytest.fixture(scope="module")
def shared():
    return mesh_cas(["us", "eu"])


@pytest.fixture(scope="module")
def split():
    return mesh_cas(["us", "eu"], split_roots=True)


def client_verify(root: x509.Certificate, leaf: x509.Certificate, intermediates: list[x509.Certificate]):
    """Full path validation (RFC 5280 / CABF profile) as a TLS server checks a client certificate."""
    store = verification.Store([root])
    return verification.PolicyBuilder().store(store).build_client_verifier().verify(leaf, intermediates)


def test_intermediates_share_one_root(shared):
    us, eu = shared["us"], shared["eu"]
    assert us.root == eu.root
    root = us.root
    root.verify_directly_issued_by(root)  # self-signed
    for ca in (us, eu):
        ca.cert.verify_directly_issued_by(root)
        bc = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.critical and bc.value.ca and bc.value.path_length == 0
        ku = ca.cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert ku.key_cert_sign and ku.crl_sign
    assert us.cert.public_key() != eu.cert.public_key()
    assert us.cert.subject != eu.cert.subject  # distinct intermediates, one per cluster


def test_cacerts_files(shared):
    eu = shared["eu"]
    files = eu.cacerts()
    assert set(files) == {"ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"}
    ca_cert, root = one(files["ca-cert.pem"]), one(files["root-cert.pem"])
    assert ca_cert == eu.cert and root == eu.root
    # cert-chain.pem: the intermediate, then the root
    assert certs(files["cert-chain.pem"]) == [ca_cert, root]
    ca_cert.verify_directly_issued_by(root)
    # ca-key.pem is the private key of ca-cert.pem (unencrypted PKCS#8, as Istio reads it)
    assert files["ca-key.pem"].startswith(b"-----BEGIN PRIVATE KEY-----")
    key = serialization.load_pem_private_key(files["ca-key.pem"], password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert key.public_key() == ca_cert.public_key()


def test_workload_cert_shape(shared):
    w = shared["us"].workload(SLEEP)
    leaf = one(w.cert_pem)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert list(san.value) == [x509.UniformResourceIdentifier("spiffe://corp.local/ns/sleep/sa/sleep")]
    assert san.critical and len(leaf.subject) == 0  # RFC 5280: empty subject needs a critical SAN
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.not_valid_after_utc > leaf.not_valid_before_utc
    key = serialization.load_pem_private_key(w.key_pem, password=None)
    assert key.public_key() == leaf.public_key()
    assert w.spiffe_id == SLEEP


def test_workload_chain_and_verification(shared):
    us, eu = shared["us"], shared["eu"]
    w = eu.workload(ECHO)
    leaf = one(w.cert_pem)
    chain = certs(w.chain_pem)
    assert chain == [leaf, eu.cert]  # what a proxy presents: leaf + intermediate, not the root
    assert one(w.root_pem) == eu.root
    leaf.verify_directly_issued_by(eu.cert)
    with pytest.raises((ValueError, InvalidSignature)):
        leaf.verify_directly_issued_by(us.cert)  # the other cluster's intermediate did not sign it
    # full path validation from the *other* cluster's trust anchor: the shared root makes it work
    verified = client_verify(one(us.cacerts()["root-cert.pem"]), leaf, chain[1:])
    assert verified.chain == [leaf, eu.cert, eu.root]
    assert list(verified.subjects) == [x509.UniformResourceIdentifier(ECHO.uri)]


def test_split_roots_do_not_trust_each_other(split):
    us, eu = split["us"], split["eu"]
    assert us.root != eu.root
    assert us.root.public_key() != eu.root.public_key()
    w = eu.workload(ECHO)
    leaf = one(w.cert_pem)
    client_verify(eu.root, leaf, [eu.cert])  # fine within its own cluster
    with pytest.raises(verification.VerificationError):
        client_verify(us.root, leaf, [eu.cert])
    # not merely a name mismatch: the US root's key did not sign the EU intermediate
    with pytest.raises(InvalidSignature):
        us.root.public_key().verify(
            eu.cert.signature, eu.cert.tbs_certificate_bytes, ec.ECDSA(eu.cert.signature_hash_algorithm)
        )


# --------------------------------------------------------------------------- openssl


def _write(tmp: Path, name: str, data: bytes) -> str:
    path = tmp / name
    path.write_bytes(data)
    return str(path)


def _openssl_verify(tmp: Path, root_pem: bytes, chain_pem: bytes, purpose: str) -> subprocess.CompletedProcess:
    chain = certs(chain_pem)
    leaf = _write(tmp, "leaf.pem", chain[0].public_bytes(serialization.Encoding.PEM))
    inter = _write(tmp, "inter.pem", b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain[1:]))
    root = _write(tmp, "root.pem", root_pem)
    return subprocess.run(
        ["openssl", "verify", "-x509_strict", "-purpose", purpose, "-CAfile", root, "-untrusted", inter, leaf],
        capture_output=True, text=True, timeout=20,
    )


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not on PATH")
@pytest.mark.parametrize("purpose", ["sslclient", "sslserver"])
def test_openssl_verifies_cross_cluster_chain(tmp_path, shared, purpose):
    w = shared["eu"].workload(ECHO)
    us_root = shared["us"].cacerts()["root-cert.pem"]
    out = _openssl_verify(tmp_path, us_root, w.chain_pem, purpose)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith(": OK")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not on PATH")
def test_openssl_rejects_split_roots(tmp_path, split):
    w = split["eu"].workload(ECHO)
    out = _openssl_verify(tmp_path, split["us"].cacerts()["root-cert.pem"], w.chain_pem, "sslclient")
    assert out.returncode != 0
    assert "unable to get local issuer certificate" in (out.stdout + out.stderr)


# --------------------------------------------------------------------------- a real mTLS handshake


def _context(tmp: Path, side: str, w, trust_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if side == "server" else ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_cert_chain(_write(tmp, f"{side}-chain.pem", w.chain_pem), _write(tmp, f"{side}-key.pem", w.key_pem))
    ctx.load_verify_locations(cadata=trust_pem.decode())
    ctx.verify_mode = ssl.CERT_REQUIRED
    if side == "client":
        ctx.check_hostname = False  # SPIFFE certs carry no DNS name; the identity is the URI SAN
    return ctx


def _handshake(tmp: Path, server_w, client_w) -> str:
    """Mutual TLS between two workloads over loopback; returns the client URI the server saw."""
    server_ctx = _context(tmp, "server", server_w, server_w.root_pem)
    client_ctx = _context(tmp, "client", client_w, client_w.root_pem)
    listener = socket.create_server(("127.0.0.1", 0))
    seen: dict[str, Any] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        conn.settimeout(5)
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                seen["peer"] = tls.getpeercert()
                tls.sendall(b"hi")
        except (ssl.SSLError, OSError) as exc:
            seen["error"] = exc

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with socket.create_connection(listener.getsockname(), timeout=5) as raw:
            with client_ctx.wrap_socket(raw) as tls:
                tls.recv(2)
                der = tls.getpeercert(binary_form=True)
                assert der is not None
                server_cert = x509.load_der_x509_certificate(der)
    finally:
        t.join(5)
        listener.close()
    assert list(server_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value) == [
        x509.UniformResourceIdentifier(server_w.spiffe_id.uri)
    ]
    [(kind, uri)] = seen["peer"]["subjectAltName"]
    assert kind == "URI"
    return uri


def test_mutual_tls_across_clusters(tmp_path, shared):
    server = shared["eu"].workload(ECHO)
    client = shared["us"].workload(SLEEP)
    assert _handshake(tmp_path, server, client) == SLEEP.uri


def test_mutual_tls_fails_with_split_roots(tmp_path, split):
    server = split["eu"].workload(ECHO)
    client = split["us"].workload(SLEEP)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(tmp_path, server, client)
