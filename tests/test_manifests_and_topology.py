"""Self-tests of eastwest/support/topology.py, manifest.py and install.py on the real manifests/."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

from eastwest.support import install, manifest
from eastwest.support.errors import ConfigError, ManifestError
from eastwest.support.manifest import Document
from eastwest.support.topology import load_topology

ROOT = Path(__file__).resolve().parent.parent / "manifests"
TOPOLOGY = ROOT / "topology.yaml"


def all_manifests() -> list[Path]:
    return sorted(
        p for p in ROOT.rglob("*.yaml") if not p.name.endswith(".values.yaml") and p != TOPOLOGY
    )


@pytest.fixture(scope="module")
def topo():
    return load_topology(TOPOLOGY)


@pytest.fixture()
def raw_topology() -> dict:
    return yaml.safe_load(TOPOLOGY.read_text())


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "topology.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as exc:
        load_topology(path)
    msg = str(exc.value)
    assert "\n" not in msg, f"not one line: {msg!r}"
    assert str(path) in msg  # names the file
    return msg


# --------------------------------------------------------------------------- topology


def test_real_topology_mesh_facts(topo):
    assert topo.mesh_id == "training-mesh"
    assert topo.trust_domain == "corp.local"
    assert topo.names == ("us", "eu")
    us, eu = topo.cluster("us"), topo.cluster("eu")
    assert (us.network, eu.network) == ("us-net", "eu-net")
    assert us.locality == "us/us-a" and eu.locality == "eu/eu-a"
    nets = [us.pod_subnet, us.service_subnet, eu.pod_subnet, eu.service_subnet, topo.transit_subnet]
    for i, a in enumerate(nets):
        for b in nets[i + 1 :]:
            assert not a.overlaps(b), (a, b)
    for c in topo.clusters:
        assert ipaddress.IPv4Address(c.gateway_address) in topo.transit_subnet
    assert us.gateway_address != eu.gateway_address


def test_variables_per_cluster(topo):
    v = topo.variables("eu")
    assert v["CLUSTER"] == "eu" and v["NETWORK"] == "eu-net" and v["REGION"] == "eu" and v["ZONE"] == "eu-a"
    assert v["MESH_ID"] == "training-mesh" and v["TRUST_DOMAIN"] == "corp.local"
    assert v["GATEWAY_ADDRESS"] == topo.cluster("eu").gateway_address
    assert v["US_GATEWAY_ADDRESS"] == topo.cluster("us").gateway_address
    assert v["US_NETWORK"] == "us-net" and v["EU_NETWORK"] == "eu-net"
    assert topo.variables("us")["GATEWAY_ADDRESS"] == v["US_GATEWAY_ADDRESS"]


def test_unknown_cluster_is_config_error(topo):
    with pytest.raises(ConfigError, match=r"no cluster named 'asia'; clusters: us, eu"):
        topo.cluster("asia")


def test_overlapping_subnets(tmp_path, raw_topology):
    raw_topology["clusters"][1]["podSubnet"] = "10.10.128.0/17"  # inside us' 10.10.0.0/16
    msg = config_error(write(tmp_path, raw_topology))
    assert "10.10.0.0/16" in msg and "10.10.128.0/17" in msg and "overlap" in msg


def test_service_subnet_overlapping_transit(tmp_path, raw_topology):
    raw_topology["clusters"][0]["serviceSubnet"] = "172.31.0.0/16"
    msg = config_error(write(tmp_path, raw_topology))
    assert "172.31.0.0/16" in msg and "172.31.255.0/24" in msg and "overlap" in msg


@pytest.mark.parametrize("key", ["network", "podSubnet", "gatewayAddress"])
def test_missing_cluster_key(tmp_path, raw_topology, key):
    del raw_topology["clusters"][1][key]
    msg = config_error(write(tmp_path, raw_topology))
    assert f"clusters[1]: missing '{key}'" in msg


@pytest.mark.parametrize("key", ["meshID", "trustDomain", "transitSubnet", "clusters"])
def test_missing_top_level_key(tmp_path, raw_topology, key):
    del raw_topology[key]
    assert f"missing '{key}'" in config_error(write(tmp_path, raw_topology))


def test_gateway_outside_transit(tmp_path, raw_topology):
    raw_topology["clusters"][0]["gatewayAddress"] = "192.168.1.10"
    msg = config_error(write(tmp_path, raw_topology))
    assert "192.168.1.10" in msg and "us" in msg and "outside 172.31.255.0/24" in msg


def test_duplicate_cluster_names(tmp_path, raw_topology):
    raw_topology["clusters"][1]["name"] = "us"
    assert "cluster names must be unique" in config_error(write(tmp_path, raw_topology))


@pytest.mark.parametrize(
    "field, value, needle",
    [
        ("podSubnet", "10.10.0.1/16", "has host bits set"),
        ("podSubnet", "not-a-cidr", "not-a-cidr"),
        ("gatewayAddress", "172.31.255.300", "172.31.255.300"),
    ],
)
def test_bad_addresses(tmp_path, raw_topology, field, value, needle):
    raw_topology["clusters"][0][field] = value
    assert needle in config_error(write(tmp_path, raw_topology))


def test_kind_addresses_of_the_real_topology(topo):
    us, eu = topo.cluster("us"), topo.cluster("eu")
    assert (str(us.node_subnet), str(eu.node_subnet)) == ("172.29.10.0/24", "172.29.20.0/24")
    assert (us.api_server_address, eu.api_server_address) == ("172.31.255.2", "172.31.255.3")
    assert str(topo.transit_dynamic_range) == "172.31.255.128/25"


@pytest.mark.parametrize(
    "where, field, value, needles",
    [
        (1, "nodeSubnet", "172.29.10.128/25", ["172.29.10.0/24", "172.29.10.128/25", "us nodeSubnet", "eu nodeSubnet", "overlap"]),
        (0, "nodeSubnet", "10.20.0.0/24", ["10.20.0.0/16", "eu podSubnet", "us nodeSubnet"]),
        (0, "nodeSubnet", "172.31.255.0/25", ["transitSubnet", "overlap"]),
        (0, "apiServerAddress", "172.31.255.20", ["API server address 172.31.255.20 of us is also the gateway address 172.31.255.20 of eu"]),
        (1, "apiServerAddress", "172.31.255.2", ["API server address 172.31.255.2 of eu is also the API server address"]),
        (0, "apiServerAddress", "172.31.255.200", ["inside transitDynamicRange 172.31.255.128/25"]),
        (0, "apiServerAddress", "172.31.255.1", ["reserved", "gateway .1"]),
        (0, "apiServerAddress", "10.0.0.2", ["outside 172.31.255.0/24"]),
        (0, "gatewayAddress", "172.31.255.130", ["gateway address 172.31.255.130 of us is inside transitDynamicRange"]),
    ],
)
def test_kind_address_checks(tmp_path, raw_topology, where, field, value, needles):
    raw_topology["clusters"][where][field] = value
    msg = config_error(write(tmp_path, raw_topology))
    for needle in needles:
        assert needle in msg, msg


def test_dynamic_range_outside_transit(tmp_path, raw_topology):
    raw_topology["transitDynamicRange"] = "172.31.254.0/25"
    assert "transitDynamicRange 172.31.254.0/25 is not inside transitSubnet" in config_error(write(tmp_path, raw_topology))


def test_kind_fields_are_optional_for_other_backends(tmp_path, raw_topology):
    for c in raw_topology["clusters"]:
        del c["nodeSubnet"], c["apiServerAddress"]
    del raw_topology["transitDynamicRange"]
    topo = load_topology(write(tmp_path, raw_topology))
    assert topo.cluster("us").node_subnet is None and topo.transit_dynamic_range is None


def test_invalid_yaml(tmp_path):
    text = TOPOLOGY.read_text().replace("meshID: training-mesh", "meshID: [training-mesh")
    assert "not valid YAML" in config_error(write(tmp_path, text))


@pytest.mark.parametrize("text", ["- just\n- a list\n", "clusters:\n", "clusters: [us, eu]\n", "clusters: us\n"])
def test_wrong_shapes_are_config_errors(tmp_path, text):
    # every problem is a ConfigError line, never a TypeError from deep inside the loader
    body = text if text.startswith("-") else f"meshID: m\ntrustDomain: t\ntransitSubnet: 172.31.255.0/24\n{text}"
    config_error(write(tmp_path, body))


def test_missing_topology_file(tmp_path):
    with pytest.raises(ConfigError, match="topology file not found"):
        load_topology(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------- render


def test_render_substitutes_braced_variables(topo):
    out = manifest.render("network: ${NETWORK}\nzone: ${REGION}/${ZONE}\n", topo.variables("us"), "x.yaml")
    assert out == "network: us-net\nzone: us/us-a\n"


def test_render_unknown_variable_is_named(topo):
    with pytest.raises(ManifestError) as exc:
        manifest.render("a: ${CLUSTER}\nb: ${CLUSTR}\n", topo.variables("us"), "workloads/typo.yaml")
    msg = str(exc.value)
    assert msg.startswith("workloads/typo.yaml: unknown variable ${CLUSTR}")
    assert "CLUSTER" in msg.split("known variables:")[1]  # and lists what exists


@pytest.mark.parametrize(
    "literal",
    [
        "$HOME",
        "$$",
        "echo $$ > /tmp/pid",
        "$(POD_NAME)",
        "$$(POD_NAME)",  # Kubernetes' own escape must reach Kubernetes unchanged
        "${lower_case}",
        "price: 5$",
        "$1",
    ],
)
def test_render_leaves_other_dollars_alone(literal):
    text = f"args: ['{literal}']\n"
    assert manifest.render(text, {"CLUSTER": "eu"}, "x.yaml") == text


def test_placeholders_agree_with_render(topo):
    text = "a: ${CLUSTER}\nb: $$ ${lower} $HOME\nc: ${NETWORK}-${CLUSTER}\n"
    assert manifest.placeholders(text) == {"CLUSTER", "NETWORK"}
    only = {k: topo.variables("eu")[k] for k in manifest.placeholders(text)}
    assert manifest.render(text, only, "x") == "a: eu\nb: $$ ${lower} $HOME\nc: eu-net-eu\n"


# --------------------------------------------------------------------------- parse and Document


def test_parse_skips_empty_documents_and_keeps_source():
    docs = manifest.parse("---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\n", "ns.yaml")
    assert [(d.kind, d.name, d.namespace, d.source) for d in docs] == [("Namespace", "a", None, "ns.yaml")]
    assert docs[0].ref == "Namespace a (ns.yaml)"


@pytest.mark.parametrize(
    "text, needle",
    [
        ("apiVersion: v1\nmetadata: {name: a}\n", "(document 1): missing 'kind'"),
        ("kind: Namespace\nmetadata: {name: a}\n", "(document 1): missing 'apiVersion'"),
        ("apiVersion: v1\nkind: Namespace\nmetadata: {labels: {a: b}}\n", "(document 1): Namespace without metadata.name"),
        ("apiVersion: v1\nkind: Namespace\n", "(document 1): Namespace without metadata.name"),
        ("apiVersion: v1\nkind: Namespace\nmetadata: a\n", "(document 1): Namespace metadata must be a mapping"),
        ("apiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n---\n- a list\n", "(document 2): expected a Kubernetes object"),
        ("apiVersion: v1\nkind: Namespace\nmetadata: {name: [oops\n", "not valid YAML"),
    ],
)
def test_parse_rejects_with_file_named(text, needle):
    with pytest.raises(ManifestError) as exc:
        manifest.parse(text, "suites/broken.yaml")
    msg = str(exc.value)
    assert msg.startswith("suites/broken.yaml")
    assert needle in msg


def test_parse_yaml_error_gives_line():
    text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  labels: {x: [\n"
    with pytest.raises(ManifestError, match=r"^suites/broken\.yaml:\d+: not valid YAML"):
        manifest.parse(text, "suites/broken.yaml")


def _doc(annotation: str | None) -> Document:
    meta: dict = {"name": "x", "namespace": "echo"}
    if annotation is not None:
        meta["annotations"] = {"eastwest.io/clusters": annotation, "other": "1"}
    return Document({"apiVersion": "v1", "kind": "Service", "metadata": meta}, "t.yaml")


@pytest.mark.parametrize(
    "annotation, us, eu",
    [(None, True, True), ("eu", False, True), ("us, eu", True, True), (" us ", True, False), ("asia", False, False)],
)
def test_targets_honours_clusters_annotation(annotation, us, eu):
    d = _doc(annotation)
    assert (d.targets("us"), d.targets("eu")) == (us, eu)


def test_targets_through_load(tmp_path, topo):
    path = tmp_path / "only-eu.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a-${CLUSTER}\n"
        "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: b-${CLUSTER}\n"
        "  annotations:\n    eastwest.io/clusters: eu\n"
    )
    assert [d.name for d in install.documents(tmp_path, topo, "us", ["only-eu.yaml"])] == ["a-us"]
    assert [d.name for d in install.documents(tmp_path, topo, "eu", [str(path)])] == ["a-eu", "b-eu"]
    assert install.documents(tmp_path, topo, "eu", ["only-eu.yaml"])[0].source == "only-eu.yaml"


def test_load_missing_file_named(topo):
    with pytest.raises(ManifestError, match=r"^manifest not found: suites/nope\.yaml$"):
        manifest.load(ROOT / "suites/nope.yaml", topo.variables("us"), root=ROOT)


# --------------------------------------------------------------------------- install


def test_echo_deployment_rendered_for_eu(topo):
    docs = install.documents(ROOT, topo, "eu", ["workloads/echo.yaml"])
    assert [d.kind for d in docs] == ["Namespace", "ServiceAccount", "Service", "Deployment"]
    assert {d.source for d in docs} == {"workloads/echo.yaml"}
    [deploy] = [d for d in docs if d.kind == "Deployment"]
    [container] = deploy.body["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CLUSTER"] == "eu"
    assert env["LOCALITY"] == "eu/eu-a"
    assert "${" not in yaml.safe_dump([d.body for d in docs])


def test_base_manifests_for_both_clusters(topo):
    for cluster in topo.names:
        docs = install.documents(ROOT, topo, cluster, install.BASE_MANIFESTS)
        [ns] = [d for d in docs if d.kind == "Namespace" and d.name == "istio-system"]
        assert ns.body["metadata"]["labels"]["topology.istio.io/network"] == topo.cluster(cluster).network
        assert {d.name for d in docs if d.kind == "Namespace"} >= {"istio-system", "echo", "sleep"}


def test_helm_values(topo):
    istiod = install.helm_values(ROOT, topo, "us", install.ISTIOD_VALUES)
    assert istiod["global"]["meshID"] == "training-mesh"
    assert istiod["global"]["multiCluster"]["clusterName"] == "us"
    assert istiod["global"]["network"] == "us-net"
    assert istiod["meshConfig"]["trustDomain"] == "corp.local"
    gw = install.helm_values(ROOT, topo, "eu", install.GATEWAY_VALUES)
    assert gw["networkGateway"] == "eu-net"
    with pytest.raises(ManifestError, match="values file not found: istio/nope.values.yaml"):
        install.helm_values(ROOT, topo, "eu", "istio/nope.values.yaml")


def test_install_phases_are_in_istio_order():
    names = [p.name for p in install.PHASES]
    assert names == ["namespace", "istio-base", "istiod", "eastwest-gateway", "expose-services", "remote-secrets", "workloads"]
    assert install.phase("namespace").manifests == ("istio/istio-system.yaml",)  # before istiod: its network label
    istiod, gateway = install.phase("istiod").release, install.phase("eastwest-gateway").release
    assert istiod is not None and istiod.values == (install.ISTIOD_VALUES,)
    assert gateway is not None and gateway.chart == "gateway"
    assert install.BASE_MANIFESTS == ("istio/istio-system.yaml", "istio/cross-network-gateway.yaml", "workloads/echo.yaml", "workloads/sleep.yaml")
    with pytest.raises(KeyError, match="no install phase 'helm'"):
        install.phase("helm")


def test_merge_values_is_helms_merge():
    base = {"global": {"meshID": "m", "proxy": {"resources": {"requests": {"cpu": "1"}}}}, "list": [1, 2]}
    over = {"global": {"hub": "h", "proxy": {"resources": {"requests": {"cpu": "10m"}}}}, "list": [3]}
    assert install.merge_values(base, over) == {"global": {"meshID": "m", "hub": "h", "proxy": {"resources": {"requests": {"cpu": "10m"}}}},
                                                "list": [3]}
    assert base["global"] == {"meshID": "m", "proxy": {"resources": {"requests": {"cpu": "1"}}}}  # inputs untouched


def test_manifest_tree_is_not_empty():
    names = {p.relative_to(ROOT).as_posix() for p in all_manifests()}
    assert set(install.BASE_MANIFESTS) <= names


@pytest.mark.parametrize("path", all_manifests(), ids=lambda p: p.relative_to(ROOT).as_posix())
@pytest.mark.parametrize("cluster", ["us", "eu"])
def test_every_manifest_renders_for_every_cluster(topo, path, cluster):
    rel = path.relative_to(ROOT).as_posix()
    docs = install.documents(ROOT, topo, cluster, [rel])
    all_docs = manifest.load(path, topo.variables(cluster), root=ROOT)
    assert all_docs, f"{rel} has no documents"
    assert docs == [d for d in all_docs if d.targets(cluster)]
    for d in all_docs:
        assert d.source == rel
        assert "${" not in yaml.safe_dump(d.body), d.ref
