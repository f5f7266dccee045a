"""``world.json``: a scenario's world (``world.py``) as ``tools/istiod-golden`` gives it to the real istiod.

Besides each cluster's Istio configuration (seen by that cluster's istiod only) and its rendered
manifests (for ``istioctl analyze``), it holds the Kubernetes objects istiod needs but the lab keeps
implicit: Nodes with region/zone labels, Pods labelled as the sidecar injector leaves them,
EndpointSlices of ready pods, the Service the istio/gateway chart renders for ``networkGateway``
(network label, LoadBalancer address), and every proxy's node ID and ``ISTIO_META_*`` metadata as
its agent would send them. ``python -m eastwest.backends.lab.world_json`` writes one per scenario.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from eastwest.backends.lab.apiserver import Store
from eastwest.backends.lab.envoy_config import GATEWAY_PORT, ROOT_NAMESPACE
from eastwest.backends.lab.world import SCENARIOS, World, WorldCluster, WorldPod, build_world
from eastwest.support.errors import MeshError

#: the Istio release the lab mirrors; the goldens are istiod's output for proxies of this version
ISTIO_VERSION = "1.30.3"
#: API groups of Istio configuration (seen by its own cluster's istiod only); every other object is Kubernetes
ISTIO_GROUPS = ("networking.istio.io", "security.istio.io")


def service_ips(world: World) -> set[str]:
    """The cluster IPs world.json gives Services (the lab has none: its clients name the host)."""
    return {svc["spec"]["clusterIP"] for wc in world.clusters.values() for svc in _services(world, wc)}


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
    parser = argparse.ArgumentParser(prog="python -m eastwest.backends.lab.world_json",
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


if __name__ == "__main__":
    sys.exit(main())
