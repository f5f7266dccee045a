"""The exec scripts of the kube backends, run for real by the shells the workload images have.

Each script runs under this machine's ``sh`` and, where installed, ``busybox sh`` (what
curlimages/curl, an Alpine image, has), against an echo server this test starts on loopback.
Then the parsers: curl exit codes to the phrases the checks know, Envoy's clusters JSON to
endpoints, and which container a call and a probe run in.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eastwest.apps import echo
from eastwest.backends.kube import traffic
from eastwest.backends.kube.mesh import KubeCluster
from eastwest.settings import Timeouts
from eastwest.support import envoy
from eastwest.support.topology import load_topology
from eastwest.workloads import SLEEP
from tests.kube_fakes import FakeApi, World

SHELLS = [pytest.param(["sh", "-c"], id="sh")]
if shutil.which("busybox"):
    SHELLS.append(pytest.param(["busybox", "sh", "-c"], id="busybox"))
pytestmark = pytest.mark.skipif(not shutil.which("curl"), reason="curl is not installed here (apt-get install curl)")
TOPOLOGY = load_topology(Path(__file__).resolve().parents[1] / "manifests" / "topology.yaml")


@pytest.fixture(scope="module")
def server(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch_module.setenv("CLUSTER", "us")
    monkeypatch_module.setenv("POD_NAME", "echo-us-0")
    srv = echo.serve("127.0.0.1", 0)
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nobody listens once it is closed


def run(shell: list[str], script: str) -> str:
    return subprocess.run([*shell, script], capture_output=True, text=True, timeout=60, check=False).stdout


@pytest.mark.parametrize("shell", SHELLS)
def test_call_loop_gives_one_typed_response_per_request(shell: list[str], server: str) -> None:
    url = f"http://{server}/?x=1"
    responses = traffic.parse_calls(run(shell, traffic.call_script(url, count=3, headers={"X-Test": "a b; c"}, timeout=2)), url)
    assert [r.status for r in responses] == [200, 200, 200]
    assert {r.cluster for r in responses} == {"us"} and responses[0].pod == "echo-us-0"
    assert responses[0].request_headers["X-Test"] == "a b; c"
    assert responses[0].response_headers["Content-Type"] == "application/json"
    assert 0 < responses[0].latency_s < 2


@pytest.mark.parametrize("shell", SHELLS)
def test_call_to_a_closed_port_is_refused_and_a_status_is_kept(shell: list[str], server: str) -> None:
    refused = traffic.parse_calls(run(shell, traffic.call_script(f"http://127.0.0.1:{closed_port()}/", count=2, headers={}, timeout=2)), "u")
    assert [(r.status, r.error) for r in refused] == [(None, "connection refused")] * 2
    failing = traffic.parse_calls(run(shell, traffic.call_script(f"http://{server}/?status=503", count=1, headers={}, timeout=2)), "u")
    assert failing[0].status == 503 and not failing[0].ok


@pytest.mark.parametrize("shell", SHELLS)
def test_a_slow_answer_times_out(shell: list[str], server: str) -> None:
    slow = traffic.parse_calls(run(shell, traffic.call_script(f"http://{server}/?delay=3", count=1, headers={}, timeout=0.5)), "u")
    assert slow[0].status is None and slow[0].error == "timed out" and slow[0].latency_s < 2


@pytest.mark.parametrize("shell", SHELLS)
def test_probe_connects_refuses_and_reads_a_reply(shell: list[str], server: str) -> None:
    host, port = server.split(":")
    t0 = time.monotonic()
    connected = traffic.parse_probe(run(shell, traffic.probe_script(host, int(port), send=b"", timeout=2)))
    assert connected.connected and connected.reply == b"" and time.monotonic() - t0 < 1.5, connected  # returns once connected
    refused = traffic.parse_probe(run(shell, traffic.probe_script(host, closed_port(), send=b"", timeout=2)))
    assert (refused.connected, refused.error) == (False, "connection refused")
    answer = traffic.parse_probe(run(shell, traffic.probe_script(host, int(port), send=b"GET /healthz HTTP/1.0\r\n\r\n", timeout=2)))
    assert answer.connected and answer.reply.startswith(b"HTTP/1.1 200") and answer.closed_by_peer, answer


@pytest.mark.parametrize("shell", SHELLS)
def test_steady_load_is_recorded_per_request(shell: list[str], server: str, tmp_path: Path) -> None:
    folder = str(tmp_path / "load")
    assert "started" in run(shell, traffic.load_start_script(folder, f"http://{server}/", rate=20, timeout=2, limit=10))
    time.sleep(1.0)
    samples = traffic.parse_load(run(shell, traffic.load_stop_script(folder, timeout=2)))
    assert 10 <= len(samples) <= 40, len(samples)  # about 20 per second; bounded by rate * limit
    assert all(s.ok and s.cluster == "us" for s in samples)
    assert samples == sorted(samples, key=lambda s: s.t) and samples[-1].t < 3
    assert not Path(folder).exists()


@pytest.mark.parametrize("rc, stderr, phrase", [
    (7, "connect to 10.20.0.5 port 8080 failed: No route to host", "no route to host"),
    (7, "Failed to connect: Network is unreachable", "network is unreachable"),
    (7, "Failed to connect to x port 1 after 0 ms: Could not connect to server", "could not connect"),
    (28, "Operation timed out after 2001 milliseconds", "timed out"),
    (52, "Empty reply from server", "connection closed without a response"),
    (56, "Recv failure: Connection reset by peer", "connection reset by peer"),
    (35, "OpenSSL SSL_connect: ...", "TLS handshake failed"),
    (47, "Maximum (50) redirects followed", "curl exit 47: Maximum (50) redirects followed"),
])
def test_curl_exit_codes(rc: int, stderr: str, phrase: str) -> None:
    assert traffic.curl_error(rc, stderr) == phrase


def test_endpoints_from_envoy_clusters_json() -> None:
    clusters = {"cluster_statuses": [
        {"name": "outbound|80||echo.echo.svc.cluster.local", "host_statuses": [
            {"address": {"socket_address": {"address": "10.10.0.7", "port_value": 8080}}, "locality": {"region": "us", "zone": "us-a"},
             "health_status": {"eds_health_status": "HEALTHY"}, "weight": 1},
            {"address": {"socket_address": {"address": "172.31.255.20", "port_value": 15443}}, "locality": {"region": "eu", "zone": "eu-a"},
             "priority": 1, "health_status": {"eds_health_status": "HEALTHY", "failed_outlier_check": True}, "weight": 1}]},
        {"name": "other", "host_statuses": [{"address": {"socket_address": {"address": "1.1.1.1", "port_value": 1}}}]}]}
    found = envoy.endpoints(clusters, "outbound|80||echo.echo.svc.cluster.local")
    assert [(e.address, e.port, e.locality, e.priority, e.healthy) for e in found] == [
        ("10.10.0.7", 8080, "us/us-a", 0, True), ("172.31.255.20", 15443, "eu/eu-a", 1, False)]


def test_calls_run_in_the_app_container_and_probes_in_the_sidecar() -> None:
    """Probes bypass the sidecar (UID 1337 is not redirected, pitfall D11); calls go through it."""
    world = World(TOPOLOGY)
    api = FakeApi(world, "us", log=False)
    api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sleep", "labels": {"istio-injection": "enabled"}}})
    api.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "sleep", "namespace": "sleep"},
               "spec": {"selector": {"matchLabels": {"app": "sleep"}},
                        "template": {"metadata": {"labels": {"app": "sleep"}}, "spec": {"containers": [{"name": "sleep"}]}}}})
    cluster = KubeCluster(TOPOLOGY, "us", api, Timeouts())
    cluster.call(SLEEP, "http://echo.echo.svc.cluster.local/", count=2)
    with pytest.raises(ValueError, match="no probe result"):
        cluster.probe(SLEEP, "172.31.255.20", 15443)  # the stand-in prints nothing: no result is an error, never a pass
    assert [(pod, container, command[0]) for pod, container, command in api.execs] == [("sleep-0", "sleep", "sh"),
                                                                                     ("sleep-0", "istio-proxy", "sh")]
    assert "curl -sSv" in api.execs[0][2][2] and "telnet://172.31.255.20:15443" in api.execs[1][2][2]
