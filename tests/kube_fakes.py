"""Recording stand-ins for docker, kind, helm and two API servers, for the kube backends' self-tests.

:class:`World` holds what the stand-ins pretend exists (docker networks, kind clusters, images,
API objects per cluster) and one ordered log of everything asked of them, so a test can check
the order and the arguments of a whole bring-up. The stand-ins act like the real things where
the bring-up depends on it: a Deployment gets a ready pod (with an istio-proxy container in an
injection-enabled namespace), the token controller fills the reader token, MetalLB gives the
gateway Service its requested address, istiod reports a remote cluster synced once its remote
secret exists, and the US sidecar sees the EU gateway once that remote secret is there.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass, field
from typing import Any

from eastwest.backends.kube.api import Command as Argv
from eastwest.backends.kube.api import ExecResult, Objects
from eastwest.backends.kube.commands import Command, Completed
from eastwest.support.topology import Topology

Key = tuple[str, str, str, str]  # kind, namespace, name, cluster


@dataclass
class World:
    topology: Topology
    prefix: str = "eastwest"
    log: list[tuple[str, ...]] = field(default_factory=list)
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    clusters: set[str] = field(default_factory=set)
    attached: dict[str, str] = field(default_factory=dict)  # node -> transit IP
    images: set[str] = field(default_factory=set)
    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    crds: dict[str, set[str]] = field(default_factory=dict)  # role -> "group/version Kind"

    def role_of(self, name: str) -> str:
        return name.removeprefix(f"kind-{self.prefix}-").removeprefix(f"{self.prefix}-")

    def index(self, *event: str) -> int:
        """Position of the first logged event whose fields start with those of ``event``."""
        for i, logged in enumerate(self.log):
            if len(logged) >= len(event) and all(have.startswith(want) for have, want in zip(logged[: len(event)], event, strict=True)):
                return i
        raise AssertionError(f"never happened: {event}; log:\n" + "\n".join(map(str, self.log)))


class FakeRunner:
    """docker, kind, helm and kubectl, acting on the World."""

    def __init__(self, world: World):
        self.world = world

    def run(self, cmd: Command) -> Completed:
        a, w = cmd.argv, self.world
        w.log.append(("run", " ".join(a)))
        ok = Completed(0, "", "")
        if a[:3] == ("docker", "network", "inspect"):
            net = w.networks.get(a[3])
            return Completed(0, json.dumps([net]), "") if net else Completed(1, "", f"Error: No such network: {a[3]}")
        if a[:3] == ("docker", "network", "create"):
            w.networks[a[-1]] = {"Name": a[-1], "IPAM": {"Config": [{"Subnet": a[a.index("--subnet") + 1]}]},
                                 "Labels": {"io.eastwest.owner": "eastwest"}}
        elif a[:3] == ("kind", "get", "clusters"):
            return Completed(0, "\n".join(sorted(w.clusters)), "")
        elif a[:3] == ("kind", "create", "cluster"):
            w.clusters.add(a[a.index("--name") + 1])
        elif a[:2] == ("docker", "inspect"):
            node = a[-1]
            cluster = node.removesuffix("-control-plane")
            nets: dict[str, Any] = {w.prefix + "-" + w.role_of(cluster): {}} if cluster in w.clusters else {}
            if node in w.attached:
                nets[f"{w.prefix}-wan"] = {"IPAMConfig": {"IPv4Address": w.attached[node]}}
            return Completed(0 if cluster in w.clusters else 1, json.dumps(nets), "")
        elif a[:3] == ("docker", "network", "connect"):
            w.attached[a[-1]] = a[a.index("--ip") + 1]
        elif a[:2] == ("docker", "exec") and a[3:] == ("ip", "-4", "route", "show", "default"):
            spec = w.topology.cluster(w.role_of(a[2].removesuffix("-control-plane")))
            assert spec.node_subnet is not None
            return Completed(0, f"default via {spec.node_subnet.network_address + 1} dev eth0\n", "")
        elif a[:3] == ("docker", "image", "inspect"):
            return Completed(0 if a[3] in w.images else 1, "", "")
        elif a[:2] in (("docker", "pull"), ("docker", "build")):
            w.images.add(a[-1] if a[1] == "pull" else a[a.index("--tag") + 1])
        elif a[0] == "helm":
            self._helm(a)
        elif a[0] == "kubectl" and "apply" in a:
            role = w.role_of(a[a.index("--context") + 1])
            api = FakeApi(w, role, log=False)
            api.put({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "controller", "namespace": "metallb-system"},
                     "status": {"availableReplicas": 1}})
            api.put({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "speaker", "namespace": "metallb-system"},
                     "status": {"desiredNumberScheduled": 1, "numberReady": 1}})
        return ok

    def _helm(self, a: tuple[str, ...]) -> None:
        w = self.world
        release, role = a[3], w.role_of(a[a.index("--kube-context") + 1])
        api = FakeApi(w, role, log=False)
        if release == "istio-base":
            w.crds.setdefault(role, set()).add("networking.istio.io/v1 Gateway")
        elif release == "istiod":
            api.put({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "istiod-0", "namespace": "istio-system", "labels": {"app": "istiod"}},
                     "spec": {"containers": [{"name": "discovery"}]}, "status": _running("10.0.0.2")})
        elif release == "istio-eastwestgateway":
            spec = w.topology.cluster(role)
            api.put({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "istio-eastwestgateway", "namespace": "istio-system",
                                                                       "labels": {"topology.istio.io/network": spec.network}},
                     "spec": {"ports": [{"port": 15443}]}, "status": {"loadBalancer": {"ingress": [{"ip": spec.gateway_address}]}}})
        elif release == "chaos-mesh":
            w.crds.setdefault(role, set()).add("chaos-mesh.org/v1alpha1 PodChaos")


def _running(ip: str) -> dict[str, Any]:
    return {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": "True"}]}


class FakeApi:
    """One cluster's API server, acting on the World."""

    def __init__(self, world: World, role: str, *, log: bool = True):
        self.world, self.role, self.logging = world, role, log
        self.execs: list[tuple[str, str, Argv]] = []

    def _log(self, *event: str) -> None:
        if self.logging:
            self.world.log.append((event[0], self.role, *event[1:]))

    def put(self, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        self.world.objects[(body["kind"], meta.get("namespace", ""), meta["name"], self.role)] = body

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        meta = body["metadata"]
        self._log("apply", f"{body['kind']} {meta.get('namespace') + '/' if meta.get('namespace') else ''}{meta['name']}")
        body = copy.deepcopy(body)
        if body["kind"] == "Secret" and body.get("type") == "kubernetes.io/service-account-token":
            body["data"] = {"token": base64.b64encode(f"token-of-{self.role}".encode()).decode(),
                            "ca.crt": base64.b64encode(f"ca-of-{self.role}".encode()).decode()}
        if body["kind"] == "Secret" and "stringData" in body:
            body["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in body.pop("stringData").items()}
        if body["kind"] == "Deployment":
            self._run(body)
        self.put(body)
        if body["kind"] == "Secret" and meta["name"] == "cacerts":
            root = base64.b64decode(body["data"]["root-cert.pem"]).decode()
            for ns in ("echo", "sleep"):
                self.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio-ca-root-cert", "namespace": ns},
                          "data": {"root-cert.pem": root}})
        return body

    def _run(self, body: dict[str, Any]) -> None:
        meta, template = body["metadata"], body["spec"]["template"]
        ns = self.get("v1", "Namespace", meta["namespace"]) or {}
        injected = (ns.get("metadata", {}).get("labels") or {}).get("istio-injection") == "enabled"
        containers = [*template["spec"]["containers"], *([{"name": "istio-proxy"}] if injected else [])]
        self.put({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{meta['name']}-0", "namespace": meta["namespace"],
                                                                 "labels": template["metadata"]["labels"]},
                  "spec": {"containers": containers}, "status": _running(f"10.{len(self.world.objects) % 250}.0.9")})
        body["status"] = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}
        body["metadata"]["generation"] = 1

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        found = self.world.objects.get((kind, namespace or "", name, self.role))
        return copy.deepcopy(found) if found else None

    def list(self, api_version: str, kind: str, namespace: str | None = None, labels: str | None = None) -> Objects:
        self._log("list", f"{kind} {namespace or ''}")
        wanted: dict[str, str | None] = {}
        for part in (labels or "").split(","):
            if part:
                key, sep, value = part.partition("=")
                wanted[key] = value if sep else None
        out = []
        for (k, ns, _, role), body in self.world.objects.items():
            have = (body.get("metadata") or {}).get("labels") or {}
            if k == kind and role == self.role and (namespace is None or ns == namespace) and all(
                    key in have and (value is None or have[key] == value) for key, value in wanted.items()):
                out.append(copy.deepcopy(body))
        return out

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        self._log("delete", f"{kind} {namespace or ''}/{name}")
        return self.world.objects.pop((kind, namespace or "", name, self.role), None) is not None

    def serves(self, api_version: str, kind: str) -> bool:
        return f"{api_version} {kind}" in self.world.crds.get(self.role, set())

    def pod_proxy(self, namespace: str, pod: str, port: int, path: str) -> str:
        self._log("proxy", path)
        if path == "debug/clusterz":
            others = [c.name for c in self.world.topology.clusters if c.name != self.role]
            return json.dumps([{"id": o, "secretName": f"istio-system/istio-remote-secret-{o}",
                                "syncStatus": "synced" if self.get("v1", "Secret", f"istio-remote-secret-{o}", "istio-system") else "syncing"}
                               for o in others])
        if path == "debug/syncz":
            return json.dumps([{"proxy": "sleep-0.sleep", "cluster_sent": "1", "cluster_acked": "1"}])
        return ""

    def exec(self, namespace: str, pod: str, container: str, command: Argv, *, timeout: float) -> ExecResult:
        self._log("exec", f"{namespace}/{pod}", container, " ".join(command)[:60])
        self.execs.append((pod, container, command))
        if command[:4] == ["pilot-agent", "request", "GET", "clusters?format=json"]:
            hosts = []
            for other in self.world.topology.clusters:
                if other.name != self.role and self.get("v1", "Secret", f"istio-remote-secret-{other.name}", "istio-system"):
                    hosts.append({"address": {"socket_address": {"address": other.gateway_address, "port_value": 15443}},
                                  "locality": {"region": other.region, "zone": other.zone}})
            return ExecResult(json.dumps({"cluster_statuses": [{"name": "outbound|80||echo.echo.svc.cluster.local",
                                                                 "host_statuses": hosts}]}), "", 0)
        return ExecResult("", "", 0)

    def logs(self, namespace: str, pod: str, container: str, lines: int) -> str:
        return ""
