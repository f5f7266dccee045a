"""The lab's kubelet and ReplicaSet controller: pods from Deployments, started, checked, removed.

A Deployment of ``replicas: N`` becomes N pods named ``<deployment>-<cluster>-<i>``; a pod
whose template changed is replaced. A pod is a network namespace with, when injected, an
Envoy sidecar (certificates from its cluster's intermediate CA) and, for the echo image,
the echo app. A pod becomes *ready* only once its sidecar runs its configuration and its app
answers ``/healthz``: only ready pods are published as endpoints, as Kubernetes publishes
only Ready pods in EndpointSlices.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eastwest.backends.lab.apiserver import Key, Store
from eastwest.backends.lab.envoy_config import CertPaths, bootstrap
from eastwest.backends.lab.istiod import PodInfo
from eastwest.backends.lab.network import LabNetwork, PodNet
from eastwest.backends.lab.protocol import MeshSettings
from eastwest.backends.lab.proxies import Envoy, Process, wait_http_ok
from eastwest.support import pki
from eastwest.support.errors import ManifestError
from eastwest.support.spiffe import SpiffeId
from eastwest.support.topology import Topology

STATE_DIR = Path("/run/eastwest")
ECHO_IMAGE = "eastwest/echo"
CLIENT_IMAGES = ("curlimages/curl", "eastwest/sleep")
ROOT_ANNOTATION = "lab.eastwest.io/certificate-root"  # "untrusted": a cert from a root the mesh does not trust
SIDECAR_PORTS = (15000, 15001, 15006, 15021, 15090)
PROXY_CONTAINER = "istio-proxy"  # the injected sidecar's (and the gateway chart's) container name


@dataclass(frozen=True)
class AppSpec:
    """How to run a pod's app: the echo server's argv, environment and port."""

    argv: list[str]
    env: dict[str, str]
    port: int


@dataclass
class Pod:
    """A pod: namespace, optional sidecar, optional app process."""

    cluster: str
    namespace: str
    name: str
    owner: str  # deployment name
    template_hash: str
    labels: dict[str, str]
    service_account: str
    locality: str
    sidecar: bool
    net: PodNet
    dir: Path
    gateway: bool = False  # an east-west gateway: a router proxy, no app
    ports: dict[str, int] = field(default_factory=dict)
    app_spec: AppSpec | None = None
    envoy: Envoy | None = None
    app: Process | None = None
    untrusted_root: bool = False
    certs: CertPaths | None = None
    ready: bool = False
    app_container: str = ""  # the Deployment's container name ("" for a gateway)
    annotations: dict[str, str] = field(default_factory=dict)
    #: containers whose processes a fault stopped, until the kubelet restarts them
    down: set[str] = field(default_factory=set)
    #: HTTP filters an HTTPChaos puts first in this sidecar's inbound listener on a port
    http_faults: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    deleted: bool = False  # deleted (pod-kill), kept only until the kubelet has finished with it

    @property
    def ref(self) -> str:
        return f"{self.cluster}/{self.namespace}/{self.name}"

    @property
    def containers(self) -> list[str]:
        return [*([self.app_container] if self.app_container else []), *([PROXY_CONTAINER] if self.envoy else [])]

    def process(self, container: str) -> Process | None:
        """The process running a container (None: not started, or a client container, which runs none)."""
        if container == PROXY_CONTAINER:
            return self.envoy.process if self.envoy else None
        return self.app if container == self.app_container else None

    def info(self, network: str) -> PodInfo:
        return PodInfo(self.cluster, network, self.namespace, self.name, self.net.ip, self.labels,
                       self.service_account, self.locality, self.sidecar, self.ports, self.ready, tuple(self.http_faults))

    def stop(self) -> None:
        if self.app:
            self.app.stop(0.5)
        if self.envoy:
            self.envoy.stop()


@dataclass
class ClusterRuntime:
    """One cluster: its API objects, its istiod's settings, its pods."""

    name: str
    store: Store = field(default_factory=Store)
    installed: MeshSettings | None = None  # mesh config of its "istiod"
    gateway: Pod | None = None
    gateway_labels: dict[str, str] = field(default_factory=dict)
    pods: dict[str, Pod] = field(default_factory=dict)

    def all_pods(self) -> list[Pod]:
        return [*self.pods.values(), *([self.gateway] if self.gateway else [])]

    def pods_of(self, workload: str) -> list[Pod]:
        """The pods of ``namespace/deployment`` (the gateway by its chart name)."""
        ns, _, name = workload.partition("/")
        return [p for p in self.all_pods() if p.namespace == ns and p.owner == name]


def _inject(store: Store, namespace: str, labels: dict[str, str], annotations: dict[str, Any]) -> bool:
    """Istio's injection decision: the namespace label, overridden by the pod's label or annotation."""
    inject = store.namespace_labels(namespace).get("istio-injection") == "enabled" or labels.get("sidecar.istio.io/inject") == "true"
    if str(annotations.get("sidecar.istio.io/inject", labels.get("sidecar.istio.io/inject", ""))).lower() == "false":
        inject = False
    return inject


class Kubelet:
    """Creates and removes pods; the supervisor decides when, and pushes their configuration."""

    def __init__(self, topology: Topology, network: LabNetwork, cas: dict[str, pki.Authority], untrusted_ca: pki.Authority):
        self.topology = topology
        self.network = network
        self.cas = cas
        self.untrusted_ca = untrusted_ca
        self.generations: dict[str, int] = {}  # pod slot -> replacements so far (a replacement gets a new name)

    @staticmethod
    def check_runnable(doc_ref: str, container: dict[str, Any]) -> None:
        """Refuse a container the lab cannot run, naming what it runs instead."""
        image = str(container.get("image", ""))
        if not (image.startswith(ECHO_IMAGE) or image.startswith(CLIENT_IMAGES)):
            raise ManifestError(
                f"{doc_ref}: image {image!r} cannot run in the lab; it runs {ECHO_IMAGE}:<tag> (the echo server) "
                f"and {CLIENT_IMAGES[0]}:<tag> (a client)"
            )
        for port in container.get("ports") or []:
            if int(port["containerPort"]) in SIDECAR_PORTS:
                raise ManifestError(f"{doc_ref}: containerPort {port['containerPort']} is taken by the sidecar "
                                    f"({', '.join(map(str, SIDECAR_PORTS))} are reserved)")

    @staticmethod
    def desired(rt: ClusterRuntime) -> dict[str, tuple[Key, dict[str, Any], str, int]]:
        """Pod key -> (Deployment, its spec, template hash, replica index), as a ReplicaSet wants them."""
        out = {}
        for key, body in rt.store.of_kind("Deployment"):
            spec = body["spec"]
            template_hash = hashlib.sha256(json.dumps(spec["template"], sort_keys=True).encode()).hexdigest()[:8]
            for i in range(int(spec.get("replicas", 1))):
                out[f"{key.namespace}/{key.name}-{rt.name}-{i}"] = (key, spec, template_hash, i)
        return out

    def sync(self, rt: ClusterRuntime) -> list[Pod]:
        """Remove pods no Deployment wants, create the missing ones (not started); returns the new ones."""
        desired = self.desired(rt)
        for pod_key in list(rt.pods):
            want = desired.get(pod_key)
            if want is None or want[2] != rt.pods[pod_key].template_hash:
                self.remove(rt, pod_key)
        created = []
        for pod_key, (key, spec, template_hash, i) in desired.items():
            if pod_key not in rt.pods:
                rt.pods[pod_key] = self._pod_from_template(rt, key, spec["template"], template_hash, i)
                created.append(rt.pods[pod_key])
        return created

    def _pod_from_template(self, rt: ClusterRuntime, key: Key, template: dict[str, Any], template_hash: str, i: int) -> Pod:
        labels = {str(k): str(v) for k, v in (template.get("metadata", {}).get("labels") or {}).items()}
        annotations = template.get("metadata", {}).get("annotations") or {}
        locality = labels.get("istio-locality", "").replace(".", "/") or self.topology.cluster(rt.name).locality
        # a ReplicaSet names every pod anew: a replacement gets the next generation's name
        generation = self.generations.get(f"{key.namespace}/{key.name}-{rt.name}-{i}", 0)
        name = f"{key.name}-{rt.name}-{i}" + (f"-r{generation}" if generation else "")
        pod = self.new_pod(rt.name, key.namespace, name, key.name, template_hash, labels,
                           str(template["spec"].get("serviceAccountName", "default")), locality,
                           sidecar=_inject(rt.store, key.namespace, labels, annotations))
        pod.untrusted_root = annotations.get(ROOT_ANNOTATION) == "untrusted"
        pod.annotations = {str(k): str(v) for k, v in annotations.items()}
        container = template["spec"]["containers"][0]
        pod.app_container = str(container.get("name") or key.name)
        pod.ports = {str(p.get("name")): int(p["containerPort"]) for p in container.get("ports") or [] if p.get("name")}
        pod.app_spec = self._app_spec(pod, container)
        return pod

    def new_pod(self, cluster: str, namespace: str, name: str, owner: str, template_hash: str, labels: dict[str, str],
                sa: str, locality: str, *, sidecar: bool, external_ip: str | None = None) -> Pod:
        net = self.network.add_pod(cluster, name, external_ip=external_ip)
        d = STATE_DIR / cluster / namespace / name
        d.mkdir(parents=True, exist_ok=True)
        return Pod(cluster, namespace, name, owner, template_hash, labels, sa, locality, sidecar, net, d,
                   gateway=external_ip is not None)

    def _app_spec(self, pod: Pod, container: dict[str, Any]) -> AppSpec | None:
        if not str(container["image"]).startswith(ECHO_IMAGE):
            return None  # a client: the lab sends its requests itself from the pod's namespace
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
        field_values = {"metadata.name": pod.name, "metadata.namespace": pod.namespace,
                        "spec.serviceAccountName": pod.service_account, "status.podIP": pod.net.ip}
        for item in container.get("env") or []:
            if "value" in item:
                env[str(item["name"])] = str(item["value"])
                continue
            path = item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath", "")
            if path not in field_values:
                raise ManifestError(f"{pod.namespace}/{pod.owner}: env {item['name']}: fieldRef {path!r} is not supported "
                                    f"by the lab (supported: {', '.join(field_values)})")
            env[str(item["name"])] = field_values[path]
        args = [str(a) for a in container.get("args") or []]
        port = next((int(a.split("=", 1)[1]) for a in args if a.startswith("--port=")), 8080)
        # the lab's stand-in for iptables capture: the app listens on loopback, the sidecar on the pod IP
        bind = ["--bind=127.0.0.1"] if pod.sidecar else []
        return AppSpec([sys.executable, "-m", "eastwest.apps.echo", *args, *bind], env, port)

    def certs(self, pod: Pod, trust_domain: str) -> CertPaths:
        """Issue the pod's workload certificate, as istiod's CA would for its service account."""
        ca = self.untrusted_ca if pod.untrusted_root else self.cas[pod.cluster]
        cert = ca.workload(SpiffeId(trust_domain, pod.namespace, pod.service_account))
        (pod.dir / "cert-chain.pem").write_bytes(cert.chain_pem)
        (pod.dir / "key.pem").write_bytes(cert.key_pem)
        # an untrusted client still trusts the mesh root, so it is the server that must refuse it
        (pod.dir / "root-cert.pem").write_bytes(self.cas[pod.cluster].cacerts()["root-cert.pem"])
        return CertPaths(str(pod.dir / "cert-chain.pem"), str(pod.dir / "key.pem"), str(pod.dir / "root-cert.pem"))

    def prepare_proxy(self, pod: Pod, trust_domain: str) -> None:
        """Give an injected pod (or a gateway) its certificates and an Envoy, not yet started."""
        if not (pod.sidecar or pod.gateway):
            return
        pod.certs = self.certs(pod, trust_domain)
        kind = "router" if pod.gateway else "sidecar"
        node_id = f"{kind}~{pod.net.ip}~{pod.name}.{pod.namespace}~{pod.namespace}.svc.cluster.local"
        pod.envoy = Envoy(pod.ref, pod.net.ns, pod.dir, bootstrap(node_id, f"{pod.owner}.{pod.namespace}", pod.locality, str(pod.dir)))

    @classmethod
    def start_app(cls, pod: Pod, within: float) -> None:
        """Start the pod's app and wait for its health check (``/healthz``)."""
        if pod.app_spec is None:
            return
        cls._launch_app(pod)
        cls._wait_app(pod, within)

    @staticmethod
    def _launch_app(pod: Pod) -> None:
        assert pod.app_spec is not None
        pod.app = Process(pod.app_spec.argv, pod.net.ns, pod.dir, "app", env=pod.app_spec.env)

    @staticmethod
    def _wait_app(pod: Pod, within: float) -> None:
        assert pod.app_spec is not None
        host = "127.0.0.1" if pod.sidecar else pod.net.ip
        wait_http_ok(pod.net.ns, host, pod.app_spec.port, "/healthz", within, f"{pod.ref} echo", pod.app)

    # ---- containers stopped and restarted (what Chaos Mesh's pod faults ask of a kubelet) ----

    @staticmethod
    def kill(pod: Pod, containers: list[str], sig: int = signal.SIGKILL) -> None:
        """Signal the containers' processes (SIGKILL: and wait until they are gone); they count as down."""
        for name in containers:
            process = pod.process(name)
            if process is not None and process.alive():
                process.popen.send_signal(sig)
                if sig == signal.SIGKILL:
                    process.popen.wait()
            pod.down.add(name)

    @classmethod
    def restart(cls, pod: Pod, containers: list[str], envoy_binary: str) -> None:
        """Start the containers' processes again, as the kubelet restarts a container (same pod, same IP)."""
        for name in containers:
            if name == PROXY_CONTAINER and pod.envoy is not None:
                pod.envoy.start(envoy_binary)
            elif name == pod.app_container and pod.app_spec is not None:
                cls._launch_app(pod)

    @classmethod
    def wait_started(cls, pod: Pod, containers: list[str], within: float) -> None:
        """Wait until restarted containers are up (the sidecar runs its configuration, the app answers)."""
        for name in containers:
            if name == PROXY_CONTAINER and pod.envoy is not None:
                pod.envoy.wait_synced(within)
            elif name == pod.app_container and pod.app_spec is not None:
                cls._wait_app(pod, within)
            pod.down.discard(name)

    def evict(self, rt: ClusterRuntime, pod_key: str) -> Pod:
        """Take a pod out of its ReplicaSet (deleted): its slot is free for a replacement with a new name."""
        pod = rt.pods.pop(pod_key)
        pod.deleted = True
        pod.ready = False
        self.generations[pod_key] = self.generations.get(pod_key, 0) + 1
        return pod

    def remove(self, rt: ClusterRuntime, pod_key: str) -> None:
        pod = rt.pods.pop(pod_key)
        pod.deleted = True  # a fault's clean-up leaves it alone
        pod.stop()
        self.network.remove_pod(rt.name, pod.net)
