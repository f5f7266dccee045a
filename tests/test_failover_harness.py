"""The failover harness (fixtures/failover.py) against a fake mesh: markers, skips, running alone,
infrastructure errors, figures in the report file, the terminal and Allure, under pytest -n 2.

The fake mesh serves every request from "us" until a fault is injected and from "eu" while it
holds; while a fault named ``never-ejected`` holds, the US endpoint answers 503 instead (a
mesh without outlier detection); a fault named ``never-lands`` reports AllInjected false.
Loads are synthesized from the faults' moments, so one run of a small suite takes seconds
and judges only the harness.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

CONFTEST = '''
import json, os, threading, time
from pathlib import Path

import pytest

from eastwest.mesh import Cluster, FaultStatus, LoadSample, Mesh, MeshConfig, ProbeResult
from eastwest.support.echo import EchoResponse
from eastwest.support.topology import load_topology

LOG = Path(os.environ["FAKE_LOG"])


class FakeCluster(Cluster):
    def __init__(self, mesh, name):
        super().__init__(mesh.topology.cluster(name), mesh.topology)
        self.mesh = mesh
        self.loads = {}

    def serving(self, at):
        held = [name for name, start, end in self.mesh.faults_held if start <= at < end]
        if not held:
            return 200, "us"
        return (503, None) if held[0] == "never-ejected" else (200, "eu")

    def _mesh_config(self): return MeshConfig("m", "t", self.network, self.name)
    def gateway_address(self): return None
    def apply(self, documents): pass
    def delete(self, documents): pass
    def pod_ips(self, workload): return []
    def _proxy_endpoints(self, workload, upstream): return []
    def proxy_config_dump(self, workload): return {}
    def _probe(self, client, address, port, *, send, timeout): return ProbeResult(True)

    def _call(self, client, url, *, count, headers, timeout):
        status, cluster = self.serving(time.monotonic())
        body = json.dumps({"cluster": cluster}) if cluster else "no healthy upstream"
        return [EchoResponse.from_http(url=url, status=status, headers={}, body=body, latency_s=0.001) for _ in range(count)]

    def _inject(self, document):
        if document.name == "never-lands":
            return FaultStatus(document.kind, document.name, True, False, False, ("echo/echo-us-0: Not Injected",))
        self.mesh.faults_held.append([document.name, time.monotonic(), float("inf")])
        with LOG.open("a") as f:
            f.write(json.dumps({"event": "inject", "pid": os.getpid(), "t": time.time()}) + "\\n")
        return FaultStatus(document.kind, document.name, True, True, False, ("echo/echo-us-0: Injected",))

    def _recover(self, document):
        if self.mesh.faults_held and self.mesh.faults_held[-1][2] == float("inf"):
            self.mesh.faults_held[-1][2] = time.monotonic()
        with LOG.open("a") as f:
            f.write(json.dumps({"event": "recover", "pid": os.getpid(), "t": time.time()}) + "\\n")
        return FaultStatus(document.kind, document.name, True, False, True)

    def _start_load(self, client, url, *, rate, timeout, limit):
        handle = f"load-{len(self.loads)}"
        self.loads[handle] = (time.monotonic(), rate)
        return handle

    def _stop_load(self, handle):
        t0, rate = self.loads.pop(handle)
        samples, i = [], 0
        while t0 + i / rate < time.monotonic():
            status, cluster = self.serving(t0 + i / rate)
            samples.append(LoadSample(i / rate, 0.002, status, cluster, None if cluster else "-"))
            i += 1
        return samples


class FakeMesh(Mesh):
    backend = "fake"
    features = frozenset({"multi-network", "locality-lb"})
    faults = frozenset({"NetworkChaos/partition"})
    timeouts = None

    def __init__(self):
        self.topology = load_topology(Path(os.environ["FAKE_MANIFESTS"]) / "topology.yaml")
        self.faults_held = []
        self._clusters = {n: FakeCluster(self, n) for n in self.topology.names}

    @property
    def identity(self): return "fake-" + os.environ["FAKE_ID"]

    @property
    def clusters(self): return self._clusters

    def close(self): pass


@pytest.fixture(scope="session")
def mesh():
    return FakeMesh()


@pytest.fixture(autouse=True)
def _log_test(request):
    with LOG.open("a") as f:
        f.write(json.dumps({"event": "start", "test": request.node.name, "pid": os.getpid(), "t": time.time()}) + "\\n")
    yield
    with LOG.open("a") as f:
        f.write(json.dumps({"event": "end", "test": request.node.name, "pid": os.getpid(), "t": time.time()}) + "\\n")
'''

TESTS = '''
import time

import pytest

from eastwest.support.expectations import fails_over
from eastwest.workloads import ECHO_URL, SLEEP

pytestmark = [pytest.mark.extended, pytest.mark.features("multi-network")]


@pytest.mark.faults("NetworkChaos/partition")
@pytest.mark.parametrize("manifest", ["echo-partition", "echo-partition-again", "never-lands", "never-ejected"])
def test_partition(us, chaos, failover_bounds, manifest):
    with chaos.load(us, SLEEP, ECHO_URL, target="eu") as load:
        chaos.steady()
        with chaos.fault(us, manifest + ".yaml"):
            chaos.hold()
        chaos.steady_state(load)
    chaos.expect(load, fails_over(failover_bounds, to="eu", answers_5xx=False))


@pytest.mark.faults("PodChaos/pod-kill")
def test_needs_a_fault_the_backend_lacks(us, chaos):
    raise AssertionError("never runs")


@pytest.mark.parametrize("n", range(4))
def test_plain(us, n):
    time.sleep(0.3)
'''

FAULT = """
apiVersion: chaos-mesh.org/v1alpha1
kind: NetworkChaos
metadata: {name: NAME, namespace: echo}
spec: {action: partition, mode: all, selector: {namespaces: [echo]}, direction: both, duration: 60s}
"""


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run of the fake suite under pytest -n 2: its output, report file, Allure results and event log."""
    tmp = tmp_path_factory.mktemp("fake-failover")
    manifests = tmp / "manifests"
    (manifests / "chaos").mkdir(parents=True)
    (manifests / "topology.yaml").write_text((ROOT / "manifests" / "topology.yaml").read_text())
    for name in ("echo-partition", "echo-partition-again", "never-lands", "never-ejected"):
        (manifests / "chaos" / f"{name}.yaml").write_text(FAULT.replace("NAME", name))
    (tmp / "conftest.py").write_text(CONFTEST)
    (tmp / "test_fake.py").write_text(TESTS)
    env = dict(os.environ, FAKE_LOG=str(tmp / "events.jsonl"), FAKE_MANIFESTS=str(manifests), FAKE_ID=tmp.name)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "-rA", "--manifests", str(manifests),
         "--failover-report", str(tmp / "failover.json"), "--alluredir", str(tmp / "allure"),
         "--failover-bound", "hold=0.6", "--failover-bound", "steady=0.3", "test_fake.py"],
        cwd=tmp, capture_output=True, text=True, timeout=300, env=env,
    )
    report = json.loads((tmp / "failover.json").read_text()) if (tmp / "failover.json").exists() else None
    events = [json.loads(line) for line in (tmp / "events.jsonl").read_text().splitlines()]
    allure = [json.loads(p.read_text()) for p in (tmp / "allure").glob("*-result.json")]
    return {"result": result, "out": result.stdout, "report": report, "events": events, "allure": allure}


def _manifest(result: dict[str, Any]) -> str | None:
    """The ``manifest`` parameter of an Allure result (its test's parametrization)."""
    return next((p["value"] for p in result.get("parameters", []) if p["name"] == "manifest"), None)


def test_the_fake_suite_ends_with_one_error_and_one_failure(fake_run: dict[str, Any]) -> None:
    out = fake_run["out"]
    assert fake_run["result"].returncode == 3, out[-3000:]  # a fault that never landed makes the run broken (exit 3)
    assert "1 failed, 6 passed, 1 skipped, 1 error" in out, out[-3000:]


def test_a_failover_test_reports_its_figures_everywhere(fake_run: dict[str, Any]) -> None:
    out, report = fake_run["out"], fake_run["report"]
    assert "failover figures" in out and "time to failover to eu: 0.0" in out
    entries = {e["test"].split("::")[-1]: e for e in report["tests"]}
    assert set(entries) == {"test_partition[echo-partition]", "test_partition[echo-partition-again]", "test_partition[never-ejected]"}
    entry = entries["test_partition[echo-partition]"]
    assert entry["outcome"] == "passed"
    [load] = entry["loads"]
    assert load["fault"] == {"names": ["NetworkChaos/partition"], "manifest": "chaos/echo-partition.yaml", "cluster": "us",
                             "status": "NetworkChaos/echo-partition: injected; echo/echo-us-0: Injected"}
    figures = load["figures"]
    assert figures["time_to_failover_s"] < 0.05 and figures["errors_during"] == 0 and figures["before"]["served"]["us"] >= 10
    assert figures["time_to_failback_s"] is not None and load["violations"] == []
    assert report["bounds"]["hold"] == 0.6 and report["bounds"]["failover_within"] == 3.0
    [result] = [r for r in fake_run["allure"] if _manifest(r) == "echo-partition"]
    attachments = [a for a in result.get("attachments", [])] + [a for s in result.get("steps", []) for a in s.get("attachments", [])]
    assert any(a["name"].startswith("timeline us/sleep/sleep") and a["type"] == "image/png" for a in attachments), attachments
    assert any(a["name"].startswith("raw requests us/sleep/sleep") for a in attachments), attachments


def test_a_backend_without_the_fault_skips_naming_it(fake_run: dict[str, Any]) -> None:
    assert "mesh backend 'fake' cannot inject 'PodChaos/pod-kill'" in fake_run["out"]


def test_a_fault_that_never_lands_is_an_infrastructure_error(fake_run: dict[str, Any]) -> None:
    out = fake_run["out"]
    assert "ERROR (infrastructure: the fault never landed) test_fake.py::test_partition[never-lands]" in out, out
    assert "FaultNotInjected: the fault never landed: NetworkChaos/never-lands: not injected; echo/echo-us-0: Not Injected" in out
    [result] = [r for r in fake_run["allure"] if _manifest(r) == "never-lands"]
    assert result["status"] == "broken"


def test_a_mesh_that_never_ejects_fails_naming_the_cause(fake_run: dict[str, Any]) -> None:
    assert "no failover: the local endpoint was never ejected (is outlierDetection set?)" in fake_run["out"]
    [entry] = [e for e in fake_run["report"]["tests"] if e["test"].endswith("[never-ejected]")]
    assert entry["outcome"] == "failed" and entry["loads"][0]["violations"][0].startswith("no failover")


def test_fault_tests_run_alone_while_both_workers_run_tests(fake_run: dict[str, Any]) -> None:
    events = fake_run["events"]
    spans: dict[str, dict[str, float]] = {}
    for e in events:
        if e["event"] in ("start", "end"):
            spans.setdefault(e["test"], {})[e["event"]] = e["t"]
    assert len({e["pid"] for e in events}) == 2, "both workers ran tests"
    assert [e["event"] for e in events if e["event"] in ("inject", "recover")].count("recover") == 4  # never-lands too
    for name in [n for n in spans if "partition" in n]:
        for other, b in spans.items():
            a = spans[name]
            assert other == name or a["end"] <= b["start"] or b["end"] <= a["start"], f"{name} overlapped {other}: {a} {b}"


def test_a_misspelt_fault_stops_the_run_at_collection(tmp_path: Path) -> None:
    (tmp_path / "test_typo.py").write_text(
        "import pytest\n\n@pytest.mark.faults('NetworkChaos/partiton')\ndef test_typo():\n    pass\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--manifests", str(ROOT / "manifests"),
                             "test_typo.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "NetworkChaos has no action 'partiton'; its actions: netem, delay, loss" in result.stderr, result.stderr

