"""Every manifest the project applies, rendered for every cluster, against the real schemas.

The kind backend ``kubectl apply``s the documents of ``manifests/`` and ``helm install``s the
``*.values.yaml`` files on real clusters; this offline test makes sure none of them would be
rejected (or, for Helm values, silently ignored) there:

* Istio and Chaos Mesh objects: the CRDs' OpenAPI schemas from ``shared/schemas``, converted to
  JSON Schema with the API server's strict field validation (unknown fields fail);
* built-in kinds (Namespace, Service, Deployment, ...): the strict Kubernetes schemas shipped by
  the ``kubernetes-validate`` package, for the newest Kubernetes it has;
* Helm values: the istio/gateway chart's ``values.schema.json``, and for every chart the key paths
  of its default values (a misspelt key is otherwise silently ignored by Helm).

Files are discovered by globbing ``manifests/``; there is one test per document per cluster,
e.g. ``istio/cross-network-gateway.yaml::Gateway/cross-network-gateway@eu``.
Run with ``pytest tests/test_manifest_schemas.py``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from eastwest.support import install, manifest
from eastwest.support.errors import ConfigError, ManifestError
from eastwest.support.topology import load_topology
from tests import schemas

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"
TOPOLOGY = MANIFESTS / "topology.yaml"
SCHEMAS = Path(__file__).resolve().parents[1].parent / "shared" / "schemas"

pytestmark = pytest.mark.skipif(
    not SCHEMAS.is_dir(),
    reason=f"the upstream schemas are not there: {SCHEMAS} (shared/schemas beside the repository) is missing",
)

# Groups whose CRDs shared/schemas ships: an object of these groups must match them.
CRD_GROUPS = {
    "networking.istio.io": schemas.ISTIO_CRDS,
    "security.istio.io": schemas.ISTIO_CRDS,
    "telemetry.istio.io": schemas.ISTIO_CRDS,
    "extensions.istio.io": schemas.ISTIO_CRDS,
    "chaos-mesh.org": schemas.CHAOS_MESH_CRDS,
}


# --------------------------------------------------------------------------------------------
# Discovery (at collection: one test id per document per cluster)


def _manifest_files() -> list[Path]:
    found = {*MANIFESTS.rglob("*.yaml"), *MANIFESTS.rglob("*.yml")}
    return sorted(p for p in found if p != TOPOLOGY and p.is_file())


def _is_values(path: Path) -> bool:
    return path.name.endswith((".values.yaml", ".values.yml"))


def _relative(path: Path) -> str:
    return path.relative_to(MANIFESTS).as_posix()


def _topology():
    try:
        return load_topology(TOPOLOGY), None
    except ConfigError as exc:
        return None, str(exc)


def _document_cases() -> list[Any]:
    topo, error = _topology()
    if topo is None:
        return [pytest.param(None, error, id="topology.yaml")]
    cases = []
    for path in _manifest_files():
        if _is_values(path):
            continue
        rel = _relative(path)
        for cluster in topo.names:
            try:
                docs = manifest.load(path, topo.variables(cluster), root=MANIFESTS)
            except ManifestError as exc:
                cases.append(pytest.param(None, str(exc), id=f"{rel}@{cluster}"))
                continue
            used: set[str] = set()
            for i, doc in enumerate(docs):
                if not doc.targets(cluster):
                    continue
                ns = f"{doc.namespace}/" if doc.namespace else ""
                for candidate in (
                    f"{rel}::{doc.kind}/{doc.name}@{cluster}",
                    f"{rel}::{doc.kind}/{ns}{doc.name}@{cluster}",
                    f"{rel}::{doc.kind}/{ns}{doc.name}#{i + 1}@{cluster}",
                ):
                    if candidate not in used:
                        break
                used.add(candidate)
                cases.append(pytest.param(doc, None, id=candidate))
    return cases


def _values_cases() -> list[Any]:
    topo, error = _topology()
    if topo is None:
        return [pytest.param(None, None, error, id="topology.yaml")]
    return [
        pytest.param(_relative(path), cluster, None, id=f"{_relative(path)}@{cluster}")
        for path in _manifest_files()
        if _is_values(path)
        for cluster in topo.names
    ]


# --------------------------------------------------------------------------------------------
# Validators, loaded once per session


@pytest.fixture(scope="session")
def crds() -> schemas.CrdCatalog:
    return schemas.crd_catalog(SCHEMAS)


def _core() -> schemas.CoreSchemas:
    try:
        return schemas.core_schemas()
    except schemas.CoreSchemasUnavailable as exc:
        pytest.skip(f"built-in kinds not validated: {exc}")


def document_problems(body: dict[str, Any], crds: schemas.CrdCatalog) -> list[str]:
    """Why the API server would reject ``body``; skips when no schema for its group is shipped."""
    group, _ = schemas.split_api_version(str(body.get("apiVersion")))
    if group in CRD_GROUPS or group in crds.groups:
        if group not in crds.groups:
            pytest.skip(f"{group} objects not validated: {SCHEMAS / CRD_GROUPS[group]} is missing")
        return crds.errors(body)
    if schemas.is_builtin_group(group):
        core = _core()
        return core.errors(body) + [f"{p} (API server name/label rules)" for p in schemas.metadata_errors(body)]
    pytest.skip(f"no schema for API group {group!r} in {SCHEMAS}; add its CRDs there and to CRD_GROUPS to validate it")


def _fail_if(problems: list[str], what: str) -> None:
    if problems:
        pytest.fail(f"{what}:\n  " + "\n  ".join(problems), pytrace=False)


# --------------------------------------------------------------------------------------------
# The manifests


@pytest.mark.parametrize("doc, load_error", _document_cases())
def test_manifest_document_matches_schema(doc: manifest.Document | None, load_error: str | None, crds) -> None:
    if load_error is not None:
        pytest.fail(load_error, pytrace=False)
    assert doc is not None
    problems = document_problems(doc.body, crds)
    _fail_if(problems, f"{doc.ref} would be rejected by the API server")


@pytest.mark.parametrize("name, cluster, load_error", _values_cases())
def test_helm_values_match_chart(name: str | None, cluster: str | None, load_error: str | None) -> None:
    if load_error is not None:
        pytest.fail(load_error, pytrace=False)
    assert name is not None and cluster is not None
    chart = schemas.chart_for_values_file(name)
    if chart is None:
        pytest.fail(
            f"{name}: no chart known for this values file; name it after its chart (a name with "
            f"'istiod', 'gateway' or 'chaos-mesh' in it, or base.values.yaml) or map it in tests/schemas.py",
            pytrace=False,
        )
    missing = [f for f in (chart.defaults, chart.schema) if f and not (SCHEMAS / f).is_file()]
    if missing:
        pytest.skip(f"{chart.name} chart values not validated: {', '.join(str(SCHEMAS / f) for f in missing)} missing")
    try:
        values, error = install.helm_values(MANIFESTS, load_topology(TOPOLOGY), cluster, name), None
    except ManifestError as exc:
        values, error = {}, str(exc)
    if error is not None:
        pytest.fail(error, pytrace=False)
    problems = schemas.chart_values_errors(SCHEMAS, chart, values)
    _fail_if(problems, f"{name} rendered for {cluster} does not fit the {chart.name} chart")


def test_every_document_is_applied_somewhere() -> None:
    """A document whose eastwest.io/clusters annotation names no cluster of the topology is never
    applied (nor validated above): that is a typo in the annotation."""
    topo = load_topology(TOPOLOGY)
    lost = []
    for path in _manifest_files():
        if _is_values(path):
            continue
        targeted: dict[int, bool] = {}
        for cluster in topo.names:
            try:
                docs = manifest.load(path, topo.variables(cluster), root=MANIFESTS)
            except ManifestError:
                continue  # reported by test_manifest_document_matches_schema
            for i, doc in enumerate(docs):
                targeted[i] = targeted.get(i, False) or doc.targets(cluster)
                if not targeted[i] and cluster == topo.names[-1]:
                    wanted = doc.body["metadata"]["annotations"][manifest.CLUSTERS_ANNOTATION]
                    lost.append(f"{doc.ref}: {manifest.CLUSTERS_ANNOTATION}={wanted!r}; clusters are {', '.join(topo.names)}")
    _fail_if(lost, "documents applied to no cluster")


def test_discovery_covers_what_the_backends_install() -> None:
    found = {_relative(p) for p in _manifest_files()}
    wanted = {*install.BASE_MANIFESTS, install.ISTIOD_VALUES, install.GATEWAY_VALUES}
    assert wanted <= found, f"not found under {MANIFESTS}: {sorted(wanted - found)}"


# --------------------------------------------------------------------------------------------
# The validators can fail (each negative case starts from an object that passes)

GATEWAY: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "Gateway",
    "metadata": {"name": "cross-network-gateway", "namespace": "istio-system"},
    "spec": {
        "selector": {"istio": "eastwestgateway"},
        "servers": [
            {
                "port": {"number": 15443, "name": "tls", "protocol": "TLS"},
                "tls": {"mode": "AUTO_PASSTHROUGH"},
                "hosts": ["*.local"],
            }
        ],
    },
}

DESTINATION_RULE = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "DestinationRule",
    "metadata": {"name": "echo", "namespace": "echo"},
    "spec": {
        "host": "echo.echo.svc.cluster.local",
        "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}, "connectionPool": {"tcp": {"maxConnections": 100}}},
    },
}

NETWORK_CHAOS = {
    "apiVersion": "chaos-mesh.org/v1alpha1",
    "kind": "NetworkChaos",
    "metadata": {"name": "partition-eu", "namespace": "chaos-mesh"},
    "spec": {
        "action": "partition",
        "mode": "all",
        "selector": {"namespaces": ["echo"], "labelSelectors": {"app": "echo"}},
        "direction": "both",
        "target": {"mode": "all", "selector": {"namespaces": ["sleep"]}},
        "duration": "30s",
    },
}

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "echo", "namespace": "echo", "labels": {"app": "echo"}},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "echo"}},
        "template": {
            "metadata": {"labels": {"app": "echo"}},
            "spec": {"containers": [{"name": "echo", "image": "eastwest/echo:0.1.0", "ports": [{"containerPort": 8080}]}]},
        },
    },
}


def _with(obj: dict[str, Any], path: str, value: Any = None, *, delete: bool = False) -> dict[str, Any]:
    """A deep copy of ``obj`` with the dotted ``path`` set (or deleted); ``[0]`` indexes a list."""
    out = copy.deepcopy(obj)
    parts = path.replace("[", ".[").split(".")
    node: Any = out
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    last = parts[-1]
    if delete:
        del node[last]
    else:
        node[last] = value
    return out


def _istio(crds: schemas.CrdCatalog) -> schemas.CrdCatalog:
    if "networking.istio.io" not in crds.groups:
        pytest.skip(f"{SCHEMAS / schemas.ISTIO_CRDS} is missing")
    return crds


def test_valid_istio_objects_pass(crds) -> None:
    assert _istio(crds).errors(GATEWAY) == []
    assert crds.errors(DESTINATION_RULE) == []


def test_gateway_with_misspelt_field_fails(crds) -> None:
    bad = _with(GATEWAY, "spec.server", GATEWAY["spec"]["servers"])
    del bad["spec"]["servers"]
    problems = _istio(crds).errors(bad)
    assert any(p.startswith("spec:") and "'server' was unexpected" in p for p in problems), problems


def test_gateway_nested_unknown_field_and_wrong_type_fail(crds) -> None:
    problems = _istio(crds).errors(_with(GATEWAY, "spec.servers[0].port.numbr", 15443))
    assert any(p.startswith("spec.servers[0].port:") and "'numbr' was unexpected" in p for p in problems), problems
    problems = crds.errors(_with(GATEWAY, "spec.servers[0].port.number", "15443"))
    assert any(p.startswith("spec.servers[0].port.number:") and "not of type 'integer'" in p for p in problems), problems


def test_destination_rule_with_bogus_tls_mode_fails(crds) -> None:
    problems = _istio(crds).errors(_with(DESTINATION_RULE, "spec.trafficPolicy.tls.mode", "BOGUS"))
    assert any(p.startswith("spec.trafficPolicy.tls.mode:") and "'BOGUS' is not one of" in p for p in problems), problems


def test_istio_object_metadata_and_version_are_checked(crds) -> None:
    problems = _istio(crds).errors(_with(GATEWAY, "metadata.name", delete=True))
    assert any(p.startswith("metadata:") and "'name' is a required property" in p for p in problems), problems
    problems = crds.errors(_with(GATEWAY, "metadata.name", "Cross_Network"))
    assert any(p.startswith("metadata.name:") for p in problems), problems
    problems = crds.errors(_with(GATEWAY, "metadata.labels", {"topology.istio.io/network": 5}))
    assert any(p.startswith("metadata.labels.topology.istio.io/network:") for p in problems), problems
    problems = crds.errors(_with(GATEWAY, "apiVersion", "networking.istio.io/v2"))
    assert problems and "no served CRD for Gateway in networking.istio.io/v2" in problems[0], problems
    problems = crds.errors(_with(GATEWAY, "bogus", 1))
    assert any(p.startswith("<root>:") and "'bogus' was unexpected" in p for p in problems), problems


def test_every_istio_kind_validates_its_spec(crds) -> None:
    """Every served Istio kind and version rejects an unknown spec field (the spec schema is used)."""
    kinds = [c for c in _istio(crds) if c.group.endswith(".istio.io") and c.served]
    assert len({c.kind for c in kinds}) >= 10, [c.kind for c in kinds]
    for crd in kinds:
        body = {
            "apiVersion": crd.api_version,
            "kind": crd.kind,
            "metadata": {"name": "probe", "namespace": "default"},
            "spec": {"notAFieldOfThisKind": True},
        }
        problems = crds.errors(body)
        assert any(p.startswith("spec:") and "'notAFieldOfThisKind' was unexpected" in p for p in problems), (crd, problems)


def test_chaos_mesh_objects_are_validated(crds) -> None:
    if "chaos-mesh.org" not in crds.groups:
        pytest.skip(f"{SCHEMAS / schemas.CHAOS_MESH_CRDS} is missing")
    assert crds.errors(NETWORK_CHAOS) == []
    problems = crds.errors(_with(NETWORK_CHAOS, "spec.action", "explode"))
    assert any(p.startswith("spec.action:") and "'explode' is not one of" in p for p in problems), problems
    problems = crds.errors(_with(NETWORK_CHAOS, "spec.selector", delete=True))
    assert any(p.startswith("spec:") and "'selector' is a required property" in p for p in problems), problems
    problems = crds.errors(_with(NETWORK_CHAOS, "spec.target.selecter", {}))
    assert any(p.startswith("spec.target:") and "'selecter' was unexpected" in p for p in problems), problems


def test_every_crd_converts_to_a_usable_json_schema(crds) -> None:
    """The converted schemas of all shipped CRDs are valid JSON Schema whose patterns compile."""
    assert len(crds) > 0
    for crd in crds:
        schema = schemas.crd_root_schema(crd.openapi, crd.group, crd.version, crd.kind)
        try:
            schemas.KubernetesValidator.check_schema(schema)
        except Exception as exc:  # noqa: BLE001 - report which CRD
            pytest.fail(f"{crd.api_version} {crd.kind} ({crd.source}): {exc}", pytrace=False)


def test_core_objects_are_validated_strictly() -> None:
    core = _core()
    assert core.errors(DEPLOYMENT) == []
    problems = core.errors(_with(DEPLOYMENT, "spec.template.spec.containers[0].imagee", "x"))
    assert any(p.startswith("spec.template.spec.containers[0]:") and "'imagee' was unexpected" in p for p in problems), problems
    problems = core.errors(_with(DEPLOYMENT, "spec.replicas", "one"))
    assert any(p.startswith("spec.replicas:") for p in problems), problems
    problems = core.errors(_with(DEPLOYMENT, "apiVersion", "apps/v1beta1"))
    assert problems and "serves no Deployment in apps/v1beta1" in problems[0], problems
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "echo", "labels": {"istio-injection": True}}}
    assert core.errors(namespace), "a boolean label value must fail"


def test_core_metadata_name_and_label_rules() -> None:
    assert schemas.metadata_errors(DEPLOYMENT) == []
    problems = schemas.metadata_errors(_with(DEPLOYMENT, "metadata.name", "Echo_Server"))
    assert any(p.startswith("metadata.name:") for p in problems), problems
    problems = schemas.metadata_errors(_with(DEPLOYMENT, "metadata.labels", {"version": "v1/beta"}))
    assert any(p.startswith("metadata.labels.version:") for p in problems), problems
    problems = schemas.metadata_errors(_with(DEPLOYMENT, "metadata.labels", {"x" * 64: "v"}))
    assert problems, "a label key longer than 63 characters must fail"


def _chart(name: str) -> schemas.Chart:
    chart = schemas.CHARTS[name]
    missing = [f for f in (chart.defaults, chart.schema) if f and not (SCHEMAS / f).is_file()]
    if missing:
        pytest.skip(f"missing: {missing}")
    return chart


def test_gateway_values_schema_violation_fails() -> None:
    chart = _chart("gateway")
    good = {"name": "istio-eastwestgateway", "networkGateway": "eu-net", "service": {"type": "LoadBalancer"}}
    assert schemas.chart_values_errors(SCHEMAS, chart, good) == []
    # the chart's schema types networkGateway as a string
    problems = schemas.chart_values_errors(SCHEMAS, chart, {**good, "networkGateway": 5})
    assert any(p.startswith("networkGateway:") and "5 is not of type 'string'" in p for p in problems), problems
    # top-level additionalProperties: false in the schema
    problems = schemas.chart_values_errors(SCHEMAS, chart, {**good, "networkGatway": "eu-net"})
    assert any("'networkGatway' was unexpected" in p for p in problems), problems
    # the schema does not close service; the chart defaults do
    problems = schemas.chart_values_errors(SCHEMAS, chart, {**good, "service": {"tpye": "LoadBalancer"}})
    assert "service.tpye: not a value of the chart" in problems, problems


def test_istiod_values_with_misspelt_path_is_reported() -> None:
    chart = _chart("istiod")
    good: dict[str, Any] = {
        "global": {"meshID": "training-mesh", "multiCluster": {"clusterName": "eu"}, "network": "eu-net"},
        "meshConfig": {"trustDomain": "corp.local"},
    }
    assert schemas.chart_values_errors(SCHEMAS, chart, good) == []
    bad = copy.deepcopy(good)
    bad["global"]["meshId"] = bad["global"].pop("meshID")
    problems = schemas.chart_values_errors(SCHEMAS, chart, bad)
    assert problems == ["global.meshId: not a value of the chart (did you mean global.meshID?)"], problems
    bad = copy.deepcopy(good)
    bad["global"]["multiCluster"]["clustername"] = bad["global"]["multiCluster"].pop("clusterName")
    bad["pilot"] = {"env": {}}
    problems = schemas.chart_values_errors(SCHEMAS, chart, bad)
    assert "global.multiCluster.clustername: not a value of the chart (did you mean global.multiCluster.clusterName?)" in problems
    assert "pilot: not a value of the chart" in problems, problems
    problems = schemas.chart_values_errors(SCHEMAS, chart, {"_internal_defaults_do_not_set": {"global": {}}})
    assert problems and problems[0].startswith("_internal_defaults_do_not_set: not a value of the chart"), problems
    problems = schemas.chart_values_errors(SCHEMAS, chart, {"global": {"network": {"name": "eu-net"}}})
    assert problems == ["global.network: the chart expects a str here, got a map"], problems


# --------------------------------------------------------------------------------------------
# The OpenAPI -> JSON Schema conversion, on small schemas


def _validate(openapi: dict[str, Any], instance: Any) -> list[str]:
    return schemas.error_lines(schemas.object_validator(schemas.crd_to_jsonschema(openapi)).iter_errors(instance))


def test_conversion_int_or_string_and_nullable() -> None:
    port = {"type": "object", "properties": {"p": {"x-kubernetes-int-or-string": True}}}
    assert _validate(port, {"p": 8080}) == [] and _validate(port, {"p": "http"}) == []
    assert _validate(port, {"p": 1.5}) and _validate(port, {"p": [1]})
    nullable = {"type": "object", "properties": {"s": {"type": "string", "enum": ["A"], "nullable": True}}}
    assert _validate(nullable, {"s": None}) == [] and _validate(nullable, {"s": "A"}) == []
    assert _validate(nullable, {"s": "B"})
    assert _validate({"type": "object", "properties": {"s": {"type": "string"}}}, {"s": None})


def test_conversion_unknown_fields() -> None:
    closed = {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}}}}}
    assert _validate(closed, {"a": {"b": "x"}}) == []
    assert _validate(closed, {"a": {"c": "x"}}) == ["a: Additional properties are not allowed ('c' was unexpected)"]
    open_ = {"type": "object", "properties": {"a": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    assert _validate(open_, {"a": {"anything": {"goes": 1}}}) == []
    as_map = {"type": "object", "properties": {"a": {"type": "object", "additionalProperties": {"type": "string"}}}}
    assert _validate(as_map, {"a": {"k": "v"}}) == [] and _validate(as_map, {"a": {"k": 1}})
    # value validations under oneOf name fields without declaring them: not closed there
    one_of = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "oneOf": [{"not": {"anyOf": [{"required": ["a"]}, {"required": ["b"]}]}}, {"required": ["a"]}, {"required": ["b"]}],
    }
    assert _validate(one_of, {"a": "x"}) == [] and _validate(one_of, {}) == []
    assert _validate(one_of, {"a": "x", "b": "y"})


def test_conversion_bounds_and_lists() -> None:
    exclusive = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "exclusiveMinimum": True}}}
    assert _validate(exclusive, {"n": 1}) == [] and _validate(exclusive, {"n": 0})
    as_set = {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"}
    assert _validate(as_set, ["a", "b"]) == [] and _validate(as_set, ["a", "a"])
    as_map = {
        "type": "array",
        "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}},
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
    }
    assert _validate(as_map, [{"name": "a", "port": 1}, {"name": "b", "port": 1}]) == []
    assert _validate(as_map, [{"name": "a", "port": 1}, {"name": "a", "port": 2}])
    assert _validate({"type": "string", "format": "byte"}, "not base64!")
    assert _validate({"type": "string", "format": "byte"}, "aGVsbG8=") == []
