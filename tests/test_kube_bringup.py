"""The kind bring-up driven against recording stand-ins for docker, kind, helm and the API servers.

It checks the order and the arguments of the whole road (namespace and cacerts, base, istiod,
gateway, its address, the cross-network Gateway, remote secrets, workloads, Chaos Mesh, the
readiness gate), that a second run against what the first one built changes nothing, and that
what this project would not have made is refused by name.
"""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import pytest
import yaml

from eastwest.backends.kube import pins, plan, render
from eastwest.backends.kube.bringup import BringUp
from eastwest.backends.kube.commands import Progress
from eastwest.backends.kube.readiness import NotReady
from eastwest.schemas import Schemas
from eastwest.settings import Timeouts
from eastwest.support.errors import ConfigError
from eastwest.support.topology import load_topology
from tests.kube_fakes import FakeApi, FakeRunner, World

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"
TOPOLOGY = load_topology(MANIFESTS / "topology.yaml")
METALLB = b"# the MetalLB manifest, as the stand-in serves it\n"


@pytest.fixture
def world() -> World:
    return World(TOPOLOGY)


def bring_up(world: World, state: Path, monkeypatch: pytest.MonkeyPatch, *, timeouts: Timeouts | None = None) -> dict[str, FakeApi]:
    monkeypatch.setattr(pins, "METALLB_MANIFEST_SHA256", hashlib.sha256(METALLB).hexdigest())
    ctx = plan.KindContext(TOPOLOGY, MANIFESTS, render.Layout("eastwest", state),
                           timeouts or Timeouts(bring_up=60, poll_interval=0.01))
    apis = {role: FakeApi(world, role) for role in TOPOLOGY.names}
    schemas = Schemas(ROOT.parent / "shared" / "schemas")
    BringUp(ctx, FakeRunner(world), apis.__getitem__, progress=Progress(io.StringIO(), heartbeat=0),
            schemas=schemas if schemas.available else None, fetch=lambda url: METALLB).all()
    return apis


def runs(world: World, start: str) -> list[str]:
    return [e[1] for e in world.log if e[0] == "run" and e[1].startswith(start)]


def test_install_order_per_cluster(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bring_up(world, tmp_path, monkeypatch)
    for role in TOPOLOGY.names:
        ctx = f"--kube-context kind-eastwest-{role}"
        order = [
            world.index("apply", role, "Namespace istio-system"),
            world.index("apply", role, "Secret istio-system/cacerts"),
            world.index("run", next(r for r in runs(world, "helm upgrade --install istio-base base") if ctx in r)),
            world.index("run", next(r for r in runs(world, "helm upgrade --install istiod istiod") if ctx in r)),
            world.index("run", next(r for r in runs(world, "helm upgrade --install istio-eastwestgateway gateway") if ctx in r)),
            world.index("list", role, "Service istio-system"),  # waiting for the gateway's address
            world.index("apply", role, "Gateway istio-system/cross-network-gateway"),
            world.index("apply", role, f"Secret istio-system/istio-remote-secret-{'eu' if role == 'us' else 'us'}"),
            world.index("apply", role, "Deployment echo/echo"),
            world.index("run", next(r for r in runs(world, "helm upgrade --install chaos-mesh chaos-mesh") if ctx in r)),
            world.index("proxy", role, "debug/clusterz"),  # the readiness gate
        ]
        assert order == sorted(order), order


def test_platform_comes_before_istio_and_in_order(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bring_up(world, tmp_path, monkeypatch)
    first_istio = world.index("apply", "us", "Namespace istio-system")
    platform = [
        world.index("run", "docker network create --driver bridge --subnet 172.29.10.0/24"),
        world.index("run", "docker network create --driver bridge --subnet 172.31.255.0/24 --ip-range 172.31.255.128/25"),
        world.index("run", "kind create cluster --name eastwest-us"),
        world.index("run", "docker network connect --ip 172.31.255.2 eastwest-wan eastwest-us-control-plane"),
        world.index("run", "docker exec eastwest-us-control-plane ip route replace unreachable 10.20.0.0/16"),
        world.index("run", "docker build --tag eastwest/echo:0.1.0"),
        world.index("run", "kind load docker-image --name eastwest-us"),
        world.index("run", "kubectl --kubeconfig"),
        world.index("apply", "us", "IPAddressPool metallb-system/eastwest-gateway"),
    ]
    assert platform == sorted(platform) and platform[-1] < first_istio, platform


def test_arguments_that_matter(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    apis = bring_up(world, tmp_path, monkeypatch)
    create = runs(world, "kind create cluster --name eastwest-eu")[0]
    assert f"--config {tmp_path}/kind-eu.yaml" in create and "--wait 120s" in create
    kind_eu = yaml.safe_load((tmp_path / "kind-eu.yaml").read_text())
    assert kind_eu["nodes"][0]["image"] == pins.NODE_IMAGE and kind_eu["networking"]["podSubnet"] == "10.20.0.0/16"
    for helm in runs(world, "helm "):
        assert "--version" in helm and "--wait" in helm and "--repo https://" in helm
    assert all("--version 1.30.3" in h for h in runs(world, "helm upgrade --install isti"))
    istiod = yaml.safe_load((tmp_path / "values" / "eu-istiod.yaml").read_text())
    assert istiod["global"]["multiCluster"]["clusterName"] == "eu" and istiod["global"]["network"] == "eu-net"
    assert istiod["global"]["hub"] == "docker.io/istio" and istiod["global"]["tag"] == "1.30.3"
    loaded = runs(world, "kind load docker-image --name eastwest-eu")[0].split()
    assert {"eastwest/echo:0.1.0", "curlimages/curl:8.11.1", f"docker.io/istio/proxyv2:{pins.ISTIO_VERSION}", pins.PAUSE_IMAGE} <= set(loaded)
    # the remote secret in US reaches EU at its transit address with EU's reader token, never the host's loopback
    secret = apis["us"].get("v1", "Secret", "istio-remote-secret-eu", "istio-system")
    assert secret is not None
    kubeconfig = yaml.safe_load(base64.b64decode(secret["data"]["eu"]))
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://172.31.255.3:6443"
    assert kubeconfig["users"][0]["user"]["token"] == "token-of-eu"
    # one root, one intermediate per cluster
    cacerts = {role: apis[role].get("v1", "Secret", "cacerts", "istio-system") or {} for role in TOPOLOGY.names}
    roots = {role: secret["data"]["root-cert.pem"] for role, secret in cacerts.items()}
    chains = {role: secret["data"]["ca-cert.pem"] for role, secret in cacerts.items()}
    assert len(set(roots.values())) == 1 and len(set(chains.values())) == 2


def test_a_second_run_changes_nothing(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    apis = bring_up(world, tmp_path, monkeypatch)
    cacerts = apis["us"].get("v1", "Secret", "cacerts", "istio-system")
    world.log.clear()
    bring_up(world, tmp_path, monkeypatch)
    created = [e for e in world.log if e[0] == "run" and e[1].startswith(("docker network create", "kind create", "docker network connect",
                                                                         "docker pull"))]
    assert created == [], created
    assert apis["us"].get("v1", "Secret", "cacerts", "istio-system") == cacerts  # istiod is never re-rooted
    assert not [e for e in world.log if e[:3] == ("apply", "us", "Secret istio-system/cacerts")]


def test_a_network_this_project_did_not_make_is_refused(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world.networks["eastwest-us"] = {"Name": "eastwest-us", "IPAM": {"Config": [{"Subnet": "172.29.10.0/24"}]}, "Labels": {}}
    with pytest.raises(ConfigError, match="docker network eastwest-us exists .* not made by eastwest"):
        bring_up(world, tmp_path, monkeypatch)
    assert not runs(world, "kind create"), "nothing is created after a refusal"


def test_cacerts_from_different_roots_are_refused(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeApi(world, "us", log=False).put({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cacerts", "namespace": "istio-system"},
                                          "data": {"root-cert.pem": "b3RoZXI="}})
    with pytest.raises(ConfigError, match="cacerts exists in us but not from one root"):
        bring_up(world, tmp_path, monkeypatch)


def test_the_gate_names_what_is_not_ready(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Remote secrets that never sync: the gate waits, then names the cluster and the status istiod reports."""
    monkeypatch.setattr(FakeApi, "pod_proxy", lambda self, ns, pod, port, path: '[{"id": "other", "syncStatus": "timeout"}]')
    with pytest.raises(NotReady, match=r"us: istiod has not synced remote cluster\(s\) eu \(absent\)"):
        bring_up(world, tmp_path, monkeypatch, timeouts=Timeouts(bring_up=3, poll_interval=0.01))


def test_the_metallb_manifest_is_refused_unless_its_digest_matches(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = plan.KindContext(TOPOLOGY, MANIFESTS, render.Layout("eastwest", tmp_path), Timeouts(bring_up=30, poll_interval=0.01))
    steps = [s for s in plan.build(ctx) if s.key == "metallb"][:1]
    up = BringUp(ctx, FakeRunner(world), lambda role: FakeApi(world, role), progress=Progress(io.StringIO(), heartbeat=0),
                 fetch=lambda url: b"tampered")
    with pytest.raises(Exception, match="sha256 .* expected .*; not applied"):
        up.all(steps)
    assert not runs(world, "kubectl")
