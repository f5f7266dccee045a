"""The reporting modules' parts on their own: categories, the properties file, the attempt table,
the config-dump summary, and the Node 20 polyfill the pinned Allure CLI needs."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from typing import Any

import pytest

from eastwest.backends.kube.api import ExecResult
from eastwest.backends.kube.mesh import KubeCluster, KubeMesh
from eastwest.fixtures.dumps import summarize
from eastwest.fixtures.evidence import Attempt, Convergence
from eastwest.fixtures.identity import _escape
from eastwest.fixtures.outcomes import BACKEND, BRING_UP, FAULT, HARNESS, categorize, sentence
from eastwest.mesh import ProxyEndpoint
from eastwest.settings import Timeouts
from eastwest.support.errors import ConfigError, ConvergenceTimeout, FaultNotInjected, LabError, ManifestError, MeshUnavailable
from eastwest.support.pki import new_root
from eastwest.support.topology import load_topology
from tests.kube_fakes import FakeApi, World
from tests.signoff import ROOT


@pytest.mark.parametrize(("exc", "when", "expected"), [
    (ConvergenceTimeout("US client reaching EU: not converged"), "call", "conformance/security"),
    (AssertionError("expected networks ..."), "call", "conformance/security"),
    (MeshUnavailable("the lab mesh could not be brought up: ..."), "setup", BRING_UP.id),
    (FaultNotInjected("the fault never landed"), "call", FAULT.id),
    (LabError("a proxy rejected its config"), "call", BACKEND.id),
    (ManifestError("suites/x.yaml: unknown field"), "setup", HARNESS.id),
    (ConfigError("bad option"), "call", HARNESS.id),
    (KeyError("region"), "call", HARNESS.id),
    (AssertionError("cleanup found leftovers"), "teardown", HARNESS.id),
])
def test_each_failure_falls_in_one_category(exc: BaseException, when: str, expected: str) -> None:
    category = categorize(exc, when, "security")
    assert category.id == expected
    assert category.status == ("failed" if expected.startswith("conformance/") else "broken")


def test_a_message_is_the_sentence_without_the_exception_type() -> None:
    assert sentence(ConvergenceTimeout("US client reaching EU: not converged within 30s")) == (
        "US client reaching EU: not converged within 30s")
    assert sentence(KeyError()) == "KeyError with no message"


def test_properties_are_escaped_as_java_reads_them() -> None:
    assert _escape("Control plane", key=True) == "Control\\ plane"
    assert _escape("a=b: c#d", key=False) == "a\\=b\\: c\\#d"
    assert _escape("Result · é", key=False) == "Result \\u00b7 \\u00e9"


def test_identical_attempts_fold_into_one_line_of_the_table() -> None:
    wait = Convergence("echo served in eu", start=100.0)
    for n, verdict in enumerate(["expected eu; observed 10 x 503", "expected eu; observed 10 x 503", None, None, None], 1):
        wait.attempts.append(Attempt(n, 100.0 + n / 10, verdict=verdict, lines=["Request: 10 x GET echo"]))
    lines = wait.table().splitlines()
    assert lines[0].startswith("5 attempts in ") and lines[0].endswith(": echo served in eu")
    assert lines[2].startswith("#1-#2 (2 attempts)") and "not yet: expected eu; observed 10 x 503" in lines[2]
    assert lines[4].startswith("#3-#5 (3 attempts)") and lines[4].rstrip().endswith("passed")


def test_a_config_dump_summary_names_tls_trusted_ca_and_live_endpoints() -> None:
    root = new_root("split root of us")
    ca = base64.b64encode(root.cacerts()["root-cert.pem"]).decode()
    dump: dict[str, Any] = {"configs": [
        {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "dynamic_active_clusters": [{"cluster": {
            "name": "outbound|80||echo.echo.svc.cluster.local", "type": "EDS",
            "common_lb_config": {"locality_weighted_lb_config": {}},
            "outlier_detection": {"consecutive_5xx": 1, "interval": "1s", "base_ejection_time": "5s"},
            "transport_socket_matches": [
                {"name": "tlsMode-istio", "match": {"tlsMode": "istio"}, "transport_socket": {"typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                    "sni": "outbound_.80_._.echo.echo.svc.cluster.local",
                    "common_tls_context": {"tls_certificate_sds_secret_configs": [{"name": "default"}],
                                           "alpn_protocols": ["istio"],
                                           "combined_validation_context": {
                                               "default_validation_context": {"match_typed_subject_alt_names": [
                                                   {"san_type": "URI", "matcher": {"exact": "spiffe://corp.local/ns/echo/sa/echo"}}]},
                                               "validation_context_sds_secret_config": {"name": "ROOTCA"}}}}}},
                {"name": "tlsMode-disabled", "match": {}, "transport_socket": {"typed_config": {"@type": "RawBuffer"}}},
            ]}}]},
        {"@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump", "dynamic_active_secrets": [
            {"name": "ROOTCA", "secret": {"name": "ROOTCA", "validation_context": {"trusted_ca": {"inline_bytes": ca}}}}]},
        {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump", "dynamic_listeners": [{"active_state": {"listener": {
            "name": "0.0.0.0_15443", "address": {"socket_address": {"address": "0.0.0.0", "port_value": 15443}},
            "filter_chains": [{"filter_chain_match": {"server_names": ["outbound_.80_._.echo.echo.svc.cluster.local"]}}]}}}]},
    ]}
    live = [ProxyEndpoint("172.31.255.20", 15443, "eu/eu-a", 1, False, 2)]
    text = summarize(dump, lambda name: live)
    assert "outbound|80||echo.echo.svc.cluster.local  (EDS; ROUND_ROBIN; locality-weighted; outlier detection: 1 x 5xx" in text
    assert ("endpoints labelled tlsMode=istio: mutual TLS (client certificate), SNI outbound_.80_._.echo.echo.svc.cluster.local, "
            "ALPN istio, trusted CA SDS secret ROOTCA: CN=split root of us") in text
    assert "accepted peer SANs spiffe://corp.local/ns/echo/sa/echo" in text and "other endpoints: plaintext" in text
    assert "172.31.255.20:15443 locality=eu/eu-a priority=1 healthy=False weight=2" in text
    assert "0.0.0.0_15443  0.0.0.0:15443, 1 filter chain(s), SNI outbound_.80_._.echo.echo.svc.cluster.local" in text


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_the_polyfill_gives_node_the_iterator_helpers_allure_uses() -> None:
    script = "const m = new Map([[1, 'a'], [2, 'b']]); console.log(JSON.stringify(m.values().map(v => v + '!').toArray()))"
    done = subprocess.run(["node", "--import", "./reports/node-iterator-helpers.mjs", "-e", script], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == '["a!","b!"]', done.stdout + done.stderr


class _GatewayApi(FakeApi):
    """The stand-in API server, plus the east-west gateway's admin /server_info through pilot-agent."""

    def exec(self, namespace: str, pod: str, container: str, command: list[str], *, timeout: float) -> ExecResult:
        if command == ["pilot-agent", "request", "GET", "server_info"] and container == "istio-proxy":
            return ExecResult(json.dumps({"version": "abc123/1.36.2/Clean/RELEASE/BoringSSL",
                                          "node": {"metadata": {"ISTIO_VERSION": "1.30.3"}}}), "", 0)
        return super().exec(namespace, pod, container, command, timeout=timeout)


def test_the_kube_backends_declare_istio_and_envoy_as_the_gateway_reports_them() -> None:
    topology = load_topology(ROOT / "manifests" / "topology.yaml")
    api = _GatewayApi(World(topology), "us", log=False)
    api.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "istio-eastwestgateway", "namespace": "istio-system"},
               "spec": {"selector": {"matchLabels": {"app": "istio-eastwestgateway"}},
                        "template": {"metadata": {"labels": {"app": "istio-eastwestgateway"}},
                                     "spec": {"containers": [{"name": "istio-proxy"}]}}}})
    mesh = KubeMesh("kind", "kind-eastwest", topology, {"us": KubeCluster(topology, "us", api, Timeouts())}, Timeouts())
    described = mesh.describe()
    assert (described.backend, described.istio_version, described.envoy_version) == ("kind", "1.30.3", "1.36.2")
    assert not described.control_plane_stand_in and described.envoy_build.startswith("abc123/1.36.2/")
