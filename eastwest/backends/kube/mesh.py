"""The mesh interface on real Kubernetes clusters, shared by the kind and existing backends.

Every operation goes through one :class:`~eastwest.backends.kube.api.ClusterApi` per cluster:
objects are applied server-side, requests and probes run by exec in pods (``traffic.py``), a
proxy's endpoints and configuration come from its admin API through ``pilot-agent request``,
faults are Chaos Mesh resources or Istio fault injection (``chaos.py``).
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import yaml

from eastwest.backends.kube import chaos, render, traffic
from eastwest.backends.kube.api import ClusterApi
from eastwest.mesh import (
    FEATURES,
    Cluster,
    FaultStatus,
    LoadSample,
    Mesh,
    MeshConfig,
    MeshDescription,
    ProbeResult,
    ProxyEndpoint,
    Workload,
)
from eastwest.schemas import Schemas, SchemaUnavailable
from eastwest.settings import Timeouts
from eastwest.support import envoy
from eastwest.support.echo import EchoResponse
from eastwest.support.errors import ManifestError, MeshError
from eastwest.support.manifest import Document
from eastwest.support.topology import Topology
from eastwest.support.waiting import wait_until
from eastwest.workloads import EASTWEST_GATEWAY

log = logging.getLogger("eastwest.kube")

SIDECAR = "istio-proxy"
#: kinds whose change istiod pushes to proxies (apply waits for the push to be acknowledged)
ISTIO_GROUPS = ("networking.istio.io", "security.istio.io", "telemetry.istio.io")
#: what the kube backends cannot do: a client certificate from a foreign root needs a CA the mesh does not run
FEATURES_KUBE = frozenset(FEATURES) - {"foreign-root-client"}


def has_sidecar(pod: dict[str, Any]) -> bool:
    """An istio-proxy container, or a native sidecar (an init container named istio-proxy that always restarts)."""
    spec = pod.get("spec") or {}
    return any(c.get("name") == SIDECAR for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])])


def _ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return status.get("phase") == "Running" and ready and not meta.get("deletionTimestamp")


def _selector(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


class KubeCluster(Cluster):
    """One cluster reached through its API server."""

    def __init__(self, topology: Topology, name: str, api: ClusterApi, timeouts: Timeouts, *, schemas: Schemas | None = None,
                 chaos_mesh: bool = False, images: dict[str, str] | None = None):
        super().__init__(topology.cluster(name), topology, timeouts)
        self.api = api
        self.images = images or {}
        self.schemas = schemas
        self.faults = chaos.Faults(api, within=timeouts.apply, interval=timeouts.poll_interval, schemas=schemas,
                                   chaos_mesh=chaos_mesh, sidecar_pods=self._sidecar_pods)
        self._loads: dict[str, tuple[str, str, str, float]] = {}
        self._load_ids = itertools.count(1)

    # ---- reading the cluster -----------------------------------------------------------------

    def pods(self, workload: Workload, *, ready_only: bool = True) -> list[dict[str, Any]]:
        deployment = self.api.get("apps/v1", "Deployment", workload.name, workload.namespace)
        if deployment is None:
            raise MeshError(f"{self.name}: no Deployment {workload} (is its manifest applied?)")
        labels = deployment["spec"]["selector"].get("matchLabels") or {}
        pods = self.api.list("v1", "Pod", workload.namespace, _selector(labels))
        return sorted((p for p in pods if _ready(p) or not ready_only), key=lambda p: p["metadata"]["name"])

    def pod(self, workload: Workload) -> dict[str, Any]:
        pods = self.pods(workload)
        if not pods:
            raise MeshError(f"{self.name}: {workload} has no ready pod")
        return pods[0]

    def _sidecar_pods(self, namespace: str, labels: dict[str, str]) -> list[str]:
        return [p["metadata"]["name"] for p in self.api.list("v1", "Pod", namespace, _selector(labels)) if _ready(p) and has_sidecar(p)]

    def _mesh_config(self) -> MeshConfig:
        cm = self.api.get("v1", "ConfigMap", "istio", "istio-system") or {}
        mesh = yaml.safe_load((cm.get("data") or {}).get("mesh") or "") or {}
        istiod = self.api.get("apps/v1", "Deployment", "istiod", "istio-system") or {}
        env = {e.get("name"): e.get("value") for c in istiod.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
               for e in c.get("env") or []}
        return MeshConfig(mesh_id=str((mesh.get("defaultConfig") or {}).get("meshId", "")),
                          trust_domain=str(mesh.get("trustDomain", "cluster.local")),
                          network=self._network(), cluster_name=str(env.get("CLUSTER_ID") or "Kubernetes"))

    def _network(self) -> str:
        """The cluster's network: istio-system's label, else the injector's global.network (how Helm set it)."""
        ns = self.api.get("v1", "Namespace", "istio-system") or {}
        label = ((ns.get("metadata") or {}).get("labels") or {}).get("topology.istio.io/network")
        if label:
            return str(label)
        injector = self.api.get("v1", "ConfigMap", "istio-sidecar-injector", "istio-system") or {}
        values = json.loads((injector.get("data") or {}).get("values") or "{}")
        return str((values.get("global") or {}).get("network") or "")

    def gateway_service(self) -> dict[str, Any] | None:
        """The network gateway: a Service in istio-system labelled with a network and listening on 15443
        (what istiod takes as one, pilot/pkg/serviceregistry/kube/controller/network.go)."""
        for svc in self.api.list("v1", "Service", "istio-system", "topology.istio.io/network"):
            if any(p.get("port") == 15443 for p in (svc.get("spec") or {}).get("ports") or []):
                return svc
        return None

    def gateway_address(self) -> str | None:
        svc = self.gateway_service()
        ingress = (((svc or {}).get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        return (ingress[0].get("ip") or ingress[0].get("hostname")) if ingress else None

    def pod_ips(self, workload: Workload | str) -> list[str]:
        return [p["status"]["podIP"] for p in self.pods(Workload.parse(workload))]

    # ---- changing the cluster ----------------------------------------------------------------

    def _validate(self, body: dict[str, Any], source: str) -> None:
        if self.schemas is None:
            return
        try:
            problems = self.schemas.errors(body)
        except SchemaUnavailable as exc:
            log.debug("%s: %s", source, exc)
            return
        if problems:
            raise ManifestError(f"{body['kind']} {body['metadata'].get('name')} ({source}) would be rejected: " + "; ".join(problems))

    def apply(self, documents: Iterable[Document]) -> None:
        docs = list(documents)
        bodies = [render.adapt(d.body, self.images) for d in docs]
        for doc, body in zip(docs, bodies, strict=True):
            self._validate(body, doc.source)
        for body in bodies:
            self.api.apply(body)
        self._settle(bodies)

    def delete(self, documents: Iterable[Document]) -> None:
        bodies = [d.body for d in documents]
        for body in reversed(bodies):
            self.api.delete(body["apiVersion"], body["kind"], body["metadata"]["name"], body["metadata"].get("namespace"))
        wait_until(lambda: all(self.api.get(b["apiVersion"], b["kind"], b["metadata"]["name"], b["metadata"].get("namespace")) is None
                               for b in bodies), within=self.timeouts.apply, interval=self.timeouts.poll_interval,
                   what=f"{self.name}: {len(bodies)} deleted objects gone")
        self._settle(bodies)

    def _settle(self, bodies: list[dict[str, Any]]) -> None:
        """Deployments rolled out; for Istio kinds, every proxy has acknowledged istiod's last push."""
        for body in bodies:
            if body["kind"] == "Deployment" and self.api.get("apps/v1", "Deployment", body["metadata"]["name"], body["metadata"].get("namespace")):
                workload = Workload(body["metadata"].get("namespace", "default"), body["metadata"]["name"])
                wait_until(functools.partial(self.rolled_out, workload), within=self.timeouts.apply,
                           interval=self.timeouts.poll_interval, what=f"{self.name}: {workload} rolled out")
        if any(str(b["apiVersion"]).split("/")[0] in ISTIO_GROUPS for b in bodies):
            wait_until(self.proxies_synced, within=self.timeouts.apply, interval=self.timeouts.poll_interval,
                       what=f"{self.name}: every proxy acknowledged istiod's push (debug/syncz)")

    def rolled_out(self, workload: Workload) -> bool:
        d = self.api.get("apps/v1", "Deployment", workload.name, workload.namespace) or {}
        spec, status = d.get("spec") or {}, d.get("status") or {}
        want = spec.get("replicas", 1)
        observed = status.get("observedGeneration", 0)
        updated = status.get("updatedReplicas") or 0
        available = status.get("availableReplicas") or 0
        total = status.get("replicas") or 0
        return bool(observed >= (d.get("metadata") or {}).get("generation", 0) and updated == want and available == want and total == want)

    def proxies_synced(self) -> bool:
        """istiod's ``debug/syncz``: for every proxy and xDS type, what it sent was acknowledged (istioctl proxy-status)."""
        for pod in self.api.list("v1", "Pod", "istio-system", "app=istiod"):
            if not _ready(pod):
                continue
            text = self.api.pod_proxy("istio-system", pod["metadata"]["name"], 15014, "debug/syncz")
            for proxy in json.loads(text or "[]"):
                for xds in ("cluster", "listener", "route", "endpoint"):
                    if proxy.get(f"{xds}_sent", "") != proxy.get(f"{xds}_acked", ""):
                        return False
        return True

    # ---- traffic -----------------------------------------------------------------------------

    def _exec(self, workload: Workload, container: str | None, script: str, timeout: float) -> str:
        pod = self.pod(workload)
        name = container or next(c["name"] for c in pod["spec"]["containers"] if c["name"] != SIDECAR)
        result = self.api.exec(workload.namespace, pod["metadata"]["name"], name, ["sh", "-c", script], timeout=timeout)
        if result.returncode not in (0, None) and not result.stdout:
            raise MeshError(f"{self.name}: exec in {workload} ({name}) exited {result.returncode}: {result.stderr.strip()[-300:]}")
        return result.stdout

    def _call(self, client: Workload, url: str, *, count: int, headers: dict[str, str], timeout: float) -> list[EchoResponse]:
        script = traffic.call_script(url, count=count, headers=headers, timeout=timeout)
        return traffic.parse_calls(self._exec(client, None, script, count * (timeout + 1) + 10), url)

    def _probe(self, client: Workload, address: str, port: int, *, send: bytes, timeout: float) -> ProbeResult:
        container = SIDECAR if has_sidecar(self.pod(client)) else None  # UID 1337 is never redirected (pitfall D11)
        return traffic.parse_probe(self._exec(client, container, traffic.probe_script(address, port, send=send, timeout=timeout),
                                              3 * timeout + 10))

    def _admin(self, workload: Workload, command: list[str]) -> str:
        pod = self.pod(workload)
        if not has_sidecar(pod):
            raise MeshError(f"{self.name}: {workload} has no istio-proxy container to read")
        result = self.api.exec(workload.namespace, pod["metadata"]["name"], SIDECAR, command, timeout=self.timeouts.apply)
        if result.returncode != 0:
            raise MeshError(f"{self.name}: {' '.join(command)} in {workload} failed: {result.stderr.strip()[-300:]}")
        return result.stdout

    def _proxy_endpoints(self, workload: Workload, upstream: str) -> list[ProxyEndpoint]:
        return envoy.endpoints(json.loads(self._admin(workload, traffic.CLUSTERS)), upstream)

    def proxy_config_dump(self, workload: Workload | str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self._admin(Workload.parse(workload), traffic.CONFIG_DUMP))
        return result

    def proxy_logs(self, workload: Workload | str, lines: int = 50) -> str | None:
        w = Workload.parse(workload)
        pod = self.pod(w)
        return self.api.logs(w.namespace, pod["metadata"]["name"], SIDECAR, lines)

    # ---- faults and load -----------------------------------------------------------------------

    def _inject(self, document: Document) -> FaultStatus:
        return self.faults.inject(document)

    def _recover(self, document: Document) -> FaultStatus:
        return self.faults.recover(document)

    def _start_load(self, client: Workload, url: str, *, rate: float, timeout: float, limit: float) -> str:
        handle = f"{self.name}-load-{next(self._load_ids)}"
        folder = f"/tmp/eastwest-{handle}"
        out = self._exec(client, None, traffic.load_start_script(folder, url, rate=rate, timeout=timeout, limit=limit), 10 + timeout)
        if "started" not in out:
            raise MeshError(f"{self.name}: the load loop did not start in {client}: {out[-300:]!r}")
        self._loads[handle] = (client.namespace, client.name, folder, timeout)
        return handle

    def _stop_load(self, handle: str) -> list[LoadSample]:
        namespace, name, folder, timeout = self._loads.pop(handle)
        return traffic.parse_load(self._exec(Workload(namespace, name), None, traffic.load_stop_script(folder, timeout=timeout),
                                             timeout + 15))


class KubeMesh(Mesh):
    """Clusters reached through their API servers; ``on_close`` releases what the backend brought up."""

    def __init__(self, backend: str, identity: str, topology: Topology, clusters: dict[str, KubeCluster], timeouts: Timeouts,
                 on_close: Callable[[], None] = lambda: None):
        self.backend = backend
        self._identity = identity
        self.topology = topology
        self._clusters = clusters
        self.timeouts = timeouts
        self.features = FEATURES_KUBE
        self.faults = frozenset.intersection(*(c.faults.supported for c in clusters.values())) if clusters else frozenset()
        self._on_close = on_close

    @property
    def identity(self) -> str:
        return self._identity

    def describe(self) -> MeshDescription:
        """Istio and Envoy as the first cluster's east-west gateway reports them: its admin ``/server_info`` holds
        Envoy's build and the node metadata istio-agent fills, ``ISTIO_VERSION`` among it (the proxy's release)."""
        first = next(iter(self._clusters.values()))
        info = json.loads(first._admin(EASTWEST_GATEWAY, traffic.SERVER_INFO))
        build = str(info.get("version", ""))
        istio = str(((info.get("node") or {}).get("metadata") or {}).get("ISTIO_VERSION") or "unknown")
        return MeshDescription(self.backend, control_plane=f"istiod, one per cluster (Istio {istio}, as its proxies report)",
                               istio_version=istio, envoy_version=envoy.release(build), envoy_build=build,
                               details=(("identity", self._identity),))

    @property
    def clusters(self) -> Mapping[str, Cluster]:
        return self._clusters

    def close(self) -> None:
        self._on_close()
