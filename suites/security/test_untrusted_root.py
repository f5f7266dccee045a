"""mTLS: a client whose certificate comes from a root the mesh does not trust is refused."""

from __future__ import annotations

import pytest

from eastwest.mesh import Cluster
from eastwest.support import checks
from eastwest.support.eventually import Eventually
from eastwest.workloads import CLIENT_WITH_UNTRUSTED_ROOT, ECHO_EU_ONLY_URL, ECHO_URL, SLEEP

pytestmark = [
    pytest.mark.core,
    pytest.mark.features("multi-network", "mtls", "foreign-root-client"),
    pytest.mark.manifests("security/echo-in-eu-only.yaml"),
    pytest.mark.manifests("security/client-with-untrusted-root.yaml", clusters=("us",)),
]


@pytest.mark.parametrize("url", [ECHO_URL, ECHO_EU_ONLY_URL], ids=["echo-both-clusters", "echo-eu-only"])
def test_client_with_untrusted_root_is_refused(us: Cluster, url: str, eventually: Eventually) -> None:
    """Servers in both clusters reject a certificate from an untrusted root, while the trusted client gets through."""
    eventually(lambda: us.call(SLEEP, url, count=3), until=checks.ok(), what="control: the trusted client reaching the service")
    eventually(
        lambda: us.call(CLIENT_WITH_UNTRUSTED_ROOT, url, count=5),
        until=checks.refused(),
        what="servers refusing a client certificate from an untrusted root",
    )
