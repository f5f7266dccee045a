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
- :func:`world_document` gives ``world.json`` for ``tools/istiod-golden``: the Kubernetes objects
  istiod needs but the lab keeps implicit (Nodes with region/zone, Pods as the injector labels
  them, EndpointSlices of ready pods, the gateway Service the istio/gateway chart renders with
  its network label and LoadBalancer address), each cluster's Istio configuration, and every
  proxy's node ID and ``ISTIO_META_*`` metadata as its agent would send them.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eastwest.backends.lab.apiserver import Store
from eastwest.backends.lab.envoy_config import GATEWAY_PORT, ROOT_NAMESPACE, CertPaths, ProxyConfig
from eastwest.backends.lab.istiod import ClusterState, ControlPlane, GatewayInfo, PodInfo
from eastwest.backends.lab.kubelet import ClusterRuntime, Kubelet, _inject
from eastwest.support import install
from eastwest.support.errors import ConfigError, MeshError
from eastwest.support.manifest import Document
from eastwest.support.topology import Topology, load_topology

#: the Istio release the lab mirrors; the goldens are istiod's output for proxies of this version
ISTIO_VERSION = "1.30.3"
#: first host address a node hands out (network.py ``Node._next_ip`` starts at 10)
FIRST_POD_HOST = 10
#: kinds that are Istio configuration (seen by their own cluster's istiod only); the rest is Kubernetes
ISTIO_GROUPS = ("networking.istio.io", "security.istio.io")
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
        "security/client-with-untrusted-root.yaml",
        "security/client-without-sidecar.yaml",
        "security/echo-in-eu-only.yaml",
        "security/peer-authentication-strict.yaml",
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

    def service_ips(self) -> set[str]:
        """The cluster IPs world.json gives Services (the lab has none: its clients name the host)."""
        return {svc["spec"]["clusterIP"] for wc in self.clusters.values() for svc in _services(self, wc)}

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


# ---- world.json: what tools/istiod-golden gives the real istiod ---------------------------------


def world_document(world: World) -> dict[str, Any]:
    """The world as ``tools/istiod-golden`` reads it (see its world.go)."""
    kube = {name: _kubernetes_objects(world, wc) for name, wc in world.clusters.items()}
    clusters = []
    for name, wc in world.clusters.items():
        istio = [dict(body, apiVersion=_api_version(wc.store, key.kind), kind=key.kind)
                 for key, body in sorted(wc.store.objects.items(), key=lambda kv: (kv[0].kind, kv[0].namespace, kv[0].name))
                 if _is_istio(body)]
        clusters.append({
            "name": name,
            "network": wc.network,
            # what the istiod chart renders into the mesh config that matters here (the rest: mesh.DefaultMeshConfig())
            "mesh_config": {"trustDomain": wc.trust_domain, "defaultProviders": {"metrics": ["prometheus"]}},
            "kubernetes": kube[name],
            "istio": istio,
            "manifests": wc.applied,  # for istioctl analyze, as `kubectl apply` would send them
            "proxies": [_proxy(world, wc, p) for p in wc.pods if p.gateway or p.info.sidecar],
        })
    return {"scenario": world.scenario, "suite_manifests": list(world.suite_manifests), "clusters": clusters}


def dump_world(world: World) -> str:
    """``world.json``'s text: sorted keys, two-space indent, so a rerun reproduces it byte for byte."""
    return json.dumps(world_document(world), indent=2, sort_keys=True) + "\n"


def _is_istio(body: dict[str, Any]) -> bool:
    return str(body.get("apiVersion", "")).split("/")[0] in ISTIO_GROUPS


def _api_version(store: Store, kind: str) -> str:
    return next(str(b["apiVersion"]) for k, b in store.objects.items() if k.kind == kind)


def _node_name(cluster: str) -> str:
    return f"{cluster}-node"


def _injected_labels(pod: WorldPod) -> dict[str, str]:
    """The pod's labels as the sidecar injector leaves them (injection-template.yaml)."""
    labels = dict(pod.info.labels)
    if pod.info.sidecar:
        labels.setdefault("security.istio.io/tlsMode", "istio")
    if pod.info.sidecar or pod.gateway:
        labels.setdefault("service.istio.io/canonical-name", labels.get("app", pod.owner))
        labels.setdefault("service.istio.io/canonical-revision", labels.get("version", "latest"))
    return labels


def _kubernetes_objects(world: World, wc: WorldCluster) -> list[dict[str, Any]]:
    spec = world.topology.cluster(wc.name)
    objs: list[dict[str, Any]] = [{
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": _node_name(wc.name), "labels": {"topology.kubernetes.io/region": spec.region, "topology.kubernetes.io/zone": spec.zone}},
    }]
    for key, body in wc.store.of_kind("Namespace"):
        objs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": key.name, "labels": dict(body["metadata"].get("labels") or {})}})
    for svc in _services(world, wc):
        objs.append(svc)
        slice_ = _endpoint_slice(wc, svc["metadata"]["namespace"], svc["metadata"]["name"], svc["spec"])
        if slice_:
            objs.append(slice_)
    for pod in wc.pods:
        container: dict[str, Any] = {"name": "app", "image": "eastwest/world"}
        if pod.info.ports:
            container["ports"] = [{"name": n, "containerPort": p} for n, p in sorted(pod.info.ports.items())]
        objs.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod.info.name, "namespace": pod.info.namespace, "labels": _injected_labels(pod)},
            "spec": {"nodeName": _node_name(wc.name), "serviceAccountName": pod.info.service_account, "containers": [container]},
            "status": {"phase": "Running", "podIP": pod.info.ip, "podIPs": [{"ip": pod.info.ip}],
                       "conditions": [{"type": "Ready", "status": "True" if pod.info.ready else "False"}]},
        })
    return objs


def _services(world: World, wc: WorldCluster) -> list[dict[str, Any]]:
    """The cluster's Services (the store's and the gateway chart's), with cluster IPs from the service subnet."""
    spec = world.topology.cluster(wc.name)
    found = [(key.namespace, key.name, body) for key, body in wc.store.of_kind("Service")]
    if wc.gateway is not None:
        found.append((ROOT_NAMESPACE, wc.gateway_name, _gateway_service(wc, spec.gateway_address)))
    out = []
    for i, (ns, _name, body) in enumerate(sorted(found, key=lambda s: (s[0], s[1]))):
        svc = json.loads(json.dumps(body))
        svc["metadata"].pop("annotations", None)
        svc["metadata"]["namespace"] = ns
        svc["spec"]["clusterIP"] = str(spec.service_subnet.network_address + 10 + i)
        svc["spec"].setdefault("type", "ClusterIP")
        out.append(svc)
    return out


def _gateway_service(wc: WorldCluster, address: str) -> dict[str, Any]:
    """The istio/gateway chart's Service for ``networkGateway`` (templates/service.yaml): labels, ports, LB address."""
    ports = [("status-port", 15021), ("tls", GATEWAY_PORT), ("tls-istiod", 15012), ("tls-webhook", 15017)]
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": wc.gateway_name, "namespace": ROOT_NAMESPACE, "labels": dict(wc.gateway_labels)},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": wc.gateway_labels["app"], "istio": wc.gateway_labels["istio"]},
            "ports": [{"name": n, "port": p, "targetPort": p, "protocol": "TCP"} for n, p in ports],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": address}]}},
    }


def _endpoint_slice(wc: WorldCluster, ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any] | None:
    """What the EndpointSlice controller publishes: the ready pods the selector matches (none: no slice)."""
    selector = spec.get("selector") or {}
    pods = [p for p in wc.pods if p.info.namespace == ns and p.info.ready and selector
            and all(_injected_labels(p).get(k) == str(v) for k, v in selector.items())]
    if not pods:
        return None
    ports = []
    for p in spec.get("ports") or []:
        target = p.get("targetPort", p["port"])
        number = pods[0].info.ports.get(target) if isinstance(target, str) else int(target)
        if number is not None:
            ports.append({"name": p.get("name", ""), "port": number, "protocol": p.get("protocol", "TCP")})
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": f"{name}-{wc.name}", "namespace": ns, "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [p.info.ip], "conditions": {"ready": True}, "nodeName": _node_name(wc.name),
                       "targetRef": {"kind": "Pod", "name": p.info.name, "namespace": ns}} for p in pods],
        "ports": ports,
    }


def _proxy(world: World, wc: WorldCluster, pod: WorldPod) -> dict[str, Any]:
    """The node an agent introduces to istiod: ID ``type~ip~pod.ns~ns.svc.cluster.local`` and ISTIO_META_*."""
    kind = "router" if pod.gateway else "sidecar"
    info = pod.info
    region, _, zone = info.locality.partition("/")
    meta: dict[str, Any] = {
        "CLUSTER_ID": wc.name,
        "NETWORK": wc.network,
        "MESH_ID": wc.mesh_id,
        "NAMESPACE": info.namespace,
        "LABELS": _injected_labels(pod),
        "ISTIO_VERSION": ISTIO_VERSION,
        "INSTANCE_IPS": info.ip,
        "NODE_NAME": _node_name(wc.name),
        "SERVICE_ACCOUNT": info.service_account,
        "WORKLOAD_NAME": pod.owner,
        "OWNER": f"kubernetes://apis/apps/v1/namespaces/{info.namespace}/deployments/{pod.owner}",
    }
    if pod.gateway:
        meta["REQUESTED_NETWORK_VIEW"] = wc.network  # the istio/gateway chart's env for networkGateway
    else:
        meta["INTERCEPTION_MODE"] = "REDIRECT"
    return {
        "file": pod.proxy_file,
        "node_id": f"{kind}~{info.ip}~{info.name}.{info.namespace}~{info.namespace}.svc.cluster.local",
        "metadata": meta,
        "locality": {"region": region, "zone": zone},
    }



def write_worlds(manifests: Path, out: Path) -> list[Path]:
    """Write ``<out>/<scenario>/world.json`` for every scenario; drop golden folders of scenarios that are gone."""
    written = []
    for scenario in SCENARIOS:
        path = out / scenario / "world.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_world(build_world(manifests, scenario)))
        written.append(path)
    for stale in sorted(out.glob("*/world.json")):
        if stale.parent.name not in SCENARIOS:
            for f in stale.parent.glob("*.json"):
                f.unlink()
            stale.parent.rmdir()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eastwest.backends.lab.world",
                                     description="Write goldens/<scenario>/world.json for tools/istiod-golden")
    parser.add_argument("--manifests", type=Path, default=Path("manifests"))
    parser.add_argument("--out", type=Path, default=Path("goldens"))
    args = parser.parse_args(argv)
    try:
        for path in write_worlds(args.manifests, args.out):
            print(f"    {path}")
    except MeshError as exc:
        print(f"world: {exc}", file=sys.stderr)
        return 2
    return 0


__all__ = ["ISTIO_VERSION", "SCENARIOS", "World", "WorldPod", "build_world", "dump_world", "world_document"]


if __name__ == "__main__":
    sys.exit(main())
