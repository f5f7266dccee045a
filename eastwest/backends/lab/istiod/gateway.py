"""The lab's istiod, east-west gateway: AUTO_PASSTHROUGH by SNI, without terminating mTLS.

A gateway selected by a Gateway with a ``15443``/``AUTO_PASSTHROUGH`` server gets one filter
chain per service port of every host the server's ``hosts`` match, matched on the SNI
``outbound_.<port>_._.<host>`` and Istio's ALPNs and proxied as TCP to that service's
endpoints on the gateway's own network (``ISTIO_META_REQUESTED_NETWORK_VIEW``).
"""

from __future__ import annotations

import fnmatch

from eastwest.backends.lab.envoy_config import (
    CLUSTER,
    DEFAULT_CONNECT_TIMEOUT,
    GATEWAY_PORT,
    ISTIO_ALPNS,
    LISTENER,
    TCP_PROXY,
    TLS_INSPECTOR,
    ProxyConfig,
    access_log,
    locality_dict,
)
from eastwest.backends.lab.istiod.registry import Registry, labels_match


class EastWestGateway:
    """Builds an east-west gateway's listener and SNI clusters."""

    def __init__(self, registry: Registry):
        self.registry = registry

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
        chains, clusters = [], []
        if hosts_patterns:
            for host in sorted(services):
                svc = services[host]
                if not any(fnmatch.fnmatch(host, pattern) for pattern in hosts_patterns):
                    continue
                for port in sorted(svc.ports):
                    sni = f"outbound_.{port}_._.{host}"
                    # ISTIO_META_REQUESTED_NETWORK_VIEW: only this network's endpoints
                    eps = [e for e in svc.endpoints.get(port, []) if e.network == gw.network]
                    clusters.append(
                        {
                            "@type": CLUSTER,
                            "name": sni,
                            "type": "STATIC",
                            "connect_timeout": DEFAULT_CONNECT_TIMEOUT,
                            "load_assignment": {
                                "cluster_name": sni,
                                "endpoints": [
                                    {"locality": locality_dict(e.locality), "lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": e.ip, "port_value": e.port}}}}]}
                                    for e in eps
                                ],
                            },
                        }
                    )
                    chains.append(
                        {
                            "name": sni,
                            "filter_chain_match": {"server_names": [sni], "application_protocols": ISTIO_ALPNS},
                            "filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {"@type": TCP_PROXY, "stat_prefix": sni, "cluster": sni, "access_log": access_log("/dev/stdout")}}],
                        }
                    )
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
        return ProxyConfig(listeners, clusters)
