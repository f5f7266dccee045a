"""HTTPChaos in the lab: Envoy's HTTP fault filter, first in the target sidecar's inbound listener.

Chaos Mesh injects HTTP faults with chaos-tproxy, a userspace proxy it diverts the pod's port
to; with an Istio sidecar the requests bypass it and the pods restart on recovery
(chaos-mesh/chaos-mesh#4389, open), so on kind the faithful equivalent is an EnvoyFilter that
inserts ``envoy.filters.http.fault`` in the SIDECAR_INBOUND HTTP connection manager. That is
what the lab's istiod renders while the fault is active (``istiod/inbound.py``), and ``inject``
returns once every target sidecar runs it.

- ``abort: true`` becomes ``abort.http_status: 503`` for every matching request. Chaos Mesh
  cuts the connection instead; the calling sidecar then answers 503 (upstream reset, not
  retried by Istio's default policy) and outlier detection counts it, as it counts this 503:
  the same failover, only the response flags differ.
- ``delay`` becomes ``delay.fixed_delay`` before the request reaches the app.
- ``path`` (a wildcard: ``*`` any run, ``?`` one character), ``method`` and ``request_headers``
  become the filter's header matchers on ``:path``, ``:method`` and the headers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from eastwest.backends.lab.chaos.model import INJECTED, LabHost, Record
from eastwest.backends.lab.chaos.spec import Fault
from eastwest.backends.lab.envoy_config import T, duration
from eastwest.backends.lab.istiod.registry import labels_match
from eastwest.backends.lab.kubelet import ClusterRuntime, Pod
from eastwest.support.errors import FaultUnsupported

HTTP_FAULT = T + "envoy.extensions.filters.http.fault.v3.HTTPFault"
ABORT_STATUS = 503
ALL = {"numerator": 100, "denominator": "HUNDRED"}


def path_regex(pattern: str) -> str:
    """A Chaos Mesh path wildcard as a regex on ``:path`` (which carries the query too)."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return f"^{body}(\\?.*)?$"


def fault_filter(fault: Fault) -> dict[str, Any]:
    assert fault.http is not None
    http = fault.http
    headers: list[dict[str, Any]] = []
    if http.path is not None:
        headers.append({"name": ":path", "string_match": {"safe_regex": {"regex": path_regex(http.path)}}})
    if http.method is not None:
        headers.append({"name": ":method", "string_match": {"exact": http.method}})
    headers += [{"name": k, "string_match": {"exact": v}} for k, v in http.headers]
    config: dict[str, Any] = {"@type": HTTP_FAULT}
    if http.abort:
        config["abort"] = {"http_status": ABORT_STATUS, "percentage": ALL}
    else:
        assert http.delay is not None
        config["delay"] = {"fixed_delay": duration(f"{http.delay * 1000:.0f}ms"), "percentage": ALL}
    if headers:
        config["headers"] = headers
    return {"name": f"eastwest.httpchaos.{fault.namespace}.{fault.name}", "typed_config": config}


def inbound_ports(rt: ClusterRuntime, pod: Pod) -> set[int]:
    """The ports the pod's sidecar has an inbound listener on: its Services' target ports (as istiod/inbound.py)."""
    ports: set[int] = set()
    for key, body in rt.store.of_kind("Service"):
        svc = body.get("spec") or {}
        if key.namespace != pod.namespace or not labels_match(svc.get("selector") or {}, pod.labels):
            continue
        for p in svc.get("ports") or []:
            target = p.get("targetPort", p["port"])
            number = pod.ports.get(target) if isinstance(target, str) else int(target)
            if number:
                ports.add(int(number))
    return ports


def inject(lab: LabHost, rt: ClusterRuntime, fault: Fault, pods: list[Pod], records: list[Record],
           within: float) -> Callable[[], list[str]]:
    assert fault.http is not None
    port = fault.http.port
    for pod in pods:
        if not pod.sidecar or pod.envoy is None:
            raise FaultUnsupported(f"{fault.ref}: {pod.namespace}/{pod.name} has no sidecar; the lab injects HTTP faults "
                                   f"in the sidecar's inbound listener")
        if port not in inbound_ports(rt, pod):
            raise FaultUnsupported(f"{fault.ref}: {pod.namespace}/{pod.name} has no inbound listener on port {port} "
                                   f"(its Services' target ports: {sorted(inbound_ports(rt, pod)) or 'none'})")
    entry = (port, fault_filter(fault))

    def undo() -> list[str]:
        with lab.lock:
            for pod in pods:
                if entry in pod.http_faults:
                    pod.http_faults.remove(entry)
            lab.publish(within)
        return []

    with lab.lock:
        for pod in pods:
            pod.http_faults.append(entry)
        try:
            lab.publish(within)
        except Exception:
            undo()
            raise
    what = "abort 503" if fault.http.abort else f"delay {fault.http.delay:g}s"
    records += [Record(f"{p.namespace}/{p.name}", ".", INJECTED, f"fault filter ({what}) synced on port {port}") for p in pods]
    return undo
