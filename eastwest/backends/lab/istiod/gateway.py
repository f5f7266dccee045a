"""The lab's istiod, east-west gateway: AUTO_PASSTHROUGH by SNI, without terminating mTLS.

A gateway selected by a Gateway with a ``15443``/``AUTO_PASSTHROUGH`` server gets one filter
chain per service port of every host the server's ``hosts`` match, matched on the SNI
``outbound_.<port>_._.<host>`` and Istio's ALPNs and proxied as TCP to that service's
endpoints on the gateway's own network (``ISTIO_META_REQUESTED_NETWORK_VIEW``).

What the gateway exposes on its external address is what the ``istio/gateway`` chart with
``networkGateway`` publishes and something listens on: 15443 (above) and the status port
15021 (readiness only). The chart's Service also names 15012 and 15017, but they carry
traffic only when istiod is exposed through the gateway (``expose-istiod``, for
primary-remote installs); in multi-primary nothing listens there, so they are refused.
Envoy's admin API stays on 127.0.0.1 as in Istio's bootstrap.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from typing import Any

from eastwest.backends.lab.envoy_config import (
    ADMIN_PORT,
    CLUSTER,
    GATEWAY_PORT,
    HCM,
    ISTIO_ALPNS,
    LISTENER,
    ROUTER,
    TCP_PROXY,
    TLS_INSPECTOR,
    ProxyConfig,
    access_log,
)
from eastwest.backends.lab.istiod.endpoints import EndpointGroup, load_assignment, locality_plan
from eastwest.backends.lab.istiod.outbound import traffic_policy
from eastwest.backends.lab.istiod.registry import ClusterState, Registry, ServiceModel, labels_match

STATUS_PORT = 15021


def status_port() -> tuple[dict[str, Any], dict[str, Any]]:
    """The readiness listener on 15021 and the cluster behind it.

    In Istio it is a static listener of the proxy's bootstrap routing ``/healthz/ready`` to
    pilot-agent (127.0.0.1:15020), which asks Envoy's ``/ready``; the lab has no agent and
    routes the one exact path to ``/ready`` of the admin API itself: nothing else of the admin
    API is reachable through it.
    """
    listener = {
        "@type": LISTENER,
        "enable_reuse_port": False,
        "name": f"0.0.0.0_{STATUS_PORT}",
        "address": {"socket_address": {"address": "0.0.0.0", "port_value": STATUS_PORT}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
            "@type": HCM,
            "stat_prefix": "status",
            "route_config": {"name": "status", "validate_clusters": False, "virtual_hosts": [{"name": "status", "domains": ["*"], "routes": [
                {"match": {"path": "/healthz/ready"}, "route": {"cluster": "agent", "prefix_rewrite": "/ready"}}]}]},
            "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}]}}]}],
    }
    cluster = {
        "@type": CLUSTER,
        "name": "agent",
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {"cluster_name": "agent", "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": ADMIN_PORT}}}}]}]},
    }
    return listener, cluster


class EastWestGateway:
    """Builds an east-west gateway's listener and SNI clusters."""

    def __init__(self, registry: Registry):
        self.registry = registry

    def sni_cluster(self, state: ClusterState, svc: ServiceModel, port: int, sni: str) -> dict[str, Any]:
        """An SNI-DNAT cluster: the host's DestinationRule except TLS (cluster.go buildOutboundSniDnatClusters),
        to the endpoints on the gateway's own network (ISTIO_META_REQUESTED_NETWORK_VIEW)."""
        gw = state.gateway
        assert gw is not None
        groups: dict[EndpointGroup, int] = defaultdict(int)
        for e in svc.endpoints.get(port, []):
            # ISTIO_META_REQUESTED_NETWORK_VIEW: only this network's endpoints (break: gateway-ignores-network-view)
            if e.network == gw.network or "gateway-ignores-network-view" in self.registry.breaks:
                groups[EndpointGroup(e.locality, e.ip, e.port, e.sidecar)] += e.weight
        policy = dict((self.registry.destination_rule(state, svc.host) or {}).get("trafficPolicy") or {})
        policy.pop("tls", None)  # the gateway passes mTLS through: the rule's TLS settings are the client's
        plan = locality_plan(gw.pod, groups, policy.get("loadBalancer") or {}, policy.get("outlierDetection"), self.registry.breaks)
        return {"@type": CLUSTER, "name": sni, "type": "STATIC", "load_assignment": load_assignment(sni, gw.pod, groups, plan),
                **traffic_policy(policy, plan)}

    def build(self, name: str) -> ProxyConfig:
        state = self.registry.clusters[name]
        gw = state.gateway
        assert gw is not None
        hosts_patterns: list[str] = []
        for _key, body in state.store.of_kind("Gateway"):
            spec = body.get("spec") or {}
            if not labels_match(spec.get("selector") or {}, gw.pod.labels):
                continue
            for server in spec.get("servers") or []:
                if int(server["port"]["number"]) == GATEWAY_PORT and (server.get("tls") or {}).get("mode") == "AUTO_PASSTHROUGH":
                    hosts_patterns.extend(server.get("hosts") or [])
        services = dict(self.registry.services)
        services.update({h: s for h, s in self.registry.service_entries(state).items() if not s.mesh_external})
        chains: list[dict[str, Any]] = []
        clusters: list[dict[str, Any]] = []
        if hosts_patterns:
            for host in sorted(services):
                svc = services[host]
                if not any(fnmatch.fnmatch(host, pattern) for pattern in hosts_patterns):
                    continue
                for port in sorted(svc.ports):
                    sni = f"outbound_.{port}_._.{host}"
                    clusters.append(self.sni_cluster(state, svc, port, sni))
                    chains.append(
                        {
                            "name": sni,
                            "filter_chain_match": {"server_names": [sni], "application_protocols": ISTIO_ALPNS},
                            "filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {"@type": TCP_PROXY, "stat_prefix": sni, "cluster": sni, "access_log": access_log("/dev/stdout")}}],
                        }
                    )
        if chains and "gateway-one-service" in self.registry.breaks:  # break: every SNI to the last chain's service
            target = chains[-1]["filters"][0]["typed_config"]["cluster"]
            for chain in chains:
                chain["filters"][0]["typed_config"]["cluster"] = target
        if chains and "gateway-plaintext-passthrough" in self.registry.breaks:  # break: a catch-all chain, TLS or not
            chains.append({"name": "catch-all", "filters": [dict(chains[-1]["filters"][0])]})
        listeners = []
        if chains:
            listeners.append(
                {
                    "@type": LISTENER,
                    "enable_reuse_port": False,
                    "name": f"0.0.0.0_{GATEWAY_PORT}",
                    "address": {"socket_address": {"address": "0.0.0.0", "port_value": GATEWAY_PORT}},
                    "listener_filters": [{"name": "envoy.filters.listener.tls_inspector", "typed_config": {"@type": TLS_INSPECTOR}}],
                    "filter_chains": chains,
                }
            )
        status_listener, agent = status_port()
        return ProxyConfig([*listeners, status_listener], [*clusters, agent])
