"""Server identity across the east-west hop: a client talks only to the server identity it expects, from the mesh's root."""

from __future__ import annotations

import pytest

from eastwest.mesh import Cluster
from eastwest.support import checks
from eastwest.support.eventually import Eventually
from eastwest.workloads import ECHO_EU_ONLY_URL, ECHO_UNTRUSTED_URL, SLEEP

pytestmark = [pytest.mark.core, pytest.mark.features("multi-network", "mtls")]


@pytest.mark.manifests("security/echo-in-eu-only.yaml", "security/destinationrule-expects-another-server.yaml")
def test_client_expecting_another_server_identity_gets_no_answer(us: Cluster, eu: Cluster, eventually: Eventually) -> None:
    """A US client whose DestinationRule expects another SPIFFE ID gets no answer from the real EU server."""
    expected = us.spiffe_id("echo", "someone-else")
    eventually(
        lambda: us.call(SLEEP, ECHO_EU_ONLY_URL, count=5),
        until=checks.refused_by_server_identity(expected),
        what=f"the US client refusing the EU server, which is not {expected}",
    )


@pytest.mark.features("foreign-root-server")
@pytest.mark.manifests("security/server-with-untrusted-root.yaml")
def test_client_refuses_a_server_with_a_certificate_from_another_root(us: Cluster, eventually: Eventually) -> None:
    """A US client refuses an EU server whose certificate comes from a root the mesh does not trust."""
    eventually(
        lambda: us.call(SLEEP, ECHO_UNTRUSTED_URL, count=5),
        until=checks.refused_untrusted_server(),
        what="the US client refusing a server certificate from an untrusted root",
    )
