"""The lab's istiod, part one: what it knows of every cluster (services, endpoints, policy).

Multi-primary: a cluster's istiod sees the Services and endpoints of every cluster (the
remote secrets), but only its own cluster's Istio configuration (DestinationRules,
ServiceEntries, PeerAuthentication), so those are looked up per cluster.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from eastwest.backends.lab.apiserver import Store
from eastwest.backends.lab.envoy_config import ROOT_NAMESPACE
from eastwest.support.topology import ClusterSpec


@dataclass(frozen=True)
class PodInfo:
    """A running pod as the control plane sees it."""

    cluster: str
    network: str
    namespace: str
    name: str
    ip: str
    labels: dict[str, str]
    service_account: str
    locality: str  # region/zone
    sidecar: bool
    ports: dict[str, int] = field(default_factory=dict)  # container port name -> number
    #: sidecar synced and app healthy: only ready pods are endpoints (Kubernetes publishes only Ready pods)
    ready: bool = True
    #: (port, HTTP filter) pairs an HTTPChaos puts first in the inbound listener on that port (chaos/httpfaults.py)
    http_faults: tuple[tuple[int, dict[str, Any]], ...] = ()


@dataclass(frozen=True)
class GatewayInfo:
    """A cluster's east-west gateway: its pod, labels and external address."""

    cluster: str
    network: str
    address: str
    pod: PodInfo


@dataclass
class ClusterState:
    """Everything one cluster holds: its spec, the mesh settings of its istiod, objects, pods."""

    spec: ClusterSpec
    trust_domain: str
    store: Store
    pods: list[PodInfo]
    gateway: GatewayInfo | None


@dataclass(frozen=True)
class Endpoint:
    cluster: str
    network: str
    ip: str
    port: int
    locality: str
    service_account: str
    sidecar: bool
    #: the endpoint's load-balancing weight: a ServiceEntry endpoint's ``weight`` (istiod passes it to Envoy
    #: as ``load_balancing_weight``), 1 for a pod
    weight: int = 1


#: istiod's network label: on a pod (or WorkloadEntry) it names the endpoint's network; on the system
#: namespace it names the default network of the cluster's endpoints (pilot kube controller network.go)
NETWORK_LABEL = "topology.istio.io/network"


def endpoint_network(state: ClusterState, pod: PodInfo) -> str:
    """The network istiod gives a pod's endpoint: the pod's network label, else the label on istio-system
    (``setNetworkFromNamespace``), else the cluster's ``global.network`` (what the lab's injection would label)."""
    return pod.labels.get(NETWORK_LABEL) or state.store.namespace_labels(ROOT_NAMESPACE).get(NETWORK_LABEL) or pod.network


@dataclass
class ServiceModel:
    """A mesh host merged across clusters (same name and namespace = same service)."""

    host: str
    namespace: str
    ports: dict[int, str]  # port -> name
    mesh_external: bool = False
    addresses: list[str] = field(default_factory=list)
    endpoints: dict[int, list[Endpoint]] = field(default_factory=lambda: defaultdict(list))
    subject_alt_names: list[str] = field(default_factory=list)
    tls_by_default: bool = True  # auto mTLS towards sidecar endpoints
    k8s: bool = True

    @property
    def short(self) -> str:
        return self.host.split(".")[0]


def svc_host(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.cluster.local"


def labels_match(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == str(v) for k, v in selector.items())

class Registry:
    """Services merged across clusters, and the Istio config each cluster holds."""

    def __init__(self, clusters: dict[str, ClusterState], breaks: frozenset[str] = frozenset()):
        self.clusters = clusters
        #: the lab's deliberate breakages (breaks.py) in force; each acts where its name appears
        self.breaks = breaks
        self.services = self._discover()

    def _discover(self) -> dict[str, ServiceModel]:
        services: dict[str, ServiceModel] = {}
        for state in self.clusters.values():
            for key, body in state.store.of_kind("Service"):
                host = svc_host(key.name, key.namespace)
                spec = body.get("spec") or {}
                model = services.setdefault(host, ServiceModel(host, key.namespace, {}))
                for p in spec.get("ports") or []:
                    model.ports[int(p["port"])] = str(p.get("name") or f"port-{p['port']}")
                selector = spec.get("selector") or {}
                for pod in state.pods:
                    if not pod.ready or pod.namespace != key.namespace or not labels_match(selector, pod.labels):
                        continue
                    for p in spec.get("ports") or []:
                        target = p.get("targetPort", p["port"])
                        number = pod.ports.get(target) if isinstance(target, str) else int(target)
                        if number is None:
                            continue
                        model.endpoints[int(p["port"])].append(Endpoint(
                            state.spec.name, endpoint_network(state, pod), pod.ip, number, pod.locality, pod.service_account, pod.sidecar
                        ))
        return services

    def service_entries(self, state: ClusterState) -> dict[str, ServiceModel]:
        """ServiceEntries are config: a proxy sees those of its own cluster only."""
        out: dict[str, ServiceModel] = {}
        for key, body in state.store.of_kind("ServiceEntry"):
            spec = body.get("spec") or {}
            external = spec.get("location", "MESH_EXTERNAL") == "MESH_EXTERNAL"
            for host in spec.get("hosts") or []:
                model = ServiceModel(
                    host, key.namespace, {}, mesh_external=external, addresses=list(spec.get("addresses") or []),
                    subject_alt_names=list(spec.get("subjectAltNames") or []), tls_by_default=False, k8s=False,
                )
                for p in spec.get("ports") or []:
                    model.ports[int(p["number"])] = str(p["name"])
                    for ep in spec.get("endpoints") or []:
                        port = (ep.get("ports") or {}).get(p["name"], p.get("targetPort", p["number"]))
                        tls = (ep.get("labels") or {}).get("security.istio.io/tlsMode") == "istio"
                        locality = str(ep.get("locality") or "")
                        # resolution DNS: Envoy resolves the endpoint's name (STRICT_DNS); the lab's resolver knows the
                        # names of the gateways' load balancers, and the API server refused any other name
                        address = self.resolve(str(ep["address"])) if spec.get("resolution") == "DNS" else str(ep["address"])
                        model.endpoints[int(p["number"])].append(Endpoint(
                            state.spec.name, state.spec.network, address, int(port), locality, "", tls, int(ep.get("weight", 1))
                        ))
                out[host] = model
        return out

    def resolve(self, name: str) -> str:
        """A DNS name -> its address, as the proxies' resolver answers: load-balancer names of the gateways
        (``gatewayHostname`` in topology.yaml). An IP resolves to itself."""
        if all(part.isdigit() for part in name.split(".")) and name.count(".") == 3:
            return name
        for state in self.clusters.values():
            if state.gateway and state.spec.gateway_hostname == name:
                return state.gateway.address
        # the API server refuses names the lab cannot resolve; a known name whose gateway is not up yet
        # resolves to nothing, like a load balancer still provisioning
        return "0.0.0.0"

    def gateway_for(self, network: str) -> GatewayInfo | None:
        for state in self.clusters.values():
            if state.gateway and state.gateway.network == network:
                return state.gateway
        return None

    def destination_rule(self, state: ClusterState, host: str) -> dict[str, Any] | None:
        found = None
        for key, body in state.store.of_kind("DestinationRule"):
            h = str((body.get("spec") or {}).get("host"))
            if "." not in h:  # short name, relative to the rule's namespace
                h = svc_host(h, key.namespace)
            elif h.count(".") == 1:
                h = f"{h}.svc.cluster.local"
            if h == host:
                found = body.get("spec") or {}
        return found

    def mtls_mode(self, state: ClusterState, pod: PodInfo) -> str:
        mode_by_scope: dict[str, str] = {}
        for key, body in state.store.of_kind("PeerAuthentication"):
            spec = body.get("spec") or {}
            mode = str((spec.get("mtls") or {}).get("mode") or "UNSET")
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            if selector:
                if key.namespace == pod.namespace and labels_match(selector, pod.labels):
                    mode_by_scope["workload"] = mode
            elif key.namespace == pod.namespace:
                mode_by_scope["namespace"] = mode
            elif key.namespace == ROOT_NAMESPACE:
                mode_by_scope["mesh"] = mode
        for scope in ("workload", "namespace", "mesh"):
            mode = mode_by_scope.get(scope, "UNSET")
            if mode != "UNSET":
                return mode
        return "PERMISSIVE"
