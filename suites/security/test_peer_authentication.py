"""mTLS: STRICT PeerAuthentication refuses a client without a sidecar; PERMISSIVE lets it in as plaintext."""

from __future__ import annotations

import pytest

from eastwest.mesh import Cluster
from eastwest.support import checks
from eastwest.support.eventually import Eventually
from eastwest.workloads import CLIENT_WITHOUT_SIDECAR, ECHO_URL

pytestmark = [pytest.mark.core, pytest.mark.features("mtls", "peer-authentication", "sidecarless-client")]


@pytest.mark.manifests("security/client-without-sidecar.yaml", "security/peer-authentication-strict.yaml")
def test_strict_refuses_a_client_without_sidecar(us: Cluster, eventually: Eventually) -> None:
    """With STRICT mTLS on the echo namespace, plaintext from a pod without a sidecar is refused."""
    eventually(
        lambda: us.call(CLIENT_WITHOUT_SIDECAR, ECHO_URL, count=5),
        until=checks.refused(),
        what="STRICT echo refusing a client without a sidecar",
    )


@pytest.mark.manifests("security/client-without-sidecar.yaml")
def test_permissive_accepts_a_client_without_sidecar_in_plaintext(us: Cluster, eventually: Eventually) -> None:
    """Without STRICT (the PERMISSIVE default) the same client is served, and no peer identity reaches the app."""
    responses = eventually(
        lambda: us.call(CLIENT_WITHOUT_SIDECAR, ECHO_URL, count=5),
        until=checks.served_from(us.name),
        what="PERMISSIVE echo serving a client without a sidecar",
    )
    peers = {r.peer_identity for r in responses}
    assert peers == {None}, f"a plaintext client must not carry a peer identity; observed {peers}\n{checks.evidence(responses)}"
