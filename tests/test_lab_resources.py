"""Self-tests of fixtures/backends/lab/resources.py: what the lab accepts, refuses, and stores."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml

from eastwest.backends.lab.apiserver import Key, Store, parse_duration, validate
from eastwest.support import install, manifest
from eastwest.support.errors import ManifestError
from eastwest.support.manifest import Document
from eastwest.support.topology import load_topology

ROOT = Path(__file__).resolve().parent.parent / "manifests"
TOPO = load_topology(ROOT / "topology.yaml")


def all_manifests() -> list[str]:
    """Every manifest the lab applies (chaos/ holds faults, which are injected, never applied)."""
    return sorted(
        p.relative_to(ROOT).as_posix()
        for p in ROOT.rglob("*.yaml")
        if not p.name.endswith(".values.yaml") and p.name != "topology.yaml" and p.relative_to(ROOT).parts[0] != "chaos"
    )


def docs_of(text: str, source: str = "suites/test.yaml") -> list[Document]:
    return manifest.parse(manifest.render(text, TOPO.variables("us"), source), source)


def doc_of(text: str) -> Document:
    [d] = docs_of(text)
    return d


def lab_store() -> Store:
    """A Store as the lab's supervisor makes it: its resolver knows the gateways' load-balancer names."""
    store = Store()
    store.dns_names = frozenset(c.gateway_hostname for c in TOPO.clusters)
    store.apply(install.documents(ROOT, TOPO, "us", install.BASE_MANIFESTS))
    return store


def refused(d: Document) -> str:
    with pytest.raises(ManifestError) as exc:
        validate(d)
    msg = str(exc.value)
    assert msg.startswith(d.ref), msg  # names the object and its file
    return msg


def edited(d: Document, edit) -> Document:
    body = copy.deepcopy(d.body)
    edit(body)
    return Document(body, d.source)


# Istio objects as the suites write them (documented Istio syntax), all supported by the lab.
LOCALITY_DR = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: echo-failover
  namespace: echo
spec:
  host: echo.echo.svc.cluster.local
  trafficPolicy:
    tls:
      mode: ISTIO_MUTUAL
    connectionPool:
      tcp: {connectTimeout: 250ms, maxConnections: 100}
      http: {maxRequestsPerConnection: 1}
    loadBalancer:
      simple: ROUND_ROBIN
      localityLbSetting:
        enabled: true
        failover:
          - from: ${REGION}
            to: eu
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 1m
      maxEjectionPercent: 100
"""

STRICT_PA = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: echo
spec:
  selector:
    matchLabels:
      app: echo
  mtls:
    mode: STRICT
"""

SERVICE_ENTRY = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: echo-remote
  namespace: echo
spec:
  hosts: [echo.remote.global]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
    - {number: 80, name: http, protocol: HTTP}
  endpoints:
    - address: ${EU_GATEWAY_ADDRESS}
      ports: {http: 15443}
      locality: eu/eu-a
"""

VIRTUAL_SERVICE = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: echo
  namespace: echo
spec:
  hosts: [echo.echo.svc.cluster.local]
  http:
    - route:
        - destination: {host: echo.echo.svc.cluster.local}
      timeout: 1s
"""


# --------------------------------------------------------------------------- the real manifests


@pytest.mark.parametrize("cluster", TOPO.names)
@pytest.mark.parametrize("name", all_manifests())
def test_every_real_manifest_validates(cluster, name):
    # every document, also those annotated for the other cluster only, rendered for this cluster
    docs = manifest.load(ROOT / name, TOPO.variables(cluster), root=ROOT)
    assert docs, f"{name} has no documents"
    for d in docs:
        validate(d)


@pytest.mark.parametrize("cluster", TOPO.names)
@pytest.mark.parametrize("name", [n for n in all_manifests() if n not in install.BASE_MANIFESTS])
def test_every_suite_manifest_applies_on_the_base_install(cluster, name):
    store = Store()
    store.dns_names = frozenset(c.gateway_hostname for c in TOPO.clusters)  # as the supervisor sets it
    store.apply(install.documents(ROOT, TOPO, cluster, install.BASE_MANIFESTS))
    docs = install.documents(ROOT, TOPO, cluster, [name])
    store.apply(docs)
    for d in docs:
        assert store.objects[Store.key(d)] is d.body


@pytest.mark.parametrize("cluster", TOPO.names)
def test_base_install_applies_as_one_batch(cluster):
    docs = install.documents(ROOT, TOPO, cluster, install.BASE_MANIFESTS)
    store = Store()
    store.apply(docs)
    assert len(store.objects) == len(docs)
    assert Key("Gateway", "istio-system", "cross-network-gateway") in store.objects
    assert store.namespace_labels("istio-system") == {"topology.istio.io/network": TOPO.cluster(cluster).network}
    assert [k.namespace for k, _ in store.of_kind("Deployment")] == ["echo", "sleep"]


def test_supported_istio_objects_validate():
    for text in (LOCALITY_DR, STRICT_PA, SERVICE_ENTRY):
        validate(doc_of(text))
    for version in ("v1", "v1beta1", "v1alpha3"):
        validate(edited(doc_of(LOCALITY_DR), lambda b, version=version: b.update(apiVersion=f"networking.istio.io/{version}")))


# --------------------------------------------------------------------------- refusals


def test_virtual_service_route_timeout_accepted_and_the_rest_refused():
    validate(doc_of(VIRTUAL_SERVICE))
    msg = refused(edited(doc_of(VIRTUAL_SERVICE), lambda b: b["spec"]["http"][0].update(retries={"attempts": 3})))
    assert "field spec.http[0].retries is not supported by the lab backend (supported here: route, timeout)" in msg
    msg = refused(edited(doc_of(VIRTUAL_SERVICE), lambda b: b["spec"]["http"][0]["route"][0]["destination"].update(host="other")))
    assert "spec.http[0].route must send to echo.echo.svc.cluster.local itself" in msg
    msg = refused(edited(doc_of(VIRTUAL_SERVICE), lambda b: b["spec"]["http"].append(b["spec"]["http"][0])))
    assert "exactly one http route (it has no match), got 2" in msg


def test_unsupported_istio_kind_refused():
    msg = refused(edited(doc_of(VIRTUAL_SERVICE), lambda b: b.update(kind="Sidecar")))
    assert "networking.istio.io/v1 Sidecar is not supported" in msg
    assert "DestinationRule" in msg  # lists what is supported


@pytest.mark.parametrize("api", ["networking.istio.io/v2", "v2", "apps/v1beta1"])
def test_unknown_api_versions_refused(api):
    assert "is not supported by the lab backend" in refused(edited(doc_of(LOCALITY_DR), lambda b: b.update(apiVersion=api)))


def test_port_level_settings_refused():
    def edit(b):
        b["spec"]["trafficPolicy"]["portLevelSettings"] = [{"port": {"number": 80}, "tls": {"mode": "DISABLE"}}]

    msg = refused(edited(doc_of(LOCALITY_DR), edit))
    assert "field spec.trafficPolicy.portLevelSettings is not supported" in msg


def test_port_level_mtls_refused():
    msg = refused(edited(doc_of(STRICT_PA), lambda b: b["spec"].update(portLevelMtls={8080: {"mode": "DISABLE"}})))
    assert "field spec.portLevelMtls is not supported" in msg


def test_simple_tls_refused():
    msg = refused(edited(doc_of(LOCALITY_DR), lambda b: b["spec"]["trafficPolicy"]["tls"].update(mode="SIMPLE")))
    assert "spec.trafficPolicy.tls.mode: 'SIMPLE' is not supported" in msg
    assert "ISTIO_MUTUAL" in msg


def test_distribute_and_failover_refused():
    def edit(b):
        b["spec"]["trafficPolicy"]["loadBalancer"]["localityLbSetting"]["distribute"] = [
            {"from": "us/*", "to": {"us/*": 80, "eu/*": 20}}
        ]

    assert "one of distribute or failover, not both" in refused(edited(doc_of(LOCALITY_DR), edit))


def test_distribute_alone_is_fine_but_weights_must_be_integers():
    def distribute(weight):
        def edit(b):
            lls = b["spec"]["trafficPolicy"]["loadBalancer"]["localityLbSetting"]
            del lls["failover"]
            lls["distribute"] = [{"from": "us/*", "to": {"us/*": weight, "eu/*": 20}}]

        return edited(doc_of(LOCALITY_DR), edit)

    validate(distribute(80))
    assert "localityLbSetting.distribute[0].to.us/*" in refused(distribute("80%"))


def test_bad_duration_refused():
    msg = refused(
        edited(doc_of(LOCALITY_DR), lambda b: b["spec"]["trafficPolicy"]["outlierDetection"].update(interval="5 seconds"))
    )
    assert "field spec.trafficPolicy.outlierDetection.interval" in msg and "'5 seconds'" in msg


def test_hostname_endpoint_refused():
    """A name with STATIC resolution is refused as istiod's validation does; with DNS, only names the lab resolves pass."""
    msg = refused(edited(doc_of(SERVICE_ENTRY), lambda b: b["spec"]["endpoints"][0].update(address="echo.eu.example.com")))
    assert "'echo.eu.example.com' is a name; with resolution STATIC endpoints must be IP addresses" in msg
    store = lab_store()
    by_dns = edited(doc_of(SERVICE_ENTRY), lambda b: (b["spec"].update(resolution="DNS"),
                                                      b["spec"]["endpoints"][0].update(address="echo.eu.example.com")))
    with pytest.raises(ManifestError, match="'echo.eu.example.com' is a name the lab cannot resolve"):
        store.check_apply([by_dns])
    store.check_apply([edited(by_dns, lambda b: b["spec"]["endpoints"][0].update(address=TOPO.cluster("eu").gateway_hostname))])


def test_endpoint_port_name_must_exist():
    msg = refused(edited(doc_of(SERVICE_ENTRY), lambda b: b["spec"]["endpoints"][0].update(ports={"grpc": 15443})))
    assert "names port 'grpc'" in msg


def test_service_entry_needs_hosts_and_dr_needs_host():
    assert "spec.hosts is required" in refused(edited(doc_of(SERVICE_ENTRY), lambda b: b["spec"].pop("hosts")))
    assert "spec.host is required" in refused(edited(doc_of(LOCALITY_DR), lambda b: b["spec"].pop("host")))


@pytest.fixture(scope="module")
def echo_docs() -> dict[str, Document]:
    return {d.kind: d for d in install.documents(ROOT, TOPO, "us", ["workloads/echo.yaml"])}


def test_type_errors_name_the_field(echo_docs):
    msg = refused(edited(echo_docs["Deployment"], lambda b: b["spec"].update(replicas="2")))
    assert "field spec.replicas must be an integer" in msg
    msg = refused(edited(echo_docs["Deployment"], lambda b: b["spec"].update(replicas=True)))
    assert "field spec.replicas must be an integer" in msg
    msg = refused(edited(echo_docs["Service"], lambda b: b["spec"]["ports"][0].update(protocol="UDP")))
    assert "spec.ports[0].protocol: 'UDP' is not supported" in msg
    msg = refused(edited(doc_of(LOCALITY_DR), lambda b: b["spec"]["trafficPolicy"]["loadBalancer"]["localityLbSetting"].update(enabled="yes")))
    assert "localityLbSetting.enabled must be true or false" in msg


def test_unknown_container_field_refused(echo_docs):
    def edit(b):
        b["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1"}}

    msg = refused(edited(echo_docs["Deployment"], edit))
    assert "field spec.template.spec.containers[0].resources is not supported" in msg


def test_deployment_semantics(echo_docs):
    deploy = echo_docs["Deployment"]

    def two_containers(b):
        c = b["spec"]["template"]["spec"]["containers"]
        c.append(dict(c[0], name="second"))

    assert "exactly one container per pod, got 2" in refused(edited(deploy, two_containers))
    msg = refused(edited(deploy, lambda b: b["spec"]["selector"]["matchLabels"].update(app="other")))
    assert "matchLabels does not match the pod template labels" in msg


# --------------------------------------------------------------------------- Store


def test_namespace_must_exist():
    store = Store()
    store.apply(docs_of("apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n"))
    before = dict(store.objects)
    [pa] = docs_of(STRICT_PA)  # namespace echo was never created
    with pytest.raises(ManifestError) as exc:
        store.check_apply([pa])
    assert 'namespace "echo" not found' in str(exc.value) and str(exc.value).startswith(pa.ref)
    with pytest.raises(ManifestError):
        store.apply([pa])
    assert store.objects == before


def test_namespace_in_same_batch_must_come_first():
    ns = doc_of("apiVersion: v1\nkind: Namespace\nmetadata: {name: echo}\n")
    pa = doc_of(STRICT_PA)
    with pytest.raises(ManifestError, match='namespace "echo" not found'):
        Store().check_apply([pa, ns])
    store = Store()
    store.apply([ns, pa])
    assert set(store.objects) == {Key("Namespace", "", "echo"), Key("PeerAuthentication", "echo", "default")}


def test_bad_batch_changes_nothing():
    store = Store()
    ns = doc_of("apiVersion: v1\nkind: Namespace\nmetadata: {name: echo}\n")
    bad_dr = edited(doc_of(LOCALITY_DR), lambda b: b["spec"]["trafficPolicy"]["tls"].update(mode="SIMPLE"))
    with pytest.raises(ManifestError, match="SIMPLE"):
        store.apply([ns, bad_dr])
    assert store.objects == {}  # not even the valid Namespace that came first


def test_default_namespace_and_reapply_replaces():
    store = Store()
    pa = edited(doc_of(STRICT_PA), lambda b: b["metadata"].pop("namespace"))
    store.apply([pa])
    assert list(store.objects) == [Key("PeerAuthentication", "default", "default")]
    store.apply([edited(pa, lambda b: b["spec"]["mtls"].update(mode="PERMISSIVE"))])
    [(key, body)] = store.of_kind("PeerAuthentication")
    assert body["spec"]["mtls"]["mode"] == "PERMISSIVE"


def test_deleting_a_namespace_removes_its_objects():
    store = Store()
    echo = install.documents(ROOT, TOPO, "eu", ["workloads/echo.yaml"])
    sleep = install.documents(ROOT, TOPO, "eu", ["workloads/sleep.yaml"])
    store.apply(echo + sleep + docs_of(STRICT_PA))
    assert any(k.namespace == "echo" for k in store.objects)
    [echo_ns] = [d for d in echo if d.kind == "Namespace"]
    store.delete([echo_ns])
    assert not any(k.namespace == "echo" or k == Key("Namespace", "", "echo") for k in store.objects)
    # the other namespace is untouched
    assert {Store.key(d) for d in sleep} == set(store.objects)
    assert store.namespace_labels("echo") == {}
    assert store.namespace_labels("sleep") == {"istio-injection": "enabled"}
    store.delete([echo_ns])  # deleting twice is harmless


# --------------------------------------------------------------------------- parse_duration


@pytest.mark.parametrize(
    "text, seconds",
    [("250ms", 0.25), ("1s", 1.0), ("1.5s", 1.5), ("1m", 60.0), ("2h", 7200.0), ("0s", 0.0), (" 10s ", 10.0)],
)
def test_parse_duration(text, seconds):
    assert math.isclose(parse_duration(text), seconds)


@pytest.mark.parametrize("text", ["5 seconds", "", "5", "-1s", "1d", "s", "1.s", "ms", 5, None])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_yaml_durations_as_written_in_manifests():
    # what YAML hands over: "1m" stays a string, a bare 30 becomes an int and is refused
    body = yaml.safe_load("a: 1m\nb: 30\n")
    assert parse_duration(body["a"]) == 60.0
    with pytest.raises(ValueError):
        parse_duration(body["b"])
