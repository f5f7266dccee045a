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

from pathlib import Path
from typing import Any

import pytest

from eastwest.schemas import CRD_GROUPS, common, core, crd, helm
from eastwest.support import install, manifest
from eastwest.support.errors import ConfigError, ManifestError
from eastwest.support.topology import load_topology

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"
TOPOLOGY = MANIFESTS / "topology.yaml"
SCHEMAS = Path(__file__).resolve().parents[1].parent / "shared" / "schemas"

pytestmark = pytest.mark.skipif(
    not SCHEMAS.is_dir(),
    reason=f"the upstream schemas are not there: {SCHEMAS} (shared/schemas beside the repository) is missing",
)

# Groups whose CRDs shared/schemas ships: an object of these groups must match them (eastwest/schemas).


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
def crds() -> crd.CrdCatalog:
    return crd.crd_catalog(SCHEMAS)


def _core() -> core.CoreSchemas:
    try:
        return core.core_schemas()
    except core.CoreSchemasUnavailable as exc:
        pytest.skip(f"built-in kinds not validated: {exc}")


def document_problems(body: dict[str, Any], crds: crd.CrdCatalog) -> list[str]:
    """Why the API server would reject ``body``; skips when no schema for its group is shipped."""
    group, _ = common.split_api_version(str(body.get("apiVersion")))
    if group in CRD_GROUPS or group in crds.groups:
        if group not in crds.groups:
            pytest.skip(f"{group} objects not validated: {SCHEMAS / CRD_GROUPS[group]} is missing")
        return crds.errors(body)
    if common.is_builtin_group(group):
        core = _core()
        return core.errors(body) + [f"{p} (API server name/label rules)" for p in common.metadata_errors(body)]
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
    chart = helm.chart_for_values_file(name)
    if chart is None:
        pytest.fail(
            f"{name}: no chart known for this values file; name it after its chart (a name with "
            f"'istiod', 'gateway' or 'chaos-mesh' in it, or base.values.yaml) or map it in eastwest/schemas/helm.py",
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
    problems = helm.chart_values_errors(SCHEMAS, chart, values)
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
