"""The kube backends' preflights: one message naming everything missing, no traceback, nothing made.

The tools preflight is driven with stand-in tool answers; the real one runs on this machine
(no Docker daemon, no kind, no helm) through ``pytest suites/ --mesh kind``. The existing
backend's preflight reads stand-in clusters and names each thing the suites need that is not there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eastwest.backends.kube import tools
from eastwest.backends.kube.commands import Command, Completed
from eastwest.backends.kube.existing import ExistingMesh
from eastwest.settings import Settings
from eastwest.support.errors import BackendUnavailable, ConfigError
from eastwest.support.topology import load_topology
from tests.kube_fakes import FakeApi, World

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"
TOPOLOGY = load_topology(MANIFESTS / "topology.yaml")


class Answers:
    def __init__(self, answers: dict[str, Completed]):
        self.answers = answers

    def run(self, cmd: Command) -> Completed:
        return self.answers[cmd.argv[0] + (" info" if cmd.argv[:2] == ("docker", "info") else "")]


def test_every_missing_or_unfit_tool_is_named_once() -> None:
    answers = Answers({
        "docker": Completed(0, "Docker version 28.2.2, build e6534b4\n", ""),
        "docker info": Completed(1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"),
        "helm": Completed(0, "v4.0.1+g1234\n", ""),
        "kubectl": Completed(0, '{"clientVersion": {"gitVersion": "v1.32.4"}}', ""),
    })
    found = tools.problems(answers, which=lambda name: None if name == "kind" else f"/usr/bin/{name}")
    assert [line.split(":")[0] for line in found] == ["docker", "kind", "helm", "kubectl"], found
    assert "the daemon does not answer (Cannot connect to the Docker daemon" in found[0]
    assert "not found on PATH (need v0.31.0): go install sigs.k8s.io/kind@v0.31.0" in found[1]
    assert "found v4.0.1, need >= v3.15.0, < v4" in found[2]
    assert "found v1.32.4, need >= v1.34.0" in found[3]


def test_fit_tools_pass() -> None:
    answers = Answers({
        "docker": Completed(0, "Docker version 28.2.2, build e6534b4\n", ""),
        "docker info": Completed(0, "28.2.2\n", ""),
        "kind": Completed(0, "kind v0.31.0 go1.25.5 linux/amd64\n", ""),
        "helm": Completed(0, "v3.19.0+g3d8990f\n", ""),
        "kubectl": Completed(0, '{"clientVersion": {"gitVersion": "v1.35.0"}}', ""),
    })
    assert tools.problems(answers, which=lambda name: f"/usr/bin/{name}") == []
    answers.answers["kind"] = Completed(0, "kind v0.32.0 go1.25.5 linux/amd64\n", "")
    assert tools.problems(answers, which=lambda name: f"/usr/bin/{name}") == [
        "kind: found v0.32.0, need exactly v0.31.0 (its node image is pinned with it): go install sigs.k8s.io/kind@v0.31.0 "
        "(or the release binary from kind.sigs.k8s.io)"]


def pytest_suites(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "suites/", "-q", "-p", "no:cacheprovider", *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)


@pytest.mark.skipif(shutil.which("kind") is not None and shutil.which("helm") is not None,
                    reason="this machine has kind and helm: the kind preflight would pass here")
def test_pytest_on_kind_stops_at_once_with_the_preflight_message() -> None:
    done = pytest_suites("--mesh", "kind")
    out = done.stdout + done.stderr
    assert done.returncode not in (0, 1), out  # pytest.exit, not a test failure
    assert "--mesh kind needs tools this machine lacks" in out and "pytest suites/ --mesh lab" in out, out
    assert "Traceback" not in out and "passed" not in out and "failed" not in out, out


def test_pytest_on_existing_without_contexts_stops_at_once() -> None:
    done = pytest_suites("--mesh", "existing")
    out = done.stdout + done.stderr
    assert done.returncode not in (0, 1), out
    assert "--context-us and --context-eu" in out and "Traceback" not in out and "passed" not in out, out


def test_pytest_kind_plan_prints_the_plan_and_exits() -> None:
    done = pytest_suites("--mesh", "kind", "--kind-plan")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("# eastwest kind plan") and "helm upgrade --install istiod istiod" in done.stdout
    assert "nothing was started" in done.stdout + done.stderr


# ---- existing clusters -----------------------------------------------------------------------------


def istio_cluster(world: World, role: str, *, network: str, trust_domain: str = "corp.local", gateway: str | None = None,
                  chaos_mesh: bool = True) -> None:
    api = FakeApi(world, role, log=False)
    world.crds[role] = {"networking.istio.io/v1 Gateway", *(["chaos-mesh.org/v1alpha1 PodChaos"] if chaos_mesh else [])}
    api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system", "labels": {"topology.istio.io/network": network}}})
    api.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
             "data": {"mesh": f"trustDomain: {trust_domain}\ndefaultConfig:\n  meshId: training-mesh\n"}})
    api.put({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "istiod", "namespace": "istio-system"},
             "spec": {"template": {"spec": {"containers": [{"name": "discovery", "env": [{"name": "CLUSTER_ID", "value": role}]}]}}}})
    if gateway is not None:
        api.put({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "istio-eastwestgateway", "namespace": "istio-system",
                                                                   "labels": {"topology.istio.io/network": network}},
                 "spec": {"ports": [{"port": 15443}]}, "status": {"loadBalancer": {"ingress": [{"ip": gateway}]}}})


def existing(world: World) -> ExistingMesh:
    return ExistingMesh(Settings(backend="existing", manifests=MANIFESTS), {"us": "ctx-us", "eu": "ctx-eu"},
                        api_for=lambda role: FakeApi(world, role, log=False))


def test_a_conforming_pair_passes_and_missing_chaos_mesh_is_a_note() -> None:
    world = World(TOPOLOGY)
    istio_cluster(world, "us", network="us-net", gateway="172.31.255.10")
    istio_cluster(world, "eu", network="eu-net", gateway="172.31.255.20", chaos_mesh=False)
    mesh = existing(world)
    notes = mesh.preflight()
    assert notes == ["eu (context ctx-eu): Chaos Mesh is not installed: tests that need its faults will be skipped"]
    assert mesh.chaos_mesh == {"us": True, "eu": False}


def test_everything_missing_is_named_in_one_message() -> None:
    world = World(TOPOLOGY)
    istio_cluster(world, "us", network="one-net", trust_domain="cluster.local", gateway="34.1.2.3")
    istio_cluster(world, "eu", network="one-net", gateway=None)
    FakeApi(world, "eu", log=False).put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "echo"}})
    with pytest.raises(BackendUnavailable) as caught:
        existing(world).preflight()
    text = str(caught.value)
    for needle in ("us (context ctx-us): east-west gateway address expected 172.31.255.10, observed 34.1.2.3",
                   "eu (context ctx-eu): no east-west gateway",
                   "eu (context ctx-eu): namespace echo exists and was not made by eastwest",
                   "us: network is 'one-net', topology.yaml says 'us-net'",
                   "us: trust domain 'cluster.local', topology.yaml says 'corp.local'",
                   "the clusters share a network", "the clusters have different trust domains", "Nothing was changed"):
        assert needle in text, text
    assert not [k for k in world.objects if k[0] in ("Deployment", "Namespace") and k[2] in ("echo", "sleep") and k[3] == "us"]


def test_no_istio_is_named() -> None:
    world = World(TOPOLOGY)
    istio_cluster(world, "us", network="us-net", gateway="172.31.255.10")
    with pytest.raises(BackendUnavailable, match=r"eu \(context ctx-eu\): Istio is not installed"):
        existing(world).preflight()


def test_contexts_are_required_and_distinct() -> None:
    settings = Settings(backend="existing", manifests=MANIFESTS)
    with pytest.raises(ConfigError, match="--context-eu"):
        ExistingMesh(settings, {"us": "a", "eu": None})
    with pytest.raises(ConfigError, match="its own context"):
        ExistingMesh(settings, {"us": "a", "eu": "a"})


def test_cleanup_removes_only_namespaces_this_project_made() -> None:
    world = World(TOPOLOGY)
    for role in TOPOLOGY.names:
        api = FakeApi(world, role, log=False)
        api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "echo", "labels": {"app.kubernetes.io/managed-by": "eastwest"}}})
        api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments"}})
    existing(world).cleanup()
    left = sorted((k[3], k[2]) for k in world.objects if k[0] == "Namespace")
    assert left == [("eu", "payments"), ("us", "payments")]
