"""The validators of eastwest/schemas can fail: each negative case starts from an object that passes.

Unit tests of the OpenAPI -> JSON Schema conversion, the CRD catalogue, the strict core schemas and
the Helm values checks; ``test_manifest_schemas.py`` applies them to the project's real manifests.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from eastwest.schemas import common, core, crd, helm

SCHEMAS = Path(__file__).resolve().parents[1].parent / "shared" / "schemas"

pytestmark = pytest.mark.skipif(
    not SCHEMAS.is_dir(),
    reason=f"the upstream schemas are not there: {SCHEMAS} (shared/schemas beside the repository) is missing",
)


@pytest.fixture(scope="session")
def crds() -> crd.CrdCatalog:
    return crd.crd_catalog(SCHEMAS)


def _core() -> core.CoreSchemas:
    try:
        return core.core_schemas()
    except core.CoreSchemasUnavailable as exc:
        pytest.skip(f"built-in kinds not validated: {exc}")


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


def _istio(crds: crd.CrdCatalog) -> crd.CrdCatalog:
    if "networking.istio.io" not in crds.groups:
        pytest.skip(f"{SCHEMAS / crd.ISTIO_CRDS} is missing")
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
    for version in kinds:
        body = {
            "apiVersion": version.api_version,
            "kind": version.kind,
            "metadata": {"name": "probe", "namespace": "default"},
            "spec": {"notAFieldOfThisKind": True},
        }
        problems = crds.errors(body)
        assert any(p.startswith("spec:") and "'notAFieldOfThisKind' was unexpected" in p for p in problems), (version, problems)


def test_chaos_mesh_objects_are_validated(crds) -> None:
    if "chaos-mesh.org" not in crds.groups:
        pytest.skip(f"{SCHEMAS / crd.CHAOS_MESH_CRDS} is missing")
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
    for version in crds:
        schema = crd.crd_root_schema(version.openapi, version.group, version.version, version.kind)
        try:
            common.KubernetesValidator.check_schema(schema)
        except Exception as exc:  # noqa: BLE001 - report which CRD
            pytest.fail(f"{version.api_version} {version.kind} ({version.source}): {exc}", pytrace=False)


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
    assert common.metadata_errors(DEPLOYMENT) == []
    problems = common.metadata_errors(_with(DEPLOYMENT, "metadata.name", "Echo_Server"))
    assert any(p.startswith("metadata.name:") for p in problems), problems
    problems = common.metadata_errors(_with(DEPLOYMENT, "metadata.labels", {"version": "v1/beta"}))
    assert any(p.startswith("metadata.labels.version:") for p in problems), problems
    problems = common.metadata_errors(_with(DEPLOYMENT, "metadata.labels", {"x" * 64: "v"}))
    assert problems, "a label key longer than 63 characters must fail"


def _chart(name: str) -> helm.Chart:
    chart = helm.CHARTS[name]
    missing = [f for f in (chart.defaults, chart.schema) if f and not (SCHEMAS / f).is_file()]
    if missing:
        pytest.skip(f"missing: {missing}")
    return chart


def test_gateway_values_schema_violation_fails() -> None:
    chart = _chart("gateway")
    good = {"name": "istio-eastwestgateway", "networkGateway": "eu-net", "service": {"type": "LoadBalancer"}}
    assert helm.chart_values_errors(SCHEMAS, chart, good) == []
    # the chart's schema types networkGateway as a string
    problems = helm.chart_values_errors(SCHEMAS, chart, {**good, "networkGateway": 5})
    assert any(p.startswith("networkGateway:") and "5 is not of type 'string'" in p for p in problems), problems
    # top-level additionalProperties: false in the schema
    problems = helm.chart_values_errors(SCHEMAS, chart, {**good, "networkGatway": "eu-net"})
    assert any("'networkGatway' was unexpected" in p for p in problems), problems
    # the schema does not close service; the chart defaults do
    problems = helm.chart_values_errors(SCHEMAS, chart, {**good, "service": {"tpye": "LoadBalancer"}})
    assert "service.tpye: not a value of the chart" in problems, problems


def test_istiod_values_with_misspelt_path_is_reported() -> None:
    chart = _chart("istiod")
    good: dict[str, Any] = {
        "global": {"meshID": "training-mesh", "multiCluster": {"clusterName": "eu"}, "network": "eu-net"},
        "meshConfig": {"trustDomain": "corp.local"},
    }
    assert helm.chart_values_errors(SCHEMAS, chart, good) == []
    bad = copy.deepcopy(good)
    bad["global"]["meshId"] = bad["global"].pop("meshID")
    problems = helm.chart_values_errors(SCHEMAS, chart, bad)
    assert problems == ["global.meshId: not a value of the chart (did you mean global.meshID?)"], problems
    bad = copy.deepcopy(good)
    bad["global"]["multiCluster"]["clustername"] = bad["global"]["multiCluster"].pop("clusterName")
    bad["pilot"] = {"env": {}}
    problems = helm.chart_values_errors(SCHEMAS, chart, bad)
    assert "global.multiCluster.clustername: not a value of the chart (did you mean global.multiCluster.clusterName?)" in problems
    assert "pilot: not a value of the chart" in problems, problems
    problems = helm.chart_values_errors(SCHEMAS, chart, {"_internal_defaults_do_not_set": {"global": {}}})
    assert problems and problems[0].startswith("_internal_defaults_do_not_set: not a value of the chart"), problems
    problems = helm.chart_values_errors(SCHEMAS, chart, {"global": {"network": {"name": "eu-net"}}})
    assert problems == ["global.network: the chart expects a str here, got a map"], problems


# --------------------------------------------------------------------------------------------
# The OpenAPI -> JSON Schema conversion, on small schemas


def _validate(openapi: dict[str, Any], instance: Any) -> list[str]:
    return common.error_lines(common.object_validator(crd.crd_to_jsonschema(openapi)).iter_errors(instance))


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
