"""The lab end to end: real namespaces, real Envoy, real mTLS across the east-west hop."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from eastwest.backends.lab.mesh import LabMesh
from eastwest.settings import Timeouts
from eastwest.support import install
from eastwest.support.errors import ConfigError, ManifestError
from eastwest.support.manifest import parse
from eastwest.workloads import ECHO, ECHO_EU_ONLY_URL, ECHO_URL, SLEEP
from tests.labs import MANIFESTS, running_lab

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="the lab needs unshare (util-linux)")


@pytest.fixture(scope="module")
def lab() -> Iterator[LabMesh]:
    with running_lab() as mesh:
        yield mesh


def test_us_client_reaches_eu_echo_through_the_gateways_with_its_spiffe_id(lab: LabMesh) -> None:
    us, eu = lab.cluster("us"), lab.cluster("eu")
    docs = install.documents(MANIFESTS, lab.topology, "us", ["suites/security/echo-in-eu-only.yaml"])
    eu_docs = install.documents(MANIFESTS, lab.topology, "eu", ["suites/security/echo-in-eu-only.yaml"])
    us.apply(docs)
    eu.apply(eu_docs)
    try:
        responses = us.call(SLEEP, ECHO_EU_ONLY_URL, count=4)
        for r in responses:
            assert r.status == 200, r.raw()
            assert r.cluster == "eu", r.raw()
            assert str(r.peer_identity) == "spiffe://corp.local/ns/sleep/sa/sleep", r.raw()
            assert str(r.server_identity) == "spiffe://corp.local/ns/echo/sa/echo-eu-only", r.raw()
            # the US sidecar sent it to the EU gateway's external address, not to a pod
            assert r.response_headers.get("x-eastwest-upstream-host") == f"{eu.gateway_address()}:15443", r.raw()
    finally:
        us.delete(docs)
        eu.delete(eu_docs)


def test_eu_pod_ip_is_unreachable_from_a_us_pod(lab: LabMesh) -> None:
    us, eu = lab.cluster("us"), lab.cluster("eu")
    eu_ip = eu.pod_ips(ECHO)[0]
    assert us.probe(SLEEP, us.pod_ips(ECHO)[0], 8080).connected  # control: the probe can connect
    result = us.probe(SLEEP, eu_ip, 8080)
    assert not result.connected and result.error == "network is unreachable", result.summary()


def test_applied_config_reaches_running_proxies_without_restart(lab: LabMesh) -> None:
    us = lab.cluster("us")
    strict = install.documents(MANIFESTS, lab.topology, "us", ["suites/security/client-without-sidecar.yaml", "suites/security/peer-authentication-strict.yaml"])
    legacy_only = [d for d in strict if d.kind != "PeerAuthentication"]
    us.apply(legacy_only)
    pid_before = _envoy_pids(lab)
    try:
        assert all(r.ok for r in us.call("legacy/sleep", ECHO_URL, count=3))
        us.apply(strict)
        refused = us.call("legacy/sleep", ECHO_URL, count=3)
        assert not any(r.ok for r in refused), [r.summary() for r in refused]
        us.delete([d for d in strict if d.kind == "PeerAuthentication"])
        assert all(r.ok for r in us.call("legacy/sleep", ECHO_URL, count=3))
        assert _envoy_pids(lab) == pid_before, "proxies were restarted (or added) to take the change"
    finally:
        us.delete(strict)


def _envoy_pids(lab: LabMesh) -> set[str]:
    status = lab.status()
    return {f"{c}/{p.namespace}/{p.name}={p.envoy_pid}" for c, v in status.clusters.items() for p in v.pods if p.envoy_pid}


def test_calls_default_to_the_runs_request_time_limit(lab: LabMesh) -> None:
    """``--timeout request=S`` bounds every call that names no timeout of its own."""
    us = lab.cluster("us")
    saved = us.timeouts
    us.timeouts = Timeouts(request=0.3)
    try:
        (slow,) = us.call(SLEEP, ECHO_URL + "?delay=1", count=1)
        assert slow.status is None and slow.error == "timed out" and slow.latency_s < 0.9, slow.summary()
        (patient,) = us.call(SLEEP, ECHO_URL + "?delay=1", count=1, timeout=3.0)
        assert patient.ok, patient.summary()
    finally:
        us.timeouts = saved


def test_unsupported_field_is_refused_by_name_and_changes_nothing(lab: LabMesh) -> None:
    us = lab.cluster("us")
    docs = parse(
        """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: bad, namespace: echo}
spec:
  host: echo.echo.svc.cluster.local
  trafficPolicy:
    portLevelSettings: [{port: {number: 80}}]
""",
        "inline.yaml",
    )
    with pytest.raises(ManifestError, match=r"spec\.trafficPolicy\.portLevelSettings is not supported by the lab"):
        us.apply(docs)
    assert all(r.ok for r in us.call(SLEEP, ECHO_URL, count=2))


def test_port_taken_by_the_sidecar_is_refused(lab: LabMesh) -> None:
    docs = parse(
        """
apiVersion: apps/v1
kind: Deployment
metadata: {name: clash, namespace: echo}
spec:
  selector: {matchLabels: {app: clash}}
  template:
    metadata: {labels: {app: clash}}
    spec:
      containers:
      - {name: echo, image: "eastwest/echo:0.1.0", args: ["--port=15001"], ports: [{containerPort: 15001}]}
""",
        "clash.yaml",
    )
    with pytest.raises(ManifestError, match="containerPort 15001 is taken by the sidecar"):
        lab.cluster("us").apply(docs)


def test_unknown_image_and_missing_namespace_are_refused(lab: LabMesh) -> None:
    nginx = parse(
        """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: echo}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.27"}]
""",
        "web.yaml",
    )
    with pytest.raises(ManifestError, match="image 'nginx:1.27' cannot run in the lab"):
        lab.cluster("us").apply(nginx)
    orphan = parse("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x, namespace: nowhere}\n", "sa.yaml")
    with pytest.raises(ManifestError, match='namespace "nowhere" not found'):
        lab.cluster("eu").apply(orphan)


def test_two_labs_run_side_by_side(lab: LabMesh) -> None:
    other = LabMesh(MANIFESTS)
    try:
        other.install()
        for mesh in (lab, other):
            assert all(r.ok for r in mesh.cluster("eu").call(SLEEP, ECHO_URL, count=2))
        assert other.cluster("eu").gateway_address() == lab.cluster("eu").gateway_address()  # same addresses, no clash
    finally:
        other.close()
    assert all(r.ok for r in lab.cluster("us").call(SLEEP, ECHO_URL, count=2))


def test_a_second_lab_with_the_same_name_is_refused(lab: LabMesh) -> None:
    with pytest.raises(ConfigError, match="already running"):
        LabMesh(MANIFESTS, name=lab.name.replace("\0", ""), attach=False)
