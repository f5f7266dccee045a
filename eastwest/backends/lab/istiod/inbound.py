"""The lab's istiod, inbound: a sidecar's listeners on its pod IP, one per service target port.

Each listener terminates Istio mTLS with the mesh root, checks that the peer's SPIFFE ID
is in this cluster's trust domain, and hands the app an ``X-Forwarded-Client-Cert`` that
names the peer; PeerAuthentication decides whether a plaintext chain exists too.
"""

from __future__ import annotations

from typing import Any

from eastwest.backends.lab.envoy_config import (
    CLUSTER,
    HCM,
    ISTIO_ALPNS,
    LISTENER,
    ROUTER,
    TLS_INSPECTOR,
    CertPaths,
    access_log,
    downstream_mtls,
)
from eastwest.backends.lab.istiod.registry import ClusterState, PodInfo, Registry, labels_match


class Inbound:
    """Builds a sidecar's inbound listeners and clusters."""

    def __init__(self, registry: Registry):
        self.registry = registry

    def build(self, state: ClusterState, pod: PodInfo, certs: CertPaths, logdir: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        target_ports: set[int] = set()
        for key, body in state.store.of_kind("Service"):
            spec = body.get("spec") or {}
            if key.namespace != pod.namespace or not labels_match(spec.get("selector") or {}, pod.labels):
                continue
            for p in spec.get("ports") or []:
                target = p.get("targetPort", p["port"])
                number = pod.ports.get(target) if isinstance(target, str) else int(target)
                if number:
                    target_ports.add(int(number))
        mode = self.registry.mtls_mode(state, pod)
        listeners, clusters = [], []
        for port in sorted(target_ports):
            cname = f"inbound|{port}||"
            clusters.append(
                {
                    "@type": CLUSTER,
                    "name": cname,
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "load_assignment": {"cluster_name": cname, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]},
                }
            )

            def hcm(fcc: str, stat: str, port: int = port, cname: str = cname) -> dict[str, Any]:
                cfg: dict[str, Any] = {
                    "@type": HCM,
                    "stat_prefix": stat,
                    "forward_client_cert_details": fcc,
                    "access_log": access_log(f"{logdir}/access.log"),
                    "route_config": {
                        "name": f"inbound|{port}",
                        "virtual_hosts": [{"name": "inbound", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cname, "timeout": "0s"}}]}],
                    },
                    # an active HTTPChaos's fault filter goes first, as an EnvoyFilter on SIDECAR_INBOUND would put it
                    "http_filters": [*(f for p, f in pod.http_faults if p == port),
                                     {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}],
                }
                if fcc == "APPEND_FORWARD":
                    cfg["set_current_client_cert_details"] = {"subject": True, "uri": True, "dns": True}
                return {"name": "envoy.filters.network.http_connection_manager", "typed_config": cfg}

            chains = []
            if mode in ("STRICT", "PERMISSIVE"):
                chains.append(
                    {
                        "name": f"inbound-mtls-{port}",
                        "filter_chain_match": {"transport_protocol": "tls", "application_protocols": ISTIO_ALPNS},
                        "transport_socket": downstream_mtls(certs, state.trust_domain),
                        "filters": [hcm("APPEND_FORWARD", f"inbound_{port}_mtls")],
                    }
                )
            if mode in ("PERMISSIVE", "DISABLE"):
                # plaintext never carries a trusted client certificate: strip any XFCC it brings
                chains.append({"name": f"inbound-plaintext-{port}", "filter_chain_match": {"transport_protocol": "raw_buffer"}, "filters": [hcm("SANITIZE", f"inbound_{port}_plaintext")]})
            listeners.append(
                {
                    "@type": LISTENER,
                    "enable_reuse_port": False,
                    "name": f"inbound_{pod.ip}_{port}",
                    "address": {"socket_address": {"address": pod.ip, "port_value": port}},
                    "listener_filters": [{"name": "envoy.filters.listener.tls_inspector", "typed_config": {"@type": TLS_INSPECTOR}}],
                    "filter_chains": chains,
                }
            )
        return listeners, clusters
