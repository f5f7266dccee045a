"""Reading a Chaos Mesh 2.8.3 document into a :class:`~eastwest.backends.lab.chaos.spec.Fault`, or refusing it by name.

Every field the lab acts on is read with Chaos Mesh's meaning and defaults (its webhooks:
``direction`` defaults to ``to``, an empty ``namespaces`` to the experiment's own namespace); a
field the lab cannot honour raises :class:`FaultUnsupported` naming it, and an invalid value
(what Chaos Mesh's webhooks would reject) raises :class:`ManifestError`. Nothing is silently ignored.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from eastwest.backends.lab.chaos.spec import (
    ACTIONS,
    API_VERSION,
    FIELD_SELECTORS,
    MODES,
    PHASES,
    REFUSED_KINDS,
    Bandwidth,
    Expression,
    Fault,
    HttpFault,
    Netem,
    PodSelection,
    Selector,
    go_duration,
)
from eastwest.support.errors import FaultUnsupported, ManifestError

ONE_SHOT = "pod-kill and container-kill are one-shot in Chaos Mesh: nothing is recovered after a duration"
SELECTOR = ("namespaces", "labelSelectors", "expressionSelectors", "annotationSelectors", "fieldSelectors", "podPhaseSelectors", "pods")
SELECTOR_REFUSED = {"nodes": "lab pods have no Node objects to select by", "nodeSelectors": "lab pods have no Node objects to select by"}
LATENCY = re.compile(r"^[0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h)$")  # networkchaos_types.go
RATE = re.compile(r"^\s*(\d+)\s*(kbit|mbit|gbit|tbit|tbps|gbps|mbps|kbps|bps|bit)\s*$", re.I)
# Chaos Mesh hands `rate` to tc as text; tc reads "bps" as bytes and "bit" as bits, SI prefixes (tc_util.c)
RATE_BYTES = {"bit": 1 / 8, "kbit": 125, "mbit": 125e3, "gbit": 125e6, "tbit": 125e9,
              "bps": 1, "kbps": 1e3, "mbps": 1e6, "gbps": 1e9, "tbps": 1e12}
HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT")


class _Reader:
    """Reads one document, naming the document and field in every refusal."""

    def __init__(self, kind: str, ref: str):
        self.kind = kind
        self.ref = ref

    def unsupported(self, path: str, why: str) -> FaultUnsupported:
        return FaultUnsupported(f"{self.ref}: {path} is not supported by the lab: {why}")

    def invalid(self, path: str, why: str) -> ManifestError:
        return ManifestError(f"{self.ref}: {path}: {why}")

    def keys(self, obj: Any, path: str, allowed: tuple[str, ...], refused: dict[str, str] | None = None) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise self.invalid(path, f"must be a mapping, got {type(obj).__name__}")
        for key in obj:
            if refused and key in refused:
                raise self.unsupported(f"{path}.{key}", refused[key])
            if key not in allowed:
                raise self.unsupported(f"{path}.{key}", f"the lab implements {', '.join(allowed)} here")
        return obj

    def strings(self, value: Any, path: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.invalid(path, "must be a list of strings")
        return tuple(value)

    def string_map(self, value: Any, path: str) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, dict):
            raise self.invalid(path, "must be a mapping of strings")
        return tuple(sorted((str(k), str(v)) for k, v in value.items()))

    def percent(self, value: Any, path: str) -> float:
        try:
            pct = float(str(value))
        except ValueError:
            raise self.invalid(path, f"{value!r} is not a number") from None
        if not 0 <= pct <= 100:
            raise self.invalid(path, f"{value!r} must be between 0 and 100")
        return pct / 100

    def no_correlation(self, block: dict[str, Any], path: str) -> None:
        corr = block.get("correlation")
        try:
            zero = corr is None or float(str(corr) or 0) == 0
        except ValueError:
            raise self.invalid(f"{path}.correlation", f"{corr!r} is not a number") from None
        if not zero:
            raise self.unsupported(f"{path}.correlation", "netem's correlated randomness is not implemented (nf_tables draws each packet independently); use 0")

    def selection(self, obj: dict[str, Any], path: str, namespace: str) -> PodSelection:
        mode = obj.get("mode")
        if mode not in MODES:
            raise self.invalid(f"{path}mode", f"{mode!r} must be one of {', '.join(MODES)}")
        value = obj.get("value")
        if mode in ("one", "all"):
            if value not in (None, ""):
                raise self.unsupported(f"{path}value", f"mode {mode} takes no value (Chaos Mesh does not read it)")
            value = ""
        else:
            try:
                number = int(str(value))
            except ValueError:
                raise self.invalid(f"{path}value", f"mode {mode} needs an integer value, got {value!r}") from None
            if number <= 0 or mode != "fixed" and number > 100:
                raise self.invalid(f"{path}value", f"{value!r} is out of range for mode {mode}")
        return PodSelection(self.selector(obj.get("selector"), f"{path}selector", namespace), str(mode), str(value))

    def selector(self, obj: Any, path: str, namespace: str) -> Selector:
        sel = self.keys(obj if obj is not None else {}, path, SELECTOR, SELECTOR_REFUSED)
        if sel.get("pods") and set(sel) - {"pods", "namespaces"}:
            others = ", ".join(sorted(set(sel) - {"pods", "namespaces"}))
            raise self.unsupported(f"{path}.pods", f"Chaos Mesh ignores the other selectors ({others}) when pods is set: name the pods alone")
        expressions = []
        for i, e in enumerate(sel.get("expressionSelectors") or []):
            e = self.keys(e, f"{path}.expressionSelectors[{i}]", ("key", "operator", "values"))
            if e.get("operator") not in ("In", "NotIn", "Exists", "DoesNotExist"):
                raise self.invalid(f"{path}.expressionSelectors[{i}].operator", f"{e.get('operator')!r} is not In, NotIn, Exists or DoesNotExist")
            expressions.append(Expression(str(e.get("key")), str(e["operator"]), self.strings(e.get("values") or [], f"{path}.expressionSelectors[{i}].values")))
        fields = self.string_map(sel.get("fieldSelectors") or {}, f"{path}.fieldSelectors")
        for key, _ in fields:
            if key not in FIELD_SELECTORS:
                raise self.unsupported(f"{path}.fieldSelectors.{key}", f"the lab selects by {', '.join(FIELD_SELECTORS)}")
        phases = self.strings(sel.get("podPhaseSelectors") or [], f"{path}.podPhaseSelectors")
        for phase in phases:
            if phase not in PHASES:
                raise self.invalid(f"{path}.podPhaseSelectors", f"{phase!r} is not a pod phase ({', '.join(PHASES)})")
        pods = sel.get("pods") or {}
        if not isinstance(pods, dict):
            raise self.invalid(f"{path}.pods", "must map namespaces to lists of pod names")
        return Selector(
            # the webhook's default (common_webhook.go PodSelector.Default): the experiment's namespace
            namespaces=self.strings(sel.get("namespaces") or [namespace], f"{path}.namespaces"),
            labels=self.string_map(sel.get("labelSelectors") or {}, f"{path}.labelSelectors"),
            expressions=tuple(expressions),
            annotations=self.string_map(sel.get("annotationSelectors") or {}, f"{path}.annotationSelectors"),
            fields=fields,
            phases=phases,
            pods=tuple(sorted((str(ns), self.strings(names, f"{path}.pods.{ns}")) for ns, names in pods.items())),
        )


def parse(body: dict[str, Any], source: str) -> Fault:
    """Read a Chaos Mesh document; raises FaultUnsupported or ManifestError naming the field."""
    kind = str(body.get("kind"))
    meta = body.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default")
    ref = f"{kind} {namespace}/{meta.get('name')} ({source})"
    if body.get("apiVersion") != API_VERSION:
        raise FaultUnsupported(f"{ref}: apiVersion {body.get('apiVersion')!r} is not Chaos Mesh's {API_VERSION}")
    if kind in REFUSED_KINDS:
        raise FaultUnsupported(f"{ref}: {kind} is not supported by the lab: {REFUSED_KINDS[kind]}")
    if kind not in ACTIONS:
        raise FaultUnsupported(f"{ref}: {kind} is not supported by the lab (it injects {', '.join(ACTIONS)})")
    r = _Reader(kind, ref)
    r.keys(body, "", ("apiVersion", "kind", "metadata", "spec"))
    r.keys(meta, "metadata", ("name", "namespace", "labels", "annotations"))
    if not meta.get("name"):
        raise r.invalid("metadata.name", "is required")
    annotations = meta.get("annotations") or {}
    if str(annotations.get("experiment.chaos-mesh.org/pause", "")).lower() == "true":
        raise r.unsupported("metadata.annotations.experiment.chaos-mesh.org/pause", "pausing is not implemented: recover the fault and inject it again")
    spec = body.get("spec") or {}
    duration = None
    if spec.get("duration") is not None:
        try:
            duration = go_duration(spec["duration"])
        except ValueError as exc:
            raise r.invalid("spec.duration", str(exc)) from None
    common = {"kind": kind, "namespace": namespace, "name": str(meta["name"]), "source": source, "duration": duration}
    if kind == "PodChaos":
        return _pod_chaos(r, spec, common)
    if kind == "NetworkChaos":
        return _network_chaos(r, spec, common)
    return _http_chaos(r, spec, common)


_REMOTE = {"remoteCluster": "the lab injects in the cluster it is called for: call the other cluster's inject"}


def _pod_chaos(r: _Reader, spec: dict[str, Any], common: dict[str, Any]) -> Fault:
    action = spec.get("action")
    if action not in ACTIONS["PodChaos"]:
        raise r.invalid("spec.action", f"{action!r} must be one of {', '.join(ACTIONS['PodChaos'])}")
    refused = dict(_REMOTE)
    if action != "pod-kill":
        refused["gracePeriod"] = f"only pod-kill reads gracePeriod ({action} does not)"
    if action != "container-kill":
        refused["containerNames"] = f"only container-kill reads containerNames ({action} acts on the whole pod)"
    if action != "pod-failure":
        refused["duration"] = ONE_SHOT
    r.keys(spec, "spec", ("action", "mode", "value", "selector", "duration", "gracePeriod", "containerNames"), refused)
    grace = spec.get("gracePeriod", 0)
    if not isinstance(grace, int) or isinstance(grace, bool) or grace < 0:
        raise r.invalid("spec.gracePeriod", f"{grace!r} must be a non-negative integer (seconds)")
    containers = r.strings(spec.get("containerNames") or [], "spec.containerNames")
    if action == "container-kill" and not containers:
        raise r.invalid("spec.containerNames", "container-kill needs the names of the containers to kill (podchaos_webhook.go)")
    return Fault(action=str(action), pods=r.selection(spec, "spec.", common["namespace"]), grace_period=grace,
                 containers=containers, **common)


_NETEM_BLOCKS = ("delay", "loss", "duplicate", "corrupt")


def _network_chaos(r: _Reader, spec: dict[str, Any], common: dict[str, Any]) -> Fault:
    action = spec.get("action")
    if action == "netem":
        raise r.unsupported("spec.action netem", "the lab runs one netem parameter per fault: use delay, loss, duplicate or corrupt")
    if action not in ACTIONS["NetworkChaos"]:
        raise r.invalid("spec.action", f"{action!r} must be one of netem, {', '.join(ACTIONS['NetworkChaos'])}")
    refused = {**_REMOTE, "device": "the lab faults every interface of the pod (Chaos Mesh's eth0)",
               "targetDevice": "the lab faults every interface of the target pods (Chaos Mesh's eth0)",
               "rate": "netem's rate is not implemented (use action bandwidth)"}
    for other in (*_NETEM_BLOCKS, "bandwidth"):
        if other != action:
            refused[other] = ("a partition takes no traffic-control parameters" if action == "partition" else
                              f"Chaos Mesh would merge it into the {action} fault; the lab injects only the action's own parameters")
    allowed = ("action", "mode", "value", "selector", "duration", "direction", "target", "externalTargets")
    r.keys(spec, "spec", allowed + ((str(action),) if action != "partition" else ()), refused)
    direction = spec.get("direction") or "to"  # the webhook's default (networkchaos_webhook.go)
    if direction not in ("to", "from", "both"):
        raise r.invalid("spec.direction", f"{direction!r} must be to, from or both")
    target = None
    if spec.get("target") is not None:
        r.keys(spec["target"], "spec.target", ("mode", "value", "selector"))
        target = r.selection(spec["target"], "spec.target.", common["namespace"])
    external = []
    for i, item in enumerate(r.strings(spec.get("externalTargets") or [], "spec.externalTargets")):
        try:
            external.append(ipaddress.IPv4Network(item, strict=False))
        except ValueError:
            raise r.unsupported(f"spec.externalTargets[{i}] {item!r}", "only IPv4 addresses and CIDRs: the lab has no DNS to resolve names") from None
    if action != "partition":  # the webhook skips these checks for partition (networkchaos_webhook.go Validate)
        if direction != "to" and external:
            raise r.invalid("spec.direction", "external targets cannot be used with `from` and `both` direction in netem action yet")
        if direction != "to" and target is None:
            raise r.invalid("spec.direction", "`from` and `both` direction cannot be used when targets is empty in netem action")
        if action not in spec:
            raise r.invalid(f"spec.{action}", f"action {action} needs its parameters in spec.{action}")
    netem = bandwidth = None
    if action == "delay":
        block = r.keys(spec["delay"], "spec.delay", ("latency", "jitter", "correlation"),
                       {"reorder": "netem's reordering is not implemented (jitter alone reorders, as in netem)"})
        r.no_correlation(block, "spec.delay")
        for key in ("latency", "jitter"):
            if key in block and not LATENCY.match(str(block[key])):
                raise r.invalid(f"spec.delay.{key}", f"{block[key]!r} is not a duration like 100ms")
        if "latency" not in block:
            raise r.invalid("spec.delay.latency", "is required")
        netem = Netem(latency=go_duration(block["latency"]), jitter=go_duration(block.get("jitter") or "0ms"))
    elif action in _NETEM_BLOCKS:
        block = r.keys(spec[action], f"spec.{action}", (action, "correlation"))
        r.no_correlation(block, f"spec.{action}")
        if action not in block:
            raise r.invalid(f"spec.{action}.{action}", "is required")
        netem = Netem(probability=r.percent(block[action], f"spec.{action}.{action}"))
    elif action == "bandwidth":
        why = "tbf's peak rate is not implemented (the lab sets rate, limit and buffer)"
        block = r.keys(spec["bandwidth"], "spec.bandwidth", ("rate", "limit", "buffer"), {"peakrate": why, "minburst": why})
        m = RATE.match(str(block.get("rate", "")))
        if not m:
            raise r.invalid("spec.bandwidth.rate", f"{block.get('rate')!r} is not a rate like 1mbps or 8mbit")
        rate = int(int(m[1]) * RATE_BYTES[m[2].lower()])
        for key in ("limit", "buffer"):
            if not isinstance(block.get(key), int) or block[key] < 1:
                raise r.invalid(f"spec.bandwidth.{key}", f"must be an integer of at least 1, got {block.get(key)!r}")
        if not 1 <= rate < 2**32:
            raise r.unsupported(f"spec.bandwidth.rate {block['rate']!r}", "tbf here takes 1 byte/s to 4 GB/s")
        bandwidth = Bandwidth(rate, int(block["limit"]), int(block["buffer"]))
    return Fault(action=str(action), pods=r.selection(spec, "spec.", common["namespace"]), direction=str(direction),
                 target=target, external=tuple(external), netem=netem, bandwidth=bandwidth, **common)


def _http_chaos(r: _Reader, spec: dict[str, Any], common: dict[str, Any]) -> Fault:
    response = "the lab injects on requests only (Envoy's fault filter acts before the app answers)"
    r.keys(spec, "spec", ("mode", "value", "selector", "duration", "target", "port", "path", "method", "request_headers", "abort", "delay"),
           {**_REMOTE, "code": response, "response_headers": response,
            "replace": "rewriting requests is not implemented (abort and delay are)",
            "patch": "patching requests is not implemented (abort and delay are)",
            "tls": "the sidecar terminates mTLS before the fault filter: the lab needs no certificate"})
    if spec.get("target") == "Response":
        raise r.unsupported("spec.target Response", response)
    if spec.get("target") != "Request":
        raise r.invalid("spec.target", f"{spec.get('target')!r} must be Request or Response")
    port = spec.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or port <= 0:
        raise r.invalid("spec.port", f"port {port!r} is not supported (httpchaos_webhook.go: a port above 0 is required)")
    method = spec.get("method")
    if method is not None and method not in HTTP_METHODS:
        raise r.invalid("spec.method", f"method {method} is not supported")
    abort = spec.get("abort") is True
    delay = None
    if spec.get("delay") is not None:
        try:
            delay = go_duration(spec["delay"])
        except ValueError as exc:
            raise r.invalid("spec.delay", str(exc)) from None
    if abort and delay is not None:
        raise r.unsupported("spec.abort with spec.delay", "Chaos Mesh applies abort first, so the delay would never act: inject one")
    if not abort and delay is None:
        raise r.invalid("spec", "an HTTPChaos needs abort: true or a delay (nothing to inject)")
    http = HttpFault(port, None if spec.get("path") is None else str(spec["path"]), method,
                     r.string_map(spec.get("request_headers") or {}, "spec.request_headers"), abort, delay)
    return Fault(action="abort" if abort else "delay", pods=r.selection(spec, "spec.", common["namespace"]), http=http, **common)
