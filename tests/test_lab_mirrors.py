"""The lab mirrors istiod or refuses by name: ServiceEntry endpoint weights, DNS resolution, the
network label on istio-system, and gateways that reach only their own cluster's pods."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from eastwest.backends.lab.mesh import LabMesh
from eastwest.support import checks, install, stats
from eastwest.support.errors import ManifestError
from eastwest.support.manifest import Document
from eastwest.workloads import EASTWEST_GATEWAY, ECHO, SLEEP
from tests.labs import MANIFESTS, running_lab

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="the lab needs unshare (util-linux)")


@pytest.fixture(scope="module")
def lab() -> Iterator[LabMesh]:
    with running_lab() as mesh:
        yield mesh


def doc(body: dict[str, Any]) -> Document:
    return Document(body, f"test:{body['kind']}/{body['metadata']['name']}")


def service_entry(name: str, endpoints: list[dict[str, Any]], resolution: str = "STATIC") -> Document:
    return doc({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": {"name": name, "namespace": "echo"},
                "spec": {"hosts": [f"{name}.mesh.local"], "location": "MESH_EXTERNAL", "resolution": resolution,
                         "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}], "endpoints": endpoints}})


def sni_rule(name: str) -> Document:
    return doc({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": name, "namespace": "echo"},
                "spec": {"host": f"{name}.mesh.local",
                         "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL", "sni": "outbound_.80_._.echo.echo.svc.cluster.local"}}}})


def test_a_gateway_reaches_its_own_pods_but_not_the_other_clusters(lab: LabMesh) -> None:
    """A real east-west gateway has no route to another network's pods; cross-cluster traffic still returns
    because the sending node source-NATs it."""
    us, eu = lab.cluster("us"), lab.cluster("eu")
    own = eu.probe(EASTWEST_GATEWAY, eu.pod_ips(ECHO)[0], 8080)
    assert own.connected, f"control: the EU gateway cannot reach an EU pod either ({own.summary()})"
    other = eu.probe(EASTWEST_GATEWAY, us.pod_ips(ECHO)[0], 8080, timeout=1)
    assert not other.connected, f"the EU gateway reached US pod {us.pod_ips(ECHO)[0]} directly: {other.summary()}"
    served = {r.cluster for r in us.call(SLEEP, "http://echo.echo.svc.cluster.local/", count=6) if r.ok}
    assert served == {"us", "eu"}, f"cross-cluster traffic broke without gateway routes (masquerade missing?): served by {served}"


def test_service_entry_endpoint_weights_steer_traffic(lab: LabMesh) -> None:
    """Weights 9:1 on two gateway endpoints send about 90 % through the first, as Envoy's load_balancing_weight does.
    Ignored weights would split 50/50, which the exact binomial band fails with probability >= 0.9999."""
    us, eu = lab.cluster("us"), lab.cluster("eu")
    endpoints = [{"address": eu.gateway_address(), "ports": {"http": 15443}, "weight": 9},
                 {"address": us.gateway_address(), "ports": {"http": 15443}, "weight": 1}]
    us.apply([service_entry("weighted", endpoints), sni_rule("weighted")])
    try:
        seen = {(e.address, e.weight) for e in us.proxy_endpoints(SLEEP, "outbound|80||weighted.mesh.local")}
        assert seen == {(eu.gateway_address(), 9), (us.gateway_address(), 1)}, f"endpoint weights in the client: {seen}"
        plan = stats.plan_split(0.9, (0.5,), what="served in eu")
        batch = us.call(SLEEP, "http://weighted.mesh.local/", count=plan.n)
        served_eu = sum(1 for r in batch if r.ok and r.cluster == "eu")
        assert all(r.ok for r in batch), [r.summary() for r in batch if not r.ok][:3]
        assert plan.accepts(served_eu), f"{served_eu}/{plan.n} served in eu; {plan.describe()}"
    finally:
        us.delete([service_entry("weighted", endpoints), sni_rule("weighted")])


def test_dns_resolution_resolves_gateway_names_and_refuses_others_by_name(lab: LabMesh) -> None:
    us, eu = lab.cluster("us"), lab.cluster("eu")
    known = eu.spec.gateway_hostname
    entry = service_entry("by-name", [{"address": known, "ports": {"http": 15443}}], resolution="DNS")
    us.apply([entry])
    try:
        seen = [(e.address, e.port) for e in us.proxy_endpoints(SLEEP, "outbound|80||by-name.mesh.local")]
        assert seen == [(eu.gateway_address(), 15443)], f"{known} should resolve to the EU gateway; endpoints {seen}"
    finally:
        us.delete([entry])
    with pytest.raises(ManifestError, match="'echo.example.com' is a name the lab cannot resolve"):
        us.apply([service_entry("unknown", [{"address": "echo.example.com"}], resolution="DNS")])
    with pytest.raises(ManifestError, match="is a name; with resolution STATIC endpoints must be IP addresses"):
        us.apply([service_entry("static-name", [{"address": known}])])
    with pytest.raises(ManifestError, match="spec.resolution NONE"):
        us.apply([service_entry("passthrough", [{"address": "10.0.0.1"}], resolution="NONE")])


def test_the_network_label_on_istio_system_decides_the_clusters_network(lab: LabMesh) -> None:
    """istiod reads topology.istio.io/network on istio-system as the network of the cluster's endpoints: label the US
    namespace eu-net and the US client sees its own echo as remote, behind the eu-net gateway (istio/istio#39712)."""
    us, eu = lab.cluster("us"), lab.cluster("eu")
    namespace = doc({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": "istio-system", "labels": {"topology.istio.io/network": us.network}}})
    wrong = doc({**namespace.body, "metadata": {"name": "istio-system", "labels": {"topology.istio.io/network": eu.network}}})
    us.apply([wrong])
    try:
        seen = {(e.address, e.port) for e in us.proxy_endpoints(SLEEP, "outbound|80||echo.echo.svc.cluster.local")}
        assert seen == {(eu.gateway_address(), 15443)}, f"with the wrong label the US echo must sit behind the EU gateway; {seen}"
        batch = eu.call(SLEEP, "http://echo.echo.svc.cluster.local/", count=8, timeout=1)
        assert any(not r.ok for r in batch), "the EU client tried US pod IPs as local and should fail some requests"
    finally:
        us.apply([namespace])
    seen = {(e.address, e.port) for e in us.proxy_endpoints(SLEEP, "outbound|80||echo.echo.svc.cluster.local")}
    assert (eu.gateway_address(), 15443) in seen and set(us.pod_ips(ECHO)) <= {a for a, _ in seen}, seen



def test_retries_no_longer_mask_a_broken_remote_path() -> None:
    """Every EU attempt fails (two roots: the client cannot chain the EU certificate); the client retries on its
    local endpoint and gets 200 each time. The checks count those answers as failures of the remote path."""
    mesh = LabMesh(MANIFESTS, breaks=frozenset({"split-roots"}))
    try:
        mesh.install()
        batch = mesh.cluster("us").call(SLEEP, "http://echo.echo.svc.cluster.local/", count=10)
        assert all(r.ok and r.cluster == "us" for r in batch), "control: retries turn every EU attempt into a US 200"
        assert any(r.retried for r in batch), [r.summary() for r in batch]
        assert checks.first_attempt()(batch) is not None and checks.served_from("us")(batch) is not None
        assert "answered only after 2 upstream attempts" in (checks.likely_cause(batch) or "")
    finally:
        mesh.close()


def test_an_answer_from_the_wrong_service_is_caught_and_named() -> None:
    """A gateway sending every SNI to one service (echo): the EU-only service's callers reach echo, whose identity
    the client refuses; served_by fails and the cause names the SAN the server presented."""
    mesh = LabMesh(MANIFESTS, breaks=frozenset({"gateway-one-service"}))
    try:
        mesh.install()
        for name in mesh.topology.names:
            mesh.cluster(name).apply(install.documents(MANIFESTS, mesh.topology, name, ["suites/security/echo-in-eu-only.yaml"]))
        batch = mesh.cluster("us").call(SLEEP, "http://echo-eu-only.echo.svc.cluster.local/", count=4)
        assert checks.served_by("echo-eu-only", "eu")(batch) is not None
        cause = checks.likely_cause(batch) or ""
        assert "SAN check: the server presented ['spiffe://corp.local/ns/echo/sa/echo']" in cause, cause
    finally:
        mesh.close()
