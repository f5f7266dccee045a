"""Faults on Kubernetes: Chaos Mesh resources created and waited on, and HTTP faults through Istio.

PodChaos and NetworkChaos are created as they are (labelled as ours) and waited on the way
Chaos Mesh's own e2e tests wait (``../shared/notes/chaos-failover.md`` §1.6,
``controllers/common/condition/controller.go``): ``Selected`` and ``AllInjected`` true, failing
fast on a container record event of type ``Failed`` or on ``Paused`` without ``Selected`` (the
selector matched nothing); after delete, ``AllRecovered`` while it still exists, then gone.

HTTPChaos does not act on pods with an Istio sidecar: requests bypass chaos-tproxy and pods
restart on recovery (chaos-mesh/chaos-mesh#4389, open). On sidecar pods it becomes Istio's own
fault injection: an EnvoyFilter inserting Envoy's HTTP fault filter (``envoy.filters.http.fault``)
before the router of the pods' inbound listener (SIDECAR_INBOUND), so the server's sidecar
answers the fault and a client's outlier detection sees it, as it would see the app fail. What
the filter cannot express (a method or path match, a response target, replace/patch, a mode
other than ``all``) is refused by name.
"""

from __future__ import annotations

from typing import Any

from eastwest.backends.kube import render, traffic
from eastwest.backends.kube.api import ClusterApi
from eastwest.mesh import FaultStatus
from eastwest.schemas import Schemas, SchemaUnavailable
from eastwest.support.errors import FaultUnsupported, ManifestError
from eastwest.support.manifest import Document
from eastwest.support.waiting import WaitTimeout, wait_until

GROUP_VERSION = "chaos-mesh.org/v1alpha1"
#: what Chaos Mesh executes here, as Kind/action
CHAOS_MESH_FAULTS = frozenset({"PodChaos/pod-kill", "PodChaos/pod-failure", "PodChaos/container-kill",
                               "NetworkChaos/partition", "NetworkChaos/delay", "NetworkChaos/loss", "NetworkChaos/duplicate",
                               "NetworkChaos/corrupt", "NetworkChaos/bandwidth"})
#: what Istio's fault filter executes for HTTPChaos on sidecar pods (no Chaos Mesh needed)
ISTIO_HTTP_FAULTS = frozenset({"HTTPChaos/abort", "HTTPChaos/delay"})
FAULT_FILTER = "envoy.filters.http.fault"
#: the HTTP status the server's sidecar answers for HTTPChaos abort (Chaos Mesh closes the connection;
#: Envoy's fault filter can only answer a status, and 503 is what a dead upstream looks like to Istio)
ABORT_STATUS = 503


def fault_name(body: dict[str, Any]) -> str:
    """``Kind/action`` of a fault document (HTTPChaos has no action field: abort or delay)."""
    kind, spec = body.get("kind"), body.get("spec") or {}
    if kind == "HTTPChaos":
        return f"HTTPChaos/{'abort' if spec.get('abort') else 'delay' if spec.get('delay') else 'other'}"
    return f"{kind}/{spec.get('action')}"


def conditions(obj: dict[str, Any]) -> dict[str, bool]:
    return {c["type"]: c.get("status") == "True" for c in (obj.get("status") or {}).get("conditions") or []}


def records(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list((((obj.get("status") or {}).get("experiment") or {}).get("containerRecords")) or [])


def status_of(obj: dict[str, Any], message: str = "") -> FaultStatus:
    c = conditions(obj)
    return FaultStatus(str(obj.get("kind")), str(obj["metadata"]["name"]), c.get("Selected", False), c.get("AllInjected", False),
                       c.get("AllRecovered", False), tuple(f"{r.get('id')}: {r.get('phase')}" for r in records(obj)), message)


def failed_events(obj: dict[str, Any]) -> list[str]:
    return [f"{r.get('id')}: {e.get('operation')} failed: {e.get('message')}"
            for r in records(obj) for e in r.get("events") or [] if e.get("type") == "Failed"]


class Faults:
    """Injects and recovers faults in one cluster."""

    def __init__(self, api: ClusterApi, *, within: float, interval: float, schemas: Schemas | None = None,
                 chaos_mesh: bool = True, sidecar_pods: Any = None):
        self.api, self.within, self.interval = api, within, interval
        self.schemas = schemas
        self.chaos_mesh = chaos_mesh
        #: (namespace, label selector) -> pods with an istio-proxy container (given by the cluster)
        self.sidecar_pods = sidecar_pods

    @property
    def supported(self) -> frozenset[str]:
        return ISTIO_HTTP_FAULTS | (CHAOS_MESH_FAULTS if self.chaos_mesh else frozenset())

    def _check(self, body: dict[str, Any], source: str) -> None:
        if self.schemas is None:
            return
        try:
            problems = self.schemas.errors(body)
        except SchemaUnavailable:
            return  # the API server's strict field validation still applies
        if problems:
            raise ManifestError(f"{body['kind']} {body['metadata']['name']} ({source}) would be rejected: " + "; ".join(problems))

    def inject(self, doc: Document) -> FaultStatus:
        name = fault_name(doc.body)
        if name.startswith("HTTPChaos/") and self._on_sidecars(doc.body):
            return self._inject_istio(doc)
        if name not in self.supported or (name.startswith("HTTPChaos/") and not self.chaos_mesh):
            why = "" if self.chaos_mesh else " (Chaos Mesh is not installed in this cluster)"
            raise FaultUnsupported(f"{doc.ref}: {name} is not supported here{why}; supported: {', '.join(sorted(self.supported))}")
        body = render.with_label(doc.body)
        self._check(body, doc.source)
        self.api.apply(body)
        ns, kind, cr = body["metadata"].get("namespace"), body["kind"], body["metadata"]["name"]
        last: dict[str, Any] = {}
        refused: list[str] = []

        def landed() -> bool:
            last.clear()
            last.update(self.api.get(GROUP_VERSION, kind, cr, ns) or {})
            c = conditions(last)
            refused[:] = failed_events(last)
            if c.get("Paused") and not c.get("Selected"):
                refused.append("the selector matched no pod (Paused without Selected)")
            return bool(refused) or bool(c.get("Selected") and c.get("AllInjected"))

        # not raising here: the seam (Cluster.inject) raises FaultNotInjected and still recovers
        try:
            wait_until(landed, within=self.within, interval=self.interval, what=f"{doc.ref} Selected and AllInjected")
        except WaitTimeout as exc:
            return status_of(last, str(exc)) if last else FaultStatus(kind, cr, False, False, False, (), str(exc))
        if refused:
            failed = status_of(last, "Chaos Mesh reports: " + "; ".join(refused))
            return FaultStatus(failed.kind, failed.name, failed.selected, False, False, failed.records, failed.message)
        return status_of(last)

    def recover(self, doc: Document) -> FaultStatus:
        if fault_name(doc.body).startswith("HTTPChaos/") and self.api.get(*_envoy_filter_ref(doc.body)) is not None:
            return self._recover_istio(doc)
        ns, kind, cr = doc.namespace, doc.kind, doc.name
        self.api.delete(GROUP_VERSION, kind, cr, ns)
        seen: dict[str, Any] = {}

        def gone() -> bool:
            obj = self.api.get(GROUP_VERSION, kind, cr, ns)
            if obj is not None:
                seen.update(obj)  # a finalizer holds it until every record is recovered
            return obj is None

        wait_until(gone, within=self.within, interval=self.interval, what=f"{doc.ref} recovered and deleted")
        recovered = FaultStatus(kind, cr, True, False, True, tuple(f"{r.get('id')}: Not Injected" for r in records(seen)))
        return recovered

    # ---- HTTPChaos on sidecar pods: Istio's fault filter -------------------------------------------

    def _on_sidecars(self, body: dict[str, Any]) -> bool:
        namespace, labels = _selected(body)
        return bool(self.sidecar_pods and self.sidecar_pods(namespace, labels))

    def _inject_istio(self, doc: Document) -> FaultStatus:
        envoy_filter = http_chaos_envoy_filter(doc.body)
        self._check(envoy_filter, doc.source)
        self.api.apply(envoy_filter)
        namespace, labels = _selected(doc.body)
        pods: list[str] = []

        def in_place() -> bool:
            pods[:] = self.sidecar_pods(namespace, labels)
            return bool(pods) and all(self._has_fault(namespace, pod) for pod in pods)

        message = (f"HTTPChaos on sidecar pods runs as Istio fault injection (EnvoyFilter {envoy_filter['metadata']['name']}, "
                   "envoy.filters.http.fault on SIDECAR_INBOUND): Chaos Mesh's HTTPChaos does not act on them (chaos-mesh#4389)")
        try:
            wait_until(in_place, within=self.within, interval=self.interval, what=f"{doc.ref}: fault filter in every selected sidecar")
        except WaitTimeout as exc:
            return FaultStatus("HTTPChaos", doc.name, bool(pods), False, False, tuple(f"{namespace}/{p}" for p in pods), f"{message}; {exc}")
        return FaultStatus("HTTPChaos", doc.name, True, True, False, tuple(f"{namespace}/{p}: Injected" for p in pods), message)

    def _recover_istio(self, doc: Document) -> FaultStatus:
        self.api.delete(*_envoy_filter_ref(doc.body))
        namespace, labels = _selected(doc.body)
        wait_until(lambda: not any(self._has_fault(namespace, pod) for pod in self.sidecar_pods(namespace, labels)),
                   within=self.within, interval=self.interval, what=f"{doc.ref}: fault filter gone from every selected sidecar")
        return FaultStatus("HTTPChaos", doc.name, True, False, True, (), "Istio fault filter removed")

    def _has_fault(self, namespace: str, pod: str) -> bool:
        dump = self.api.exec(namespace, pod, "istio-proxy", traffic.CONFIG_DUMP, timeout=self.within)
        return FAULT_FILTER in dump.stdout


def _selected(body: dict[str, Any]) -> tuple[str, dict[str, str]]:
    spec = body.get("spec") or {}
    selector = spec.get("selector") or {}
    namespaces = selector.get("namespaces") or [body["metadata"].get("namespace")]
    return str(namespaces[0]), dict(selector.get("labelSelectors") or {})


def _envoy_filter_ref(body: dict[str, Any]) -> tuple[str, str, str, str]:
    namespace, _ = _selected(body)
    return ("networking.istio.io/v1alpha3", "EnvoyFilter", f"httpchaos-{body['metadata']['name']}", namespace)


def http_chaos_envoy_filter(body: dict[str, Any]) -> dict[str, Any]:
    """An HTTPChaos (abort or delay of requests) as an Istio EnvoyFilter on the selected pods' inbound sidecar."""
    spec = body.get("spec") or {}
    ref = f"HTTPChaos {body['metadata'].get('namespace')}/{body['metadata']['name']}"
    selector = spec.get("selector") or {}
    # duration: the filter stays until the fault is recovered (the end of the inject block)
    unsupported = [f for f in ("method", "code", "replace", "patch", "request_headers", "response_headers", "tls", "remoteCluster",
                               "duration") if spec.get(f)]
    unsupported += [f"selector.{k}" for k in selector if k not in ("namespaces", "labelSelectors")]
    if spec.get("path") not in (None, "", "*"):
        unsupported.append(f"path {spec['path']!r} (only '*')")
    if spec.get("target") != "Request":
        unsupported.append(f"target {spec.get('target')!r} (only Request)")
    if spec.get("mode") != "all":
        unsupported.append(f"mode {spec.get('mode')!r} (only all: the filter acts on every selected sidecar)")
    if len(selector.get("namespaces") or []) > 1:
        unsupported.append("more than one namespace")
    if not selector.get("labelSelectors"):
        unsupported.append("a selector without labelSelectors (the EnvoyFilter needs a workload selector)")
    if unsupported:
        raise FaultUnsupported(f"{ref}: on sidecar pods HTTPChaos runs as Istio fault injection, which cannot honour: "
                               + ", ".join(unsupported))
    every = {"numerator": 100, "denominator": "HUNDRED"}
    fault: dict[str, Any] = {}
    if spec.get("abort"):
        fault["abort"] = {"http_status": ABORT_STATUS, "percentage": every}
    if spec.get("delay"):
        fault["delay"] = {"fixed_delay": str(spec["delay"]), "percentage": every}
    namespace, labels = _selected(body)
    chain: dict[str, Any] = {"filter": {"name": "envoy.filters.network.http_connection_manager",
                                        "subFilter": {"name": "envoy.filters.http.router"}}}
    if spec.get("port"):
        # the inbound listener has one filter chain per pod port, matched on it (HTTPChaos names the app's port)
        chain["destinationPort"] = int(spec["port"])
    return {
        "apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter",
        "metadata": {"name": f"httpchaos-{body['metadata']['name']}", "namespace": namespace,
                     "labels": {**render.MANAGED_BY, "eastwest.io/httpchaos": str(body["metadata"]["name"])}},
        "spec": {
            "workloadSelector": {"labels": labels},
            "configPatches": [{
                "applyTo": "HTTP_FILTER",
                "match": {"context": "SIDECAR_INBOUND", "listener": {"filterChain": chain}},
                "patch": {"operation": "INSERT_BEFORE", "value": {
                    "name": FAULT_FILTER,
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault", **fault}}},
            }],
        },
    }
