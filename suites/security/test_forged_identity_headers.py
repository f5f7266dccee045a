"""Identity headers cannot be forged: the app learns its peer only from its own sidecar, whatever the client writes.

The echo app reads no header as identity; the suite reads identity only from the last element of
X-Forwarded-Client-Cert, the one the server's sidecar adds (eastwest.support.echo.last_xfcc_element).
"""

from __future__ import annotations

import pytest

from eastwest.mesh import Cluster
from eastwest.support import checks, security_checks
from eastwest.support.echo import EchoResponse
from eastwest.support.eventually import Eventually
from eastwest.support.spiffe import SpiffeId
from eastwest.workloads import (
    CLIENT_WITHOUT_SIDECAR,
    ECHO_EU_ONLY_HOST,
    ECHO_EU_ONLY_SNI,
    ECHO_EU_ONLY_URL,
    ECHO_URL,
    GATEWAY_PORT,
    SIDECAR_ALPNS,
    SLEEP,
)

pytestmark = [pytest.mark.core, pytest.mark.features("mtls")]


def forged_headers(us: Cluster, *, smuggling: bool = False) -> tuple[SpiffeId, dict[str, str]]:
    """An XFCC naming an admin identity, written as a sidecar would write it. ``smuggling`` ends it in an open quote,
    which would swallow the element the server's sidecar appends if the header were read from the left."""
    forged = us.spiffe_id("kube-system", "cluster-admin")
    value = f'By={forged};Hash=0000;Subject="";URI={forged}' + (';DNS="' if smuggling else "")
    return forged, {"X-Forwarded-Client-Cert": value}


@pytest.mark.features("multi-network")
@pytest.mark.manifests("security/echo-in-eu-only.yaml")
def test_a_client_with_a_sidecar_cannot_forge_its_identity(us: Cluster, eventually: Eventually) -> None:
    """A US client that sends a forged XFCC reaches the EU server with its own SPIFFE ID only."""
    forged, headers = forged_headers(us)
    eventually(
        lambda: us.call(SLEEP, ECHO_EU_ONLY_URL, count=5, headers=headers),
        until=checks.all_of(security_checks.sidecar_vouches_for(us.spiffe_id(SLEEP.namespace, "sleep")),
                            security_checks.no_identity_from(forged)),
        what="the EU server seeing the US client's real identity despite a forged XFCC",
    )


@pytest.mark.features("peer-authentication", "sidecarless-client")
@pytest.mark.manifests("security/client-without-sidecar.yaml")
def test_a_client_without_a_sidecar_cannot_forge_an_identity(us: Cluster, eventually: Eventually) -> None:
    """A plaintext client (PERMISSIVE) that sends a forged XFCC reaches the server with no identity at all."""
    forged, headers = forged_headers(us)
    eventually(
        lambda: us.call(CLIENT_WITHOUT_SIDECAR, ECHO_URL, count=5, headers=headers),
        until=checks.all_of(checks.served_from(us.name), security_checks.no_peer_identity()),
        what="the server seeing no identity from a plaintext client with a forged XFCC",
    )


@pytest.mark.features("multi-network", "raw-tls-client")
@pytest.mark.manifests("security/echo-in-eu-only.yaml")
def test_a_forged_xfcc_over_mtls_is_never_read_as_the_peer(us: Cluster, eu: Cluster, eventually: Eventually) -> None:
    """A client speaking mTLS itself with its own certificate and a forged XFCC is read as itself, never as the forgery."""
    forged, headers = forged_headers(us, smuggling=True)
    gateway = eu.gateway_address()
    assert gateway, "the EU gateway has no address"
    request = (f"GET / HTTP/1.1\r\nHost: {ECHO_EU_ONLY_HOST}\r\nConnection: close\r\n"
               + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()

    def call() -> list[EchoResponse]:
        result = us.tls_connect(SLEEP, gateway, GATEWAY_PORT, sni=ECHO_EU_ONLY_SNI, alpn=SIDECAR_ALPNS, certificate="own", send=request)
        return [EchoResponse.from_raw_http(url=ECHO_EU_ONLY_URL, data=result.reply, latency_s=0.0) if result.reply
                else EchoResponse.failed(url=ECHO_EU_ONLY_URL, error=result.summary(), latency_s=0.0)]

    eventually(
        call,
        until=checks.all_of(security_checks.sidecar_vouches_for(us.spiffe_id(SLEEP.namespace, "sleep")), checks.server_is(eu.spiffe_id("echo", "echo-eu-only")),
                            security_checks.no_identity_from(forged)),
        what="the EU server naming the real mTLS peer after a forged XFCC element",
    )
