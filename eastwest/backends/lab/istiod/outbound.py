"""The lab's istiod, outbound: a sidecar's clusters towards every mesh host, and its routes.

Clusters are named ``outbound|<port>||<host>``. A DestinationRule of the client's own
cluster sets the connection pool, load balancing, outlier detection and TLS; without one,
auto mTLS sends Istio mTLS (SNI ``outbound_.<port>_._.<host>``) to endpoints that run a
sidecar and plaintext to the others. Routes carry istiod's default retry policy, and a
VirtualService's route timeout (``routes.py``).
"""

from __future__ import annotations

from typing import Any

from eastwest.backends.lab.envoy_config import (
    CLUSTER,
    DEFAULT_CONNECT_TIMEOUT,
    HCM,
    HTTP_OPTIONS,
    LISTENER,
    OUTBOUND_PORT,
    PREVIOUS_HOSTS,
    RAW_BUFFER,
    ROUTER,
    CertPaths,
    access_log,
    duration,
    upstream_mtls,
)
from eastwest.backends.lab.istiod.endpoints import LocalityPlan, load_assignment, locality_plan, service_sans, split_horizon
from eastwest.backends.lab.istiod.registry import ClusterState, PodInfo, Registry, ServiceModel
from eastwest.backends.lab.istiod.routes import route_timeout

#: istiod's circuit breaker thresholds for every outbound cluster: effectively none (cluster_traffic_policy.go
#: getDefaultCircuitBreakerThresholds, "Envoy defaults [max_retries] to 3, however that has shown to be
#: insufficient during periods of pod churn"); with Envoy's 3, a burst of connect failures overflows the
#: retries and answers 503 UO instead of failing over
UNLIMITED = 4294967295


def connection_pool(pool: dict[str, Any]) -> dict[str, Any]:
    """``connectionPool`` -> the cluster's HTTP protocol options and circuit breakers (istiod's defaults, overridden)."""
    out: dict[str, Any] = {}
    http_opts: dict[str, Any] = {"explicit_http_config": {"http_protocol_options": {}}}
    if (pool.get("http") or {}).get("maxRequestsPerConnection"):
        http_opts["common_http_protocol_options"] = {"max_requests_per_connection": int(pool["http"]["maxRequestsPerConnection"])}
    out["typed_extension_protocol_options"] = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {"@type": HTTP_OPTIONS, **http_opts}}
    thresholds: dict[str, Any] = {"max_connections": UNLIMITED, "max_pending_requests": UNLIMITED, "max_requests": UNLIMITED,
                                  "max_retries": UNLIMITED, "track_remaining": True}
    if (pool.get("tcp") or {}).get("maxConnections"):
        thresholds["max_connections"] = int(pool["tcp"]["maxConnections"])
    if (pool.get("http") or {}).get("http1MaxPendingRequests"):
        thresholds["max_pending_requests"] = int(pool["http"]["http1MaxPendingRequests"])
    out["circuit_breakers"] = {"thresholds": [thresholds]}
    return out


def outlier_detection(outlier: dict[str, Any]) -> dict[str, Any]:
    """``outlierDetection`` -> Envoy's, as istiod translates it (cluster_traffic_policy.go applyOutlierDetection)."""
    od: dict[str, Any] = {"enforcing_success_rate": 0}
    c5 = outlier.get("consecutive5xxErrors")
    od["consecutive_5xx"] = int(c5) if c5 else 5
    od["enforcing_consecutive_5xx"] = 100 if c5 != 0 else 0
    if outlier.get("consecutiveGatewayErrors"):
        od["consecutive_gateway_failure"] = int(outlier["consecutiveGatewayErrors"])
        od["enforcing_consecutive_gateway_failure"] = 100
    od["interval"] = duration(outlier.get("interval", "10s"))
    od["base_ejection_time"] = duration(outlier.get("baseEjectionTime", "30s"))
    od["max_ejection_percent"] = int(outlier.get("maxEjectionPercent", 10))
    return od


def traffic_policy(policy: dict[str, Any], plan: LocalityPlan) -> dict[str, Any]:
    """A DestinationRule's traffic policy except TLS, as cluster fields (cluster_traffic_policy.go
    applyTrafficPolicy): sidecar clusters and the east-west gateway's SNI clusters both get it."""
    lb = policy.get("loadBalancer") or {}
    outlier = policy.get("outlierDetection")
    pool = policy.get("connectionPool") or {}
    fields: dict[str, Any] = {
        "connect_timeout": duration((pool.get("tcp") or {}).get("connectTimeout", DEFAULT_CONNECT_TIMEOUT)),
        "lb_policy": lb.get("simple", "ROUND_ROBIN"),
        **connection_pool(pool),
    }
    common: dict[str, Any] = {}
    if plan.locality_weighted:
        common["locality_weighted_lb_config"] = {}
    if outlier is not None:
        fields["outlier_detection"] = outlier_detection(outlier)
        # istiod sets the panic threshold to minHealthPercent, 0 unless set, whenever outlierDetection is present
        # (cluster_traffic_policy.go applyOutlierDetection: "Disable panic threshold by default as its not typically
        # applicable in k8s environments with few pods per service"); Envoy's own default would be 50 %
        common["healthy_panic_threshold"] = {"value": float(outlier.get("minHealthPercent", 0))}
    if common:
        fields["common_lb_config"] = common
    return fields


def transport(certs: CertPaths, svc: ServiceModel, port: int, policy: dict[str, Any], sans: list[str], any_sidecar: bool) -> dict[str, Any]:
    """The cluster's transport socket(s): DR TLS mode, else auto mTLS by endpoint label."""
    tls = policy.get("tls") or {}
    sni = tls.get("sni") or f"outbound_.{port}_._.{svc.host}"
    dr_sans = list(tls.get("subjectAltNames") or []) or sans
    if tls.get("mode") == "ISTIO_MUTUAL":
        return {"transport_socket": upstream_mtls(certs, sni, dr_sans)}
    if tls.get("mode") == "DISABLE" or not svc.tls_by_default and not any_sidecar:
        return {}  # plaintext
    return {
        "transport_socket_matches": [
            {"name": "tlsMode-istio", "match": {"tlsMode": "istio"}, "transport_socket": upstream_mtls(certs, sni, dr_sans)},
            {"name": "tlsMode-disabled", "match": {}, "transport_socket": {"name": "envoy.transport_sockets.raw_buffer", "typed_config": {"@type": RAW_BUFFER}}},
        ]
    }


class Outbound:
    """Builds a sidecar's outbound clusters and its outbound listener."""

    def __init__(self, registry: Registry):
        self.registry = registry

    def cluster(self, state: ClusterState, pod: PodInfo, svc: ServiceModel, port: int, certs: CertPaths) -> dict[str, Any]:
        name = f"outbound|{port}||{svc.host}"
        dr = self.registry.destination_rule(state, svc.host) or {}
        policy = dr.get("trafficPolicy") or {}
        groups = split_horizon(self.registry, svc, port, pod)
        plan = locality_plan(pod, groups, policy.get("loadBalancer") or {}, policy.get("outlierDetection"), self.registry.breaks)
        cluster: dict[str, Any] = {
            "@type": CLUSTER,
            "name": name,
            "type": "STATIC",
            "load_assignment": load_assignment(name, pod, groups, plan),
            **traffic_policy(policy, plan),
        }
        cluster.update(transport(certs, svc, port, policy, service_sans(state, svc, port), any(g.tls for g in groups)))
        return cluster

    def _domains(self, svc: ServiceModel, port: int, pod: PodInfo, first_port: bool) -> list[str]:
        names = [svc.host]
        if svc.k8s:
            name, ns = svc.host.split(".")[:2]
            names += [f"{name}.{ns}", f"{name}.{ns}.svc"]
            if ns == pod.namespace:
                names.append(name)
        names += svc.addresses
        out = [f"{n}:{port}" for n in names]
        # a Host without a port is a request to port 80: Istio matches it only in the port-80 route
        # (a service without port 80 is not reachable as http://<host>/; the request falls to NR)
        if port == 80:
            out = names + out
        return out

    def build(self, state: ClusterState, pod: PodInfo, certs: CertPaths, logdir: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        services = dict(self.registry.services)
        services.update(self.registry.service_entries(state))
        clusters, vhosts, seen = [], [], set()
        for host in sorted(services):
            svc = services[host]
            for i, port in enumerate(sorted(svc.ports)):
                clusters.append(self.cluster(state, pod, svc, port, certs))
                domains = [d for d in self._domains(svc, port, pod, i == 0 and 80 not in svc.ports) if d not in seen]
                seen.update(domains)
                vhosts.append(
                    {
                        "name": f"{host}:{port}",
                        "domains": domains,
                        "routes": [
                            {
                                "match": {"prefix": "/"},
                                "route": {
                                    "cluster": f"outbound|{port}||{host}",
                                    "timeout": route_timeout(state, host),
                                    "retry_policy": {
                                        "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
                                        "num_retries": 2,
                                        "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {"@type": PREVIOUS_HOSTS}}],
                                        "host_selection_retry_max_attempts": 5,
                                    },
                                },
                            }
                        ],
                    }
                )
        listener = {
            "@type": LISTENER,
            "enable_reuse_port": False,
            "name": f"outbound_127.0.0.1_{OUTBOUND_PORT}",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": OUTBOUND_PORT}},
            "filter_chains": [
                {
                    "filters": [
                        {
                            "name": "envoy.filters.network.http_connection_manager",
                            "typed_config": {
                                "@type": HCM,
                                "stat_prefix": "outbound",
                                "access_log": access_log(f"{logdir}/access.log"),
                                "route_config": {
                                    "name": "outbound",
                                    # as istiod does: a route may briefly name a cluster whose CDS update is still in flight
                                    "validate_clusters": False,
                                    "virtual_hosts": vhosts,
                                    "response_headers_to_add": [
                                        {"header": {"key": "x-eastwest-response-flags", "value": "%RESPONSE_FLAGS%"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
                                        {"header": {"key": "x-eastwest-upstream-host", "value": "%UPSTREAM_HOST%"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
                                        {"header": {"key": "x-eastwest-upstream-failure", "value": "%UPSTREAM_TRANSPORT_FAILURE_REASON%"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
                                        # Envoy's upstream attempt count: a retry hides a failed first attempt
                                        {"header": {"key": "x-eastwest-upstream-attempts", "value": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
                                    ],
                                },
                                "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}],
                            },
                        }
                    ]
                }
            ],
        }
        return listener, clusters
