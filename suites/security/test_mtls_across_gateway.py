"""mTLS across the east-west hop: a US client reaches an EU-only service over mTLS, with its identity."""

from __future__ import annotations

import pytest

from eastwest.mesh import Cluster
from eastwest.support import checks
from eastwest.support.eventually import Eventually
from eastwest.workloads import ECHO_EU_ONLY_SERVICE, ECHO_EU_ONLY_URL, SLEEP

pytestmark = [
    pytest.mark.core,
    pytest.mark.features("multi-network", "mtls"),
    pytest.mark.manifests("security/echo-in-eu-only.yaml"),
]


def test_eu_server_sees_the_us_client_spiffe_id(us: Cluster, eu: Cluster, eventually: Eventually) -> None:
    """Answers come from EU, and their XFCC names the US client's SPIFFE ID (By= the EU server's)."""
    client_id = us.spiffe_id(SLEEP.namespace, "sleep")
    responses = eventually(
        lambda: us.call(SLEEP, ECHO_EU_ONLY_URL, count=10),
        until=checks.all_of(checks.served_by(ECHO_EU_ONLY_SERVICE, eu.name), checks.peer_is(client_id)),
        what="US client reaching the EU-only echo over mTLS",
    )
    assert client_id.trust_domain == "corp.local", f"client identity {client_id} is outside trust domain corp.local"
    servers = {str(r.server_identity) for r in responses}
    assert servers == {str(eu.spiffe_id("echo", "echo-eu-only"))}, (
        f"expected XFCC By= the EU server's identity; observed {servers}\n{checks.evidence(responses)}"
    )
