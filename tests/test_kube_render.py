"""Every object the kind and existing backends render, validated offline against the real schemas.

kind configs (kind's v1alpha4 types), MetalLB pools (MetalLB 0.16.1 CRDs), istio-system and the
cacerts secret, the reader token and remote secrets, the workloads as applied (core kinds, strict,
kubernetes-validate), the cross-network Gateway (Istio CRDs), Helm values as installed (the gateway
chart's values schema, and every key path against the charts' defaults), Chaos Mesh resources and
the EnvoyFilter HTTPChaos becomes on sidecars. Each validation is then shown to reject a broken
object of its kind. The objects of the plan itself are validated too.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from eastwest.backends.kube import chaos, plan, render
from eastwest.schemas import Schemas, SchemaUnavailable
from eastwest.support import pki
from eastwest.support.topology import load_topology

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"
TOPOLOGY = load_topology(MANIFESTS / "topology.yaml")
SCHEMAS = Schemas(ROOT.parent / "shared" / "schemas")
ROLES = TOPOLOGY.names

pytestmark = pytest.mark.skipif(not SCHEMAS.available, reason=f"the upstream schemas are not there: {SCHEMAS.root} is missing")

SELECTOR = {"namespaces": ["echo"], "labelSelectors": {"app": "echo"}}
POD_CHAOS = {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "PodChaos", "metadata": {"name": "kill-echo-us", "namespace": "echo"},
             "spec": {"action": "pod-kill", "mode": "all", "selector": SELECTOR}}
NETWORK_CHAOS = {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos",
                 "metadata": {"name": "cut-eu-gateway", "namespace": "istio-system"},
                 "spec": {"action": "partition", "mode": "all", "direction": "to", "externalTargets": ["172.31.255.20/32"],
                          "selector": {"namespaces": ["istio-system"], "labelSelectors": {"istio": "eastwestgateway"}}}}
HTTP_CHAOS = {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "HTTPChaos", "metadata": {"name": "abort-echo", "namespace": "echo"},
              "spec": {"mode": "all", "selector": SELECTOR, "target": "Request", "port": 8080, "path": "*", "abort": True}}


def errors(body: dict[str, Any]) -> list[str]:
    try:
        return SCHEMAS.errors(body)
    except SchemaUnavailable as exc:
        pytest.skip(str(exc))


def values_errors(chart: str, values: dict[str, Any]) -> list[str]:
    try:
        return SCHEMAS.values_errors(chart, values)
    except SchemaUnavailable as exc:
        pytest.skip(str(exc))


def broken(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy with ``value`` at the dotted ``path`` (``[n]`` indexes a list)."""
    out = copy.deepcopy(obj)
    parts = [int(p[1:-1]) if p.startswith("[") else p for p in path.replace("[", ".[").split(".") if p]
    node: Any = out
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
    return out


@pytest.fixture(scope="module")
def cas() -> dict[str, pki.Authority]:
    return pki.mesh_cas(list(ROLES))


def rendered(role: str, cas: dict[str, pki.Authority]) -> list[dict[str, Any]]:
    """Everything a kind bring-up applies to one cluster, with realistic values where the plan has placeholders."""
    out = [render.kind_config(TOPOLOGY, role), *render.metallb_objects(TOPOLOGY, role)]
    out += render.phase_objects(MANIFESTS, TOPOLOGY, role, "namespace")
    out.append(render.cacerts_secret(cas[role].cacerts()))
    out += render.phase_objects(MANIFESTS, TOPOLOGY, role, "expose-services")
    out.append(render.reader_token_secret())
    for other in TOPOLOGY.clusters:
        if other.name != role:
            out.append(render.remote_secret(other.name, f"https://{other.api_server_address}:6443", ca_crt=b"-----BEGIN CERTIFICATE-----",
                                            token="eyJhbGciOiJSUzI1NiJ9.e30.sig"))
    out += render.phase_objects(MANIFESTS, TOPOLOGY, role, "workloads")
    out += [render.with_label(POD_CHAOS), render.with_label(NETWORK_CHAOS), render.with_label(HTTP_CHAOS),
            chaos.http_chaos_envoy_filter(HTTP_CHAOS)]
    return out


@pytest.mark.parametrize("role", ROLES)
def test_every_rendered_object_validates(role: str, cas: dict[str, pki.Authority]) -> None:
    objects = rendered(role, cas)
    kinds = {o["kind"] for o in objects}
    assert {"Cluster", "IPAddressPool", "L2Advertisement", "Namespace", "Secret", "Gateway", "Deployment", "PodChaos",
            "NetworkChaos", "HTTPChaos", "EnvoyFilter"} <= kinds, kinds
    problems = {f"{o['kind']} {o.get('metadata', {}).get('name', '')}": errors(o) for o in objects}
    assert not {k: v for k, v in problems.items() if v}, problems


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("chart", ["base", "istiod", "gateway", "chaos-mesh"])
def test_helm_values_as_installed_fit_their_chart(role: str, chart: str) -> None:
    values = render.helm_values(MANIFESTS, TOPOLOGY, role, chart)
    assert values_errors(chart, values) == []


def test_every_object_of_the_plan_validates(tmp_path: Path, cas: dict[str, pki.Authority]) -> None:
    ctx = plan.KindContext(TOPOLOGY, MANIFESTS, render.Layout("eastwest", tmp_path))
    checked = 0
    for step in plan.build(ctx):
        for body in step.objects:
            if body["kind"] == "Secret" and body["metadata"]["name"] == "cacerts":
                body = render.cacerts_secret(cas[str(step.cluster)].cacerts())  # the plan shows placeholders for keys
            assert errors(body) == [], (step.key, step.cluster, body["kind"], body["metadata"]["name"])
            checked += 1
    assert checked >= 20


def test_gateway_values_pin_the_topology_address() -> None:
    for spec in TOPOLOGY.clusters:
        values = render.helm_values(MANIFESTS, TOPOLOGY, spec.name, "gateway")
        assert values["service"]["annotations"]["metallb.io/loadBalancerIPs"] == spec.gateway_address
        assert values["networkGateway"] == spec.network
        pool = render.metallb_objects(TOPOLOGY, spec.name)[0]
        assert pool["spec"]["addresses"] == [f"{spec.gateway_address}/32"]


def test_remote_secret_is_what_istioctl_makes() -> None:
    secret = render.remote_secret("eu", "https://172.31.255.3:6443", ca_crt=b"CA", token="T")
    assert secret["metadata"]["name"] == "istio-remote-secret-eu"
    assert secret["metadata"]["labels"]["istio/multiCluster"] == "true"
    assert secret["metadata"]["annotations"]["networking.istio.io/cluster"] == "eu"
    import yaml

    kubeconfig = yaml.safe_load(secret["stringData"]["eu"])
    cluster = kubeconfig["clusters"][0]["cluster"]
    assert cluster["server"] == "https://172.31.255.3:6443" and cluster["tls-server-name"] == "kubernetes"
    assert cluster["certificate-authority-data"] == "Q0E=" and kubeconfig["users"][0]["user"] == {"token": "T"}
    with pytest.raises(ValueError, match="loopback"):
        render.remote_secret("eu", "https://127.0.0.1:6443", ca_crt=b"CA", token="T")


def test_echo_gets_a_readiness_probe_and_every_object_our_label() -> None:
    objects = render.phase_objects(MANIFESTS, TOPOLOGY, "us", "workloads")
    assert all(o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "eastwest" for o in objects)
    echo = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "echo")
    probe = echo["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe["httpGet"] == {"path": "/healthz", "port": 8080}
    sleep = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "sleep")
    assert "readinessProbe" not in sleep["spec"]["template"]["spec"]["containers"][0]


# ---- each validation rejects a broken object of its kind ------------------------------------------


def _good(kind: str, cas: dict[str, pki.Authority]) -> dict[str, Any]:
    return next(o for o in rendered("us", cas) if o["kind"] == kind and (kind != "Secret" or o["metadata"]["name"] == "cacerts"))


BROKEN = [
    ("Cluster", "nodes[0].label", {"a": "b"}, "'label' was unexpected"),
    ("Cluster", "networking.podSubnet", 10, "is not of type 'string'"),
    ("IPAddressPool", "spec.adresses", ["172.31.255.10/32"], "'adresses' was unexpected"),
    ("L2Advertisement", "spec.ipAddressPool", ["x"], "'ipAddressPool' was unexpected"),
    ("Namespace", "metadata.labels", {"topology.istio.io/network": True}, "metadata.labels"),
    ("Secret", "data", {"ca-cert.pem": "not base64!"}, "is not a 'byte'"),
    ("Gateway", "spec.servers[0].tls.mode", "PASSTHRU", "'PASSTHRU' is not one of"),
    ("Deployment", "spec.template.spec.containers[0].readinessprobe", {}, "'readinessprobe' was unexpected"),
    ("PodChaos", "spec.action", "explode", "'explode' is not one of"),
    ("NetworkChaos", "spec.direction", "sideways", "'sideways' is not one of"),
    ("HTTPChaos", "spec.abort", "yes", "is not of type 'boolean'"),
    ("EnvoyFilter", "spec.configPatches[0].applyTo", "HTTP_FILTERS", "'HTTP_FILTERS' is not one of"),
]


@pytest.mark.parametrize("kind, path, value, needle", BROKEN, ids=[f"{k}:{p}" for k, p, _, _ in BROKEN])
def test_a_broken_object_of_each_kind_is_rejected(kind: str, path: str, value: Any, needle: str, cas: dict[str, pki.Authority]) -> None:
    good = _good(kind, cas)
    assert errors(good) == []
    problems = errors(broken(good, path, value))
    assert any(needle in p for p in problems), problems


def test_a_remote_secret_with_a_bad_label_is_rejected() -> None:
    secret = render.remote_secret("eu", "https://172.31.255.3:6443", ca_crt=b"CA", token="T")
    assert errors(secret) == []
    assert errors(broken(secret, "metadata.labels", {"istio/multiCluster": 1}))
    assert any("'stringdata' was unexpected" in p for p in errors(broken(secret, "stringdata", {})))


@pytest.mark.parametrize("chart, values, needle", [
    ("istiod", {"pilot": {"autoscaleEnabled": False}}, "pilot: not a value of the chart"),
    ("istiod", {"global": {"meshId": "x"}}, "global.meshId: not a value of the chart (did you mean global.meshID?)"),
    ("gateway", {"service": {"annotation": {}}}, "service.annotation: not a value of the chart"),
    ("gateway", {"networkGatway": "eu-net"}, "'networkGatway' was unexpected"),
    ("chaos-mesh", {"chaosDaemon": {"runtme": "containerd"}}, "chaosDaemon.runtme: not a value of the chart"),
])
def test_broken_helm_values_are_rejected(chart: str, values: dict[str, Any], needle: str) -> None:
    problems = values_errors(chart, values)
    assert any(needle in p for p in problems), problems
