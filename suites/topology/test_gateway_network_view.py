"""Topology: an east-west gateway forwards only to endpoints of its own network.

The istio/gateway chart's ``networkGateway`` sets ``ISTIO_META_REQUESTED_NETWORK_VIEW``, and istiod
then gives the gateway's SNI clusters only the endpoints of that network (pilot model proxy_view.go).
A gateway without it load-balances onto the other network's pod IPs, which it cannot reach: the
failures are intermittent (its Envoy soon avoids the dead address), so the configuration is checked.
"""

from __future__ import annotations

import pytest

from eastwest.mesh import Mesh
from eastwest.support import envoy
from eastwest.workloads import EASTWEST_GATEWAY, ECHO, ECHO_SNI

pytestmark = [pytest.mark.core, pytest.mark.features("multi-network", "proxy-config-dump")]


@pytest.mark.parametrize("gateway_cluster", ["us", "eu"])
def test_gateway_forwards_only_to_its_own_networks_pods(mesh: Mesh, gateway_cluster: str) -> None:
    """The gateway's cluster for echo's SNI holds its own cluster's echo pods, and no pod of another network."""
    gateway = mesh.cluster(gateway_cluster)
    targets = {a.rsplit(":", 1)[0] for a in envoy.endpoint_addresses(gateway.proxy_config_dump(EASTWEST_GATEWAY), ECHO_SNI)}
    foreign = {ip: other.name for other in mesh.others(gateway_cluster) for ip in other.pod_ips(ECHO) if ip in targets}
    assert not foreign, (
        f"the {gateway_cluster} gateway forwards {ECHO_SNI} to pods of another network {foreign}: it ignores its network "
        f"view (ISTIO_META_REQUESTED_NETWORK_VIEW, set by the gateway chart's networkGateway); its endpoints: {sorted(targets)}"
    )
    own = set(gateway.pod_ips(ECHO))
    assert own <= targets, f"expected the {gateway_cluster} echo pods {sorted(own)} behind the gateway; observed {sorted(targets)}"
