"""The mesh PKI shared by every backend: one root, one intermediate per cluster, workload certs.

An intermediate exports the four files Istio's ``cacerts`` secret takes
(``ca-cert.pem``, ``ca-key.pem``, ``root-cert.pem``, ``cert-chain.pem``); the kind backend
creates that secret from them, the lab backend signs its proxies' certificates with them.
Keys are ECDSA P-256: fast to make, and accepted by Istio's plugged-in CA.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from eastwest.support.spiffe import SpiffeId

_SKEW = dt.timedelta(minutes=5)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class WorkloadCert:
    """A workload's key and certificate, with the chain up to (not including) the root."""

    spiffe_id: SpiffeId
    cert_pem: bytes
    key_pem: bytes
    chain_pem: bytes  # leaf + intermediates: what a proxy presents
    root_pem: bytes  # what a proxy trusts


@dataclass(frozen=True)
class Authority:
    """A CA that can sign: the root, or a cluster's intermediate."""

    name: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    parents: tuple[x509.Certificate, ...] = ()  # issuer chain, nearest first, ending at the root

    @property
    def root(self) -> x509.Certificate:
        return self.parents[-1] if self.parents else self.cert

    def _sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        return builder.sign(self.key, hashes.SHA256())

    def intermediate(self, cluster: str, *, org: str = "eastwest", days: int = 365) -> Authority:
        """Issue the intermediate CA of one cluster (what istiod signs workloads with)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                x509.NameAttribute(NameOID.COMMON_NAME, f"Intermediate CA {cluster}"),
                x509.NameAttribute(NameOID.LOCALITY_NAME, cluster),
            ]
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _SKEW)
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        return Authority(cluster, self._sign(builder), key, (self.cert, *self.parents))

    def workload(self, spiffe_id: SpiffeId, *, hours: int = 24) -> WorkloadCert:
        """Issue a workload certificate whose only SAN is the SPIFFE URI, as Istio does."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _SKEW)
            .not_valid_after(now + dt.timedelta(hours=hours))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id.uri)]), critical=True
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        cert = self._sign(builder)
        chain = _pem(cert) + _pem(self.cert) + b"".join(_pem(p) for p in self.parents[:-1])
        return WorkloadCert(spiffe_id, _pem(cert), _key_pem(key), chain, _pem(self.root))

    def cacerts(self) -> dict[str, bytes]:
        """The four files of Istio's ``cacerts`` secret for this (intermediate) CA."""
        return {
            "ca-cert.pem": _pem(self.cert),
            "ca-key.pem": _key_pem(self.key),
            "root-cert.pem": _pem(self.root),
            "cert-chain.pem": _pem(self.cert) + b"".join(_pem(p) for p in self.parents),
        }


def new_root(name: str = "eastwest root CA", *, org: str = "eastwest", days: int = 3650) -> Authority:
    """Create a self-signed root CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org), x509.NameAttribute(NameOID.COMMON_NAME, name)]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _SKEW)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(name, cert, key)


def mesh_cas(clusters: list[str], *, split_roots: bool = False) -> dict[str, Authority]:
    """One intermediate per cluster under one shared root.

    ``split_roots=True`` gives every cluster a root of its own: the classic broken
    multi-cluster install (no common trust), used to prove the suites catch it.
    """
    if split_roots:
        return {c: new_root(f"eastwest root CA ({c} only)").intermediate(c) for c in clusters}
    root = new_root()
    return {c: root.intermediate(c) for c in clusters}
