"""``helm template`` of Istio's charts with the values the kind backend installs (optional: needs Helm 3 and the charts).

Skipped unless both are given, since neither ships with the project:

    EASTWEST_HELM=/path/to/helm              Helm 3, e.g. GOBIN=$PWD/bin go install helm.sh/helm/v3/cmd/helm@v3.22.0
    EASTWEST_ISTIO_CHARTS=/path/to/charts    manifests/charts of an istio.io/istio source tree (the Go module proxy
                                             serves the module: go mod download -json istio.io/istio@<version>)

It renders istio/base, istio/istiod and istio/gateway for every cluster with the values of the
plan, and checks what those values are for: the pinned images, the cluster name istiod runs
as, the network, the trust domain, DNS capture, small requests without autoscaling, and a
gateway Service that MetalLB gives the topology's address, on 15443, labelled with its network.
Every rendered built-in object then passes the strict Kubernetes schemas.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from eastwest.backends.kube import pins, render
from eastwest.schemas import Schemas, SchemaUnavailable
from eastwest.support.topology import load_topology

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"
TOPOLOGY = load_topology(MANIFESTS / "topology.yaml")
HELM = os.environ.get("EASTWEST_HELM", "")
CHARTS = Path(os.environ.get("EASTWEST_ISTIO_CHARTS", "/nonexistent"))
CHART_DIRS = {"base": "base", "istiod": "istio-control/istio-discovery", "gateway": "gateway"}

pytestmark = pytest.mark.skipif(not (HELM and Path(HELM).is_file() and (CHARTS / "gateway" / "Chart.yaml").is_file()),
                                reason="set EASTWEST_HELM (a Helm 3 binary) and EASTWEST_ISTIO_CHARTS (istio's manifests/charts) to run")


def template(tmp_path: Path, role: str, chart: str, release: str) -> list[dict[str, Any]]:
    values = tmp_path / f"{role}-{chart}.yaml"
    values.write_text(yaml.safe_dump(render.helm_values(MANIFESTS, TOPOLOGY, role, chart)))
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **{f"HELM_{k}_HOME": str(tmp_path / k) for k in ("CACHE", "CONFIG", "DATA")}}
    done = subprocess.run([HELM, "template", release, str(CHARTS / CHART_DIRS[chart]), "--namespace", "istio-system", "--values", str(values)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name))


@pytest.mark.parametrize("role", TOPOLOGY.names)
def test_istiod_renders_what_the_values_ask(tmp_path: Path, role: str) -> None:
    docs = template(tmp_path, role, "istiod", "istiod")
    spec = TOPOLOGY.cluster(role)
    container = one(docs, "Deployment", "istiod")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"{pins.ISTIO_HUB}/pilot:{pins.ISTIO_VERSION}"
    assert container["resources"]["requests"] == {"cpu": "100m", "memory": "256Mi"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CLUSTER_ID"] == role  # must equal the data key of its remote secret in the other cluster
    assert not [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    mesh = yaml.safe_load(one(docs, "ConfigMap", "istio")["data"]["mesh"])
    assert mesh["trustDomain"] == TOPOLOGY.trust_domain and mesh["defaultConfig"]["meshId"] == TOPOLOGY.mesh_id
    assert mesh["defaultConfig"]["proxyMetadata"]["ISTIO_META_DNS_CAPTURE"] == "true"
    injected = json.loads(one(docs, "ConfigMap", "istio-sidecar-injector")["data"]["values"])["global"]
    assert injected["network"] == spec.network and (injected["hub"], injected["tag"]) == (pins.ISTIO_HUB, pins.ISTIO_VERSION)
    assert injected["proxy"]["resources"]["requests"] == {"cpu": "10m", "memory": "64Mi"}


@pytest.mark.parametrize("role", TOPOLOGY.names)
def test_gateway_renders_a_network_gateway_at_the_topology_address(tmp_path: Path, role: str) -> None:
    docs = template(tmp_path, role, "gateway", "istio-eastwestgateway")
    spec = TOPOLOGY.cluster(role)
    service = one(docs, "Service")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["metadata"]["annotations"]["metallb.io/loadBalancerIPs"] == spec.gateway_address
    assert service["metadata"]["labels"]["topology.istio.io/network"] == spec.network
    assert 15443 in [p["port"] for p in service["spec"]["ports"]]
    assert service["spec"]["selector"] == {"app": "istio-eastwestgateway", "istio": "eastwestgateway"}  # cross-network-gateway's selector
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1 and not [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    assert env["ISTIO_META_REQUESTED_NETWORK_VIEW"] == spec.network


def test_every_rendered_builtin_object_passes_the_strict_schemas(tmp_path: Path) -> None:
    schemas = Schemas(ROOT.parent / "shared" / "schemas")
    checked = 0
    for chart, release in (("base", "istio-base"), ("istiod", "istiod"), ("gateway", "istio-eastwestgateway")):
        for doc in template(tmp_path, "us", chart, release):
            if "." in doc["apiVersion"].split("/")[0] and not doc["apiVersion"].split("/")[0].endswith(".k8s.io"):
                continue  # custom resources of the charts themselves
            try:
                problems = schemas.errors(doc)
            except SchemaUnavailable as exc:
                pytest.skip(str(exc))
            assert problems == [], (chart, doc["kind"], doc["metadata"]["name"], problems)
            checked += 1
    assert checked > 20
