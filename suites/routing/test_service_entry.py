"""ServiceEntry routing: the seed's hand-written route to EU through the EU gateway, and why it needs a DestinationRule.

The entry is the seed's as written (``echo.eu.mesh.local`` on port 80, endpoint the EU gateway's
load-balancer name on 15443, resolution DNS, locality eu) and is called as the seed's verification
calls it: ``http://echo.eu.mesh.local/``.
"""

from __future__ import annotations

import pytest

from eastwest.mesh import Cluster
from eastwest.settings import Settings
from eastwest.support import checks, envoy, stats
from eastwest.support.eventually import Eventually
from eastwest.workloads import (
    EASTWEST_GATEWAY,
    ECHO_SERVICE,
    GATEWAY_PORT,
    SERVICE_ENTRY_UPSTREAM,
    SERVICE_ENTRY_URL,
    SLEEP,
)

pytestmark = [pytest.mark.core, pytest.mark.features("multi-network", "mtls", "service-entry", "proxy-config-dump")]


def sni_evidence(us: Cluster, eu: Cluster) -> str:
    """What SNI the US client sends on the route, and what the EU gateway accepts."""
    sent = envoy.upstream_sni(us.proxy_config_dump(SLEEP), SERVICE_ENTRY_UPSTREAM)
    accepted = envoy.passthrough_server_names(eu.proxy_config_dump(EASTWEST_GATEWAY), GATEWAY_PORT)
    verdict = "matches" if sent in accepted else "matches NONE of"
    endpoints = "; ".join(e.summary() for e in us.proxy_endpoints(SLEEP, SERVICE_ENTRY_UPSTREAM)) or "none"
    return (f"the US client sends SNI {sent!r} ({'plaintext' if sent is None else 'mTLS'}), which {verdict} the EU gateway's "
            f"AUTO_PASSTHROUGH chains {accepted}\nthe US client's endpoints for {SERVICE_ENTRY_UPSTREAM}: {endpoints}")


@pytest.mark.manifests("routing/serviceentry-echo-eu.yaml", "routing/destinationrule-echo-eu.yaml", clusters=("us",))
def test_service_entry_with_destination_rule_routes_to_eu_over_mtls(us: Cluster, eu: Cluster, settings: Settings,
                                                                    eventually: Eventually) -> None:
    """http://echo.eu.mesh.local/ (the seed's entry) plus ISTIO_MUTUAL + sni reaches the EU echo service over mTLS,
    each request on its first attempt and answered by the service the SNI names."""
    plan = stats.all_plan(settings.sample_size, what=f"answered by {ECHO_SERVICE} in {eu.name}", miss_rate=settings.miss_rate)
    eventually(
        lambda: us.call(SLEEP, SERVICE_ENTRY_URL, count=plan.n),
        until=checks.all_of(checks.served_by(ECHO_SERVICE, eu.name), checks.peer_is(us.spiffe_id("sleep", "sleep"))),
        what=f"US client reaching EU echo through the seed's ServiceEntry ({plan.describe()})",
        context=lambda: sni_evidence(us, eu),
    )


@pytest.mark.manifests("routing/serviceentry-echo-eu.yaml", clusters=("us",))
def test_service_entry_alone_does_not_route(us: Cluster, eu: Cluster, settings: Settings, eventually: Eventually) -> None:
    """Without the DestinationRule the client sends plaintext to the gateway it resolved, which drops it."""
    endpoints = [(e.address, e.port) for e in us.proxy_endpoints(SLEEP, SERVICE_ENTRY_UPSTREAM)]
    assert endpoints == [(eu.gateway_address(), GATEWAY_PORT)], (
        f"expected the ServiceEntry's only endpoint to resolve to the EU gateway {eu.gateway_address()}:{GATEWAY_PORT}; "
        f"observed {endpoints}"
    )
    sent = envoy.upstream_sni(us.proxy_config_dump(SLEEP), SERVICE_ENTRY_UPSTREAM)
    assert sent is None, f"expected plaintext (no SNI) towards a MESH_EXTERNAL entry without DestinationRule; the client sends SNI {sent!r}"
    plan = stats.all_plan(settings.sample_size, what="refused", miss_rate=settings.miss_rate)
    eventually(
        lambda: us.call(SLEEP, SERVICE_ENTRY_URL, count=plan.n),
        until=checks.refused(),
        what=f"the EU gateway dropping plaintext from the ServiceEntry route ({plan.describe()})",
    )
