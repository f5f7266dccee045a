"""The lab's istiod, routes: what a VirtualService changes on a sidecar's route to its host.

The lab implements one thing of VirtualServices, the route timeout (``http[].timeout``),
because it decides whether a hang behind a live sidecar fails over: istiod copies it to the
Envoy route's ``timeout`` (pilot/pkg/networking/core/route/route.go ``translateRoute``;
without one the route has ``timeout: 0s``, no limit), Envoy answers a request that outlasts
it with 504 and flag UT, and outlier detection counts that as a gateway error (Envoy's
router reports LocalOriginTimeout with the 504, which without split local-origin mode is
a 5xx and a gateway failure). Every other VirtualService field is refused (``schemas.py``).
"""

from __future__ import annotations

from eastwest.backends.lab.envoy_config import duration
from eastwest.backends.lab.istiod.registry import ClusterState, svc_host

NO_TIMEOUT = "0s"  # Envoy: no limit


def full_host(host: str, namespace: str) -> str:
    """A host as Istio config writes it (short, ``name.ns`` or FQDN) -> the FQDN, relative to ``namespace``."""
    if "." not in host:
        return svc_host(host, namespace)
    if host.count(".") == 1:
        return f"{host}.svc.cluster.local"
    return host


def route_timeout(state: ClusterState, host: str) -> str:
    """The route timeout a sidecar of ``state``'s cluster uses towards ``host`` (VirtualServices are
    config: a proxy sees those of its own cluster; the last one applied for a host wins here,
    where istiod would merge them)."""
    timeout = NO_TIMEOUT
    for key, body in state.store.of_kind("VirtualService"):
        spec = body.get("spec") or {}
        if host in {full_host(str(h), key.namespace) for h in spec.get("hosts") or []}:
            http = (spec.get("http") or [{}])[0]
            timeout = duration(str(http.get("timeout", NO_TIMEOUT)))
    return timeout
