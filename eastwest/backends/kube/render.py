"""Every object the kube backends create, rendered from the topology and ``manifests/``: pure functions.

The plan prints these, the bring-up applies them, and ``make test`` validates them against the
real schemas; all three call the same functions. Values known only at bring-up (a token, a CA,
generated keys) are given by the caller; the plan passes ``runtime("...")`` placeholders instead.
"""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from eastwest.backends.kube import pins
from eastwest.schemas import kind as kind_schema
from eastwest.support import install
from eastwest.support.topology import Topology

#: every object the kube backends apply carries it; cleanup removes only what has it
MANAGED_BY = {"app.kubernetes.io/managed-by": "eastwest"}
#: docker networks and images the kind backend creates carry it (``docker network ls --filter label=...``)
DOCKER_LABEL = "io.eastwest.owner=eastwest"

KIND_VALUES = {"istiod": "kind/istiod.values.yaml", "gateway": "kind/eastwest-gateway.values.yaml",
               "chaos-mesh": "kind/chaos-mesh.values.yaml"}
READER_SERVICE_ACCOUNT = "istio-reader-service-account"  # from the istio/base chart
READER_TOKEN_SECRET = "istio-reader-service-account-istio-remote-secret-token"  # istioctl's name for it


def runtime(what: str) -> str:
    """A placeholder for a value the plan cannot know (shown as ``<runtime: what>``)."""
    return f"<runtime: {what}>"


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


@dataclass(frozen=True)
class Layout:
    """The names the kind backend gives to what it creates, all derived from ``--kind-name``."""

    prefix: str
    state_dir: Path

    def cluster(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def node(self, role: str) -> str:
        return f"{self.cluster(role)}-control-plane"  # kind's name for a single node's container

    def context(self, role: str) -> str:
        return f"kind-{self.cluster(role)}"  # kind's name for the kubeconfig context

    def network(self, role: str) -> str:
        return self.cluster(role)

    @property
    def transit_network(self) -> str:
        # docker routes a container's default through the network whose name sorts first
        # (moby/libnetwork#1141): "-wan" sorts after "-eu"/"-us", so nodes keep their own gateway
        return f"{self.prefix}-wan"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"


# ---- kind, MetalLB ------------------------------------------------------------------------------


def kind_config(topology: Topology, role: str) -> dict[str, Any]:
    """kind's v1alpha4 config: the topology's pod and service CIDRs, one node labelled with region and zone."""
    spec = topology.cluster(role)
    return {
        "kind": "Cluster",
        "apiVersion": kind_schema.API_VERSION,
        "networking": {"podSubnet": str(spec.pod_subnet), "serviceSubnet": str(spec.service_subnet)},
        "nodes": [{
            "role": "control-plane",
            "image": pins.NODE_IMAGE,
            # the kubelet applies these (node-labels); istiod reads a pod's locality from its node's labels
            "labels": {"topology.kubernetes.io/region": spec.region, "topology.kubernetes.io/zone": spec.zone},
        }],
    }


def metallb_objects(topology: Topology, role: str) -> list[dict[str, Any]]:
    """One pool holding exactly this cluster's gateway address, announced on L2 (every interface)."""
    spec = topology.cluster(role)
    meta = {"namespace": "metallb-system", "labels": dict(MANAGED_BY)}
    return [
        {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "eastwest-gateway", **meta},
         # autoAssign off: only a Service that asks for the address (metallb.io/loadBalancerIPs) gets it
         "spec": {"addresses": [f"{spec.gateway_address}/32"], "autoAssign": False}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement", "metadata": {"name": "eastwest-transit", **meta},
         # no interfaces: the transit NIC's name depends on attach order; nobody else asks for these addresses
         "spec": {"ipAddressPools": ["eastwest-gateway"]}},
    ]


# ---- Istio --------------------------------------------------------------------------------------


def with_label(body: dict[str, Any], labels: dict[str, str] = MANAGED_BY) -> dict[str, Any]:
    out = copy.deepcopy(body)
    out.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
    return out


def phase_objects(root: Path, topology: Topology, role: str, phase: str) -> list[dict[str, Any]]:
    """The manifests of an install phase for one cluster, labelled as ours (workloads adapted)."""
    docs = install.documents(root, topology, role, install.phase(phase).manifests)
    return [adapt(d.body) for d in docs]


def cacerts_secret(files: dict[str, bytes] | None) -> dict[str, Any]:
    """Istio's plugged-in CA secret from one intermediate of the mesh PKI (``pki.Authority.cacerts()``)."""
    names = ("ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem")
    data = {n: b64(files[n]) if files else runtime(f"{n} of this cluster's intermediate, base64") for n in names}
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "cacerts", "namespace": "istio-system", "labels": dict(MANAGED_BY)}, "data": data}


def helm_values(root: Path, topology: Topology, role: str, chart: str) -> dict[str, Any]:
    """A release's values for kind: the shared file of its phase (if any) merged with the kind overlay."""
    shared = next((r.values for p in install.PHASES if (r := p.release) and r.chart == chart), ())
    values: dict[str, Any] = {}
    for name in (*shared, KIND_VALUES.get(chart)):
        if name:
            values = install.merge_values(values, install.helm_values(root, topology, role, name))
    return values


def reader_token_secret() -> dict[str, Any]:
    """The long-lived token of istio-reader-service-account that a remote secret carries (what istioctl creates)."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": READER_TOKEN_SECRET, "namespace": "istio-system", "labels": dict(MANAGED_BY),
                         "annotations": {"kubernetes.io/service-account.name": READER_SERVICE_ACCOUNT}}}


def remote_secret(cluster: str, server: str, *, ca_crt: bytes | None, token: str | None,
                  tls_server_name: str = "kubernetes") -> dict[str, Any]:
    """What ``istioctl create-remote-secret --name <cluster> --server <server>`` makes
    (istioctl/pkg/multicluster/remote_secret.go): label istio/multiCluster, annotation
    networking.istio.io/cluster, data key = the cluster's name (its istiod's clusterName)."""
    if "127.0.0.1" in server or "localhost" in server:
        raise ValueError(f"remote secret for {cluster}: server {server} is the host's loopback, which istiod cannot reach")
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": cluster, "preferences": {},
        "clusters": [{"name": cluster, "cluster": {
            "server": server,
            "certificate-authority-data": b64(ca_crt) if ca_crt else runtime(f"ca.crt of {cluster}'s reader token, base64"),
            # the API server's certificate names kubernetes* and its first address, not its transit address
            "tls-server-name": tls_server_name}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}],
        "users": [{"name": cluster, "user": {"token": token or runtime(f"token of {cluster}'s {READER_SERVICE_ACCOUNT}")}}],
    }
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": f"istio-remote-secret-{cluster}", "namespace": "istio-system",
                         "labels": {"istio/multiCluster": "true", **MANAGED_BY},
                         "annotations": {"networking.istio.io/cluster": cluster}},
            "stringData": {cluster: yaml.safe_dump(kubeconfig, sort_keys=False)}}


# ---- workloads ----------------------------------------------------------------------------------


def adapt(body: dict[str, Any], images: dict[str, str] | None = None) -> dict[str, Any]:
    """A manifest object as the kube backends apply it: labelled as ours; an echo container gets a
    readiness probe on the echo app's /healthz (Kubernetes publishes only ready endpoints; the lab
    checks the same path before it publishes a pod); pods get 1 s to stop (test workloads hold
    nothing, and ``sleep`` as PID 1 ignores SIGTERM: the default 30 s would hold every namespace
    deletion that long); ``images`` renames images (the user's registry)."""
    out = with_label(body)
    if out.get("kind") == "Deployment":
        out["spec"]["template"]["spec"].setdefault("terminationGracePeriodSeconds", 1)
        for container in out["spec"]["template"]["spec"].get("containers", []):
            is_echo = str(container.get("image", "")).startswith(pins.ECHO_IMAGE.split(":")[0] + ":")
            container["image"] = (images or {}).get(container.get("image", ""), container.get("image"))
            if is_echo and "readinessProbe" not in container:
                port = next((p["containerPort"] for p in container.get("ports", []) if p.get("name") == "http"), 8080)
                container["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": port}, "periodSeconds": 2}
    return out


def workload_images(root: Path, topology: Topology) -> list[str]:
    """Every container image the workload and suite manifests run (what the nodes must already have)."""
    images: set[str] = set()
    for path in sorted([*(root / "workloads").rglob("*.yaml"), *(root / install.SUITE_MANIFESTS).rglob("*.yaml")]):
        rel = str(path.relative_to(root))
        for role in topology.names:
            for doc in install.documents(root, topology, role, [rel]):
                spec = (doc.body.get("spec") or {}).get("template", {}).get("spec", {})
                images.update(c["image"] for c in spec.get("containers", []) if c.get("image"))
    return sorted(images)
