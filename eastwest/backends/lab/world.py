"""The lab's world without processes: what a fresh lab holds after install plus one suite manifest set.

Both sides of the golden comparison (``make goldens``, ``tests/test_istiod_goldens.py``) start from
this one description, so the real istiod and the lab's istiod are given exactly the same world:

- :func:`build_world` renders ``manifests/`` per cluster the way ``LabMesh.install`` and
  ``running_lab`` apply them (Helm values, ``BASE_MANIFESTS``, then a scenario's suite manifests),
  runs them through the lab's own API server checks (``Store``), and makes the pods the lab's
  kubelet would make, with the IPs the lab's network hands out (``Node.allocate_ip``: ``.10``
  onwards per pod subnet, the east-west gateway first, then Deployments in API order);
- :meth:`World.cluster_states` gives the ``ClusterState`` objects the lab's istiod consumes, and
  :meth:`World.lab_config` renders any proxy's configuration with ``ControlPlane``;
- ``world_json.py`` writes it as ``world.json`` for ``tools/istiod-golden``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eastwest.backends.lab.apiserver import Store
from eastwest.backends.lab.envoy_config import ROOT_NAMESPACE, CertPaths, ProxyConfig
from eastwest.backends.lab.istiod import ClusterState, ControlPlane, GatewayInfo, PodInfo
from eastwest.backends.lab.kubelet import ClusterRuntime, Kubelet, _inject  # the kubelet's own injection decision
from eastwest.support import install
from eastwest.support.errors import ConfigError
from eastwest.support.manifest import Document
from eastwest.support.topology import Topology, load_topology

#: first host address a node hands out (network.py ``Node._next_ip`` starts at 10)
FIRST_POD_HOST = 10
#: certificate paths a rendered lab config names (never read: the comparison ignores where certificates come from)
WORLD_CERTS = CertPaths("/etc/certs/cert-chain.pem", "/etc/certs/key.pem", "/etc/certs/root-cert.pem")

#: scenario -> suite manifests (under manifests/suites/) applied to every cluster after the base install.
#: The two locality DestinationRules share a name (they are alternatives), so each is its own scenario.
SCENARIOS: dict[str, tuple[str, ...]] = {
    "base": (),
    "locality-failover": ("locality/destinationrule-echo-failover.yaml",),
    "locality-distribute": ("locality/destinationrule-echo-distribute.yaml",),
    "routing": ("routing/destinationrule-echo-eu.yaml", "routing/serviceentry-echo-eu.yaml"),
    "security": (
        "security/client-for-wire-capture.yaml",
        "security/client-with-untrusted-root.yaml",
        "security/client-without-sidecar.yaml",
        "security/destinationrule-expects-another-server.yaml",
        "security/echo-in-eu-only.yaml",
        "security/peer-authentication-strict.yaml",
        "security/server-with-untrusted-root.yaml",
    ),
    "failover": (
        "locality/destinationrule-echo-failover.yaml",
        "security/echo-in-eu-only.yaml",
        "failover/destinationrule-echo-eu-only.yaml",
        "failover/virtualservice-echo-timeout.yaml",
    ),
}


@dataclass(frozen=True)
class WorldPod:
    """A pod of the world: what the lab's istiod sees, plus what only the real istiod needs."""

    info: PodInfo
    owner: str  # Deployment name (the chart's name for the gateway)
    gateway: bool = False

    @property
    def proxy_file(self) -> str:
        """The golden's file name: ``<cluster>-<namespace>-<workload>.json``."""
        return f"{self.info.cluster}-{self.info.namespace}-{self.owner}.json"


@dataclass
class WorldCluster:
    """One cluster: its istiod's settings, its API objects, its pods (the gateway first)."""

    topology: Topology
    name: str
    mesh_id: str
    trust_domain: str
    network: str
    gateway_name: str
    gateway_labels: dict[str, str]
    store: Store = field(default_factory=Store)
    applied: list[dict[str, Any]] = field(default_factory=list)  # the rendered manifests, in the order applied
    pods: list[WorldPod] = field(default_factory=list)
    _next_host: int = FIRST_POD_HOST

    def allocate_ip(self) -> str:
        spec = self.topology.cluster(self.name)
        ip = spec.pod_subnet.network_address + self._next_host
        self._next_host += 1
        return str(ip)

    @property
    def gateway(self) -> WorldPod | None:
        return next((p for p in self.pods if p.gateway), None)


@dataclass
class World:
    """A scenario's world: every cluster after install plus the scenario's suite manifests."""

    scenario: str
    suite_manifests: tuple[str, ...]
    topology: Topology
    clusters: dict[str, WorldCluster]

    def cluster_states(self) -> dict[str, ClusterState]:
        """What the lab's istiod is given (supervisor ``Lab._states``)."""
        states = {}
        for name, wc in self.clusters.items():
            gw = wc.gateway
            gateway = None
            if gw is not None:
                gateway = GatewayInfo(name, wc.network, self.topology.cluster(name).gateway_address, gw.info)
            pods = [p.info for p in wc.pods if not p.gateway]
            states[name] = ClusterState(self.topology.cluster(name), wc.trust_domain, wc.store, pods, gateway)
        return states

    def proxies(self) -> list[WorldPod]:
        """Every proxy the lab runs: injected pods and east-west gateways, cluster by cluster."""
        out = []
        for wc in self.clusters.values():
            out += [p for p in wc.pods if p.gateway or p.info.sidecar]
        return out

    def lab_config(self, control_plane: ControlPlane, pod: WorldPod) -> ProxyConfig:
        """The configuration the lab's istiod pushes to ``pod``'s proxy."""
        if pod.gateway:
            return control_plane.gateway(pod.info.cluster)
        return control_plane.sidecar(pod.info.cluster, pod.info, WORLD_CERTS, f"/run/eastwest/{pod.info.cluster}/{pod.info.namespace}/{pod.info.name}")


def build_world(manifests: Path, scenario: str) -> World:
    """The world of ``scenario`` (a key of :data:`SCENARIOS`), as a fresh lab would hold it."""
    if scenario not in SCENARIOS:
        raise ConfigError(f"no scenario {scenario!r}; scenarios: {', '.join(SCENARIOS)}")
    topology = load_topology(manifests / "topology.yaml")
    clusters = {name: _installed(manifests, topology, name) for name in topology.names}
    # LabMesh.install: every cluster's base manifests, then running_lab: the suite set, cluster by cluster
    for name in topology.names:
        _apply(clusters, name, install.documents(manifests, topology, name, install.BASE_MANIFESTS))
    paths = [f"{install.SUITE_MANIFESTS}/{p}" for p in SCENARIOS[scenario]]
    for name in topology.names if paths else ():
        _apply(clusters, name, install.documents(manifests, topology, name, paths))
    return World(scenario, SCENARIOS[scenario], topology, clusters)


def _installed(manifests: Path, topology: Topology, name: str) -> WorldCluster:
    """``Lab.rpc_install``: istiod's mesh settings and the east-west gateway pod (the node's first IP)."""
    istiod = install.helm_values(manifests, topology, name, install.ISTIOD_VALUES)
    gateway = install.helm_values(manifests, topology, name, install.GATEWAY_VALUES)
    g = istiod.get("global", {})
    gw_name = str(gateway.get("name", "istio-ingressgateway"))
    net = str(gateway.get("networkGateway", ""))
    labels = {"app": gw_name, "istio": gw_name.removeprefix("istio-"), **{str(k): str(v) for k, v in (gateway.get("labels") or {}).items()}}
    if net:
        labels["topology.istio.io/network"] = net
    wc = WorldCluster(topology, name, str(g.get("meshID", "")), str(istiod.get("meshConfig", {}).get("trustDomain", "cluster.local")),
                      str(g.get("network", "")), gw_name, labels)
    wc.store.dns_names = frozenset(c.gateway_hostname for c in topology.clusters)  # as the supervisor's resolver
    if net:
        spec = topology.cluster(name)
        info = PodInfo(name, wc.network, ROOT_NAMESPACE, f"{gw_name}-{name}-0", wc.allocate_ip(), labels, gw_name, spec.locality, False)
        wc.pods.append(WorldPod(info, gw_name, gateway=True))
    return wc


def _apply(clusters: dict[str, WorldCluster], name: str, docs: list[Document]) -> None:
    """``Lab.rpc_apply``: store the objects, then the kubelet creates the pods Deployments now want."""
    wc = clusters[name]
    wc.store.apply(docs)
    wc.applied += [d.body for d in docs]
    for other in clusters.values():
        rt = ClusterRuntime(other.name, other.store)
        have = {f"{p.info.namespace}/{p.info.name}" for p in other.pods}
        for pod_key, (key, spec, _hash, i) in Kubelet.desired(rt).items():
            if pod_key not in have:
                other.pods.append(_pod(other, key.namespace, f"{key.name}-{other.name}-{i}", key.name, spec["template"]))


def _pod(wc: WorldCluster, namespace: str, name: str, owner: str, template: dict[str, Any]) -> WorldPod:
    """``Kubelet._pod_from_template``: labels, locality, sidecar injection, named ports."""
    labels = {str(k): str(v) for k, v in (template.get("metadata", {}).get("labels") or {}).items()}
    annotations = template.get("metadata", {}).get("annotations") or {}
    locality = labels.get("istio-locality", "").replace(".", "/") or wc.topology.cluster(wc.name).locality
    container = template["spec"]["containers"][0]
    ports = {str(p.get("name")): int(p["containerPort"]) for p in container.get("ports") or [] if p.get("name")}
    info = PodInfo(wc.name, wc.network, namespace, name, wc.allocate_ip(), labels, str(template["spec"].get("serviceAccountName", "default")),
                   locality, _inject(wc.store, namespace, labels, annotations), ports)
    return WorldPod(info, owner)


__all__ = ["SCENARIOS", "World", "WorldCluster", "WorldPod", "build_world"]
