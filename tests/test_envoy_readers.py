"""The config_dump readers the locality and gateway tests cite (eastwest/support/envoy.py), on dumps shaped as
Envoy's admin API returns them with ``?include_eds``."""

from __future__ import annotations

from typing import Any

from eastwest.support import envoy

NAME = "outbound|80||echo.echo.svc.cluster.local"


def dump(common_lb_config: dict[str, Any] | None, weights: tuple[int, int] | None) -> dict[str, Any]:
    cluster: dict[str, Any] = {"name": NAME, "type": "EDS"}
    if common_lb_config is not None:
        cluster["common_lb_config"] = common_lb_config
    groups = []
    for (region, address), weight in zip((("us", "10.10.0.11"), ("eu", "172.31.255.20")), weights or (None, None), strict=True):
        group: dict[str, Any] = {"locality": {"region": region, "zone": f"{region}-a"},
                                 "lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": address, "port_value": 8080}}}}]}
        if weight is not None:
            group["load_balancing_weight"] = {"value": weight}
        groups.append(group)
    return {"configs": [
        {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "dynamic_active_clusters": [{"cluster": cluster}]},
        {"@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump",
         "dynamic_endpoint_configs": [{"endpoint_config": {"cluster_name": NAME, "endpoints": groups}}]},
    ]}


def test_locality_weights_come_from_eds_when_envoy_weighs_localities() -> None:
    assert envoy.locality_weights(dump({"locality_weighted_lb_config": {}}, (80, 20)), NAME) == {"us/us-a": 80, "eu/eu-a": 20}


def test_weights_envoy_does_not_apply_are_no_weights() -> None:
    """Without locality_weighted_lb_config (locality LB off) a weight in the dump is inert; zero weights are none."""
    assert envoy.locality_weights(dump(None, (80, 20)), NAME) is None
    assert envoy.locality_weights(dump({"locality_weighted_lb_config": {}}, (0, 0)), NAME) is None
    assert envoy.locality_weights(dump({"locality_weighted_lb_config": {}}, None), NAME) is None


def test_endpoint_addresses_read_eds_too() -> None:
    assert envoy.endpoint_addresses(dump(None, None), NAME) == ["10.10.0.11:8080", "172.31.255.20:8080"]
