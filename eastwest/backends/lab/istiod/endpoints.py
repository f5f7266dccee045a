"""The lab's istiod, endpoints: split-horizon EDS and locality load balancing for one client.

Endpoints on the client's own network are pod IPs; endpoints on another network are
replaced by that network's east-west gateway at 15443, keeping their locality, weighted by
how many endpoints they stand for (Istio's ``EndpointsByNetworkFilter``). A ServiceEntry
endpoint's ``weight`` is its load-balancing weight, as istiod passes it to Envoy. A DestinationRule's
``localityLbSetting`` turns localities into failover priorities or distribute weights.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from eastwest.backends.lab.envoy_config import GATEWAY_PORT, locality_dict
from eastwest.backends.lab.istiod.registry import ClusterState, PodInfo, Registry, ServiceModel


@dataclass(frozen=True)
class EndpointGroup:
    """One address a client sends to, standing for ``weight`` endpoints of one locality."""

    locality: str
    ip: str
    port: int
    tls: bool  # the endpoint runs a sidecar (transport socket match tlsMode=istio)


def split_horizon(registry: Registry, svc: ServiceModel, port: int, pod: PodInfo) -> dict[EndpointGroup, int]:
    """The endpoints ``pod`` sees for ``svc:port``, remote networks folded into their gateway."""
    groups: dict[EndpointGroup, int] = defaultdict(int)
    for ep in svc.endpoints.get(port, []):
        if "remote-secret-missing" in registry.breaks and svc.k8s and ep.cluster != pod.cluster:
            continue  # break: this istiod never learnt the other cluster's endpoints
        if not svc.k8s or ep.network == pod.network or "split-horizon-off" in registry.breaks:
            groups[EndpointGroup(ep.locality, ep.ip, ep.port, ep.sidecar)] += ep.weight
        else:
            gw = registry.gateway_for(ep.network)
            if gw is not None:
                groups[EndpointGroup(ep.locality, gw.address, GATEWAY_PORT, ep.sidecar)] += ep.weight
    return groups


def service_sans(state: ClusterState, svc: ServiceModel, port: int) -> list[str]:
    """The identities a client accepts from the service's endpoints (one per service account)."""
    sans: list[str] = list(svc.subject_alt_names)
    for ep in svc.endpoints.get(port, []):
        if svc.k8s and ep.service_account:
            sans.append(f"spiffe://{state.trust_domain}/ns/{svc.namespace}/sa/{ep.service_account}")
    return sans


def failover_priority(proxy: str, endpoint: str, failover: list[dict[str, str]]) -> int:
    """Istio's raw priority: 0 same zone, 1 same region, 2 the failover target, 3 no match, 4 no locality."""
    p, e = proxy.split("/"), endpoint.split("/")
    if not endpoint:
        return 4
    if p[0] == e[0]:
        return 0 if p[1:2] == e[1:2] else 1
    for rule in failover:
        if rule.get("from") == p[0] and rule.get("to") == e[0]:
            return 2
    return 3


def distribute_weights(proxy: str, localities: list[str], distribute: list[dict[str, Any]]) -> dict[str, int] | None:
    """The locality weights of the first ``distribute`` rule whose ``from`` matches the client."""
    for rule in distribute:
        if not fnmatch.fnmatch(proxy, str(rule["from"])) and not fnmatch.fnmatch(proxy + "/", str(rule["from"])):
            continue
        weights: dict[str, int] = {}
        for pattern, weight in (rule.get("to") or {}).items():
            matching = [loc for loc in localities if fnmatch.fnmatch(loc, pattern) or fnmatch.fnmatch(loc + "/", pattern)]
            for loc in matching:
                weights[loc] = weights.get(loc, 0) + max(1, int(weight) // len(matching))
        return weights
    return None


@dataclass(frozen=True)
class LocalityPlan:
    """What a DestinationRule's load-balancer settings make of the localities."""

    weights: dict[str, int] | None  # distribute
    use_priorities: bool  # failover
    failover: list[dict[str, str]]
    #: locality_weighted_lb_config: for distribute, and for failover rules with outlier detection
    #: (cluster_traffic_policy.go applyLocalityLoadBalancer); then every locality needs a weight
    locality_weighted: bool = False


def locality_plan(pod: PodInfo, groups: dict[EndpointGroup, int], lb: dict[str, Any], outlier: dict[str, Any] | None,
                  breaks: frozenset[str] = frozenset()) -> LocalityPlan:
    lls = lb.get("localityLbSetting") or {}
    # Istio applies locality load balancing only to proxies that have a locality (break: proxy-locality-unset)
    locality_on = lls.get("enabled", True) is not False and "proxy-locality-unset" not in breaks
    distribute = lls.get("distribute") or []
    localities = sorted({g.locality for g in groups})
    weights = distribute_weights(pod.locality, localities, distribute) if locality_on and distribute else None
    # Istio applies failover priorities only with outlier detection (loadbalancer.go ApplyLocalityLoadBalancer)
    use_priorities = locality_on and outlier is not None and weights is None
    failover = list(lls.get("failover") or [])
    weighted = locality_on and (bool(distribute) or outlier is not None and bool(failover))
    return LocalityPlan(weights, use_priorities, failover, weighted)


def load_assignment(name: str, pod: PodInfo, groups: dict[EndpointGroup, int], plan: LocalityPlan) -> dict[str, Any]:
    """Envoy's ClusterLoadAssignment: endpoints grouped by locality and priority."""
    by_locality: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for group, weight in sorted(groups.items(), key=lambda kv: (kv[0].locality, kv[0].ip, kv[0].port, kv[0].tls)):
        if plan.weights is not None and group.locality not in plan.weights:
            continue
        priority = failover_priority(pod.locality, group.locality, plan.failover) if plan.use_priorities else 0
        endpoint: dict[str, Any] = {
            "endpoint": {"address": {"socket_address": {"address": group.ip, "port_value": group.port}}},
            "load_balancing_weight": weight,
        }
        if group.tls:
            endpoint["metadata"] = {"filter_metadata": {"envoy.transport_socket_match": {"tlsMode": "istio"}}}
        by_locality[(group.locality, priority)].append(endpoint)
    ranks = {p: i for i, p in enumerate(sorted({p for _, p in by_locality}))}  # Envoy wants 0..n-1
    entries = []
    for (locality, priority), eps in sorted(by_locality.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        entry: dict[str, Any] = {"lb_endpoints": eps, "priority": ranks[priority]}
        if locality:
            entry["locality"] = locality_dict(locality)
        if plan.weights is not None:
            entry["load_balancing_weight"] = plan.weights[locality]
        elif plan.locality_weighted:
            # Envoy gives a locality without a weight no load once weighting is on; istiod weighs
            # each locality by the endpoints it holds (EndpointBuilder: sum of lb weights)
            entry["load_balancing_weight"] = sum(int(e["load_balancing_weight"]) for e in eps)
        entries.append(entry)
    return {"cluster_name": name, "endpoints": entries}
