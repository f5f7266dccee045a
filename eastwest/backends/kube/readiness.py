"""The readiness gate: what must hold before any suite runs on Kubernetes clusters.

Each check returns None when it holds, or one line saying what was expected and observed; the
gate waits until all hold (bounded by the caller's time limit) and then reports every one that
still fails. The same checks serve attaching to clusters already up (kind) and the existing
backend's last preflight step.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable

from eastwest.backends.kube.mesh import KubeCluster, has_sidecar
from eastwest.support.errors import MeshError
from eastwest.support.waiting import WaitTimeout, wait_until
from eastwest.workloads import ECHO_UPSTREAM, GATEWAY_PORT, SLEEP

Check = Callable[[], "str | None"]
WORKLOAD_NAMESPACES = ("echo", "sleep")


class NotReady(MeshError):
    """The mesh is up but not ready for suites; the message lists every failing check."""


def remote_synced(cluster: KubeCluster, others: list[str]) -> str | None:
    """istiod's debug/clusterz (what istioctl remote-clusters reads) lists every other cluster as synced."""
    pods = [p for p in cluster.api.list("v1", "Pod", "istio-system", "app=istiod") if (p.get("status") or {}).get("phase") == "Running"]
    if not pods:
        return f"{cluster.name}: no running istiod"
    seen = {c.get("id"): c.get("syncStatus") for c in json.loads(cluster.api.pod_proxy("istio-system", pods[0]["metadata"]["name"],
                                                                                      15014, "debug/clusterz") or "[]")}
    missing = [f"{o} ({seen.get(o, 'absent')})" for o in others if seen.get(o) != "synced"]
    return f"{cluster.name}: istiod has not synced remote cluster(s) {', '.join(missing)}; clusterz: {seen}" if missing else None


def gateway_has_address(cluster: KubeCluster) -> str | None:
    want = cluster.spec.gateway_address
    got = cluster.gateway_address()
    return None if got == want else f"{cluster.name}: east-west gateway address expected {want}, observed {got}"


def workloads_have_sidecars(cluster: KubeCluster) -> str | None:
    bad = []
    for ns in WORKLOAD_NAMESPACES:
        pods = cluster.api.list("v1", "Pod", ns)
        if not pods:
            bad.append(f"{ns}: no pods")
        bad += [f"{ns}/{p['metadata']['name']}" for p in pods if not has_sidecar(p)]
    return f"{cluster.name}: pods without an istio-proxy container: {', '.join(bad)}" if bad else None


def sees_remote_gateway(client: KubeCluster, remote: KubeCluster) -> str | None:
    want = (remote.spec.gateway_address, GATEWAY_PORT)
    endpoints = client.proxy_endpoints(SLEEP, ECHO_UPSTREAM)
    seen = [(e.address, e.port) for e in endpoints]
    return None if want in seen else (f"{client.name}: the sleep sidecar's endpoints for {ECHO_UPSTREAM} lack {remote.name}'s "
                                      f"gateway {want[0]}:{want[1]}; observed {seen}")


def roots(cluster: KubeCluster) -> tuple[str | None, str | None]:
    """The root in ``cacerts`` and the one istiod distributes (``istio-ca-root-cert`` in a workload namespace)."""
    secret = cluster.api.get("v1", "Secret", "cacerts", "istio-system") or {}
    plugged = (secret.get("data") or {}).get("root-cert.pem")
    served = cluster.api.get("v1", "ConfigMap", "istio-ca-root-cert", SLEEP.namespace) or {}
    return (base64.b64decode(plugged).decode().strip() if plugged else None,
            ((served.get("data") or {}).get("root-cert.pem") or "").strip() or None)


def same_root(clusters: list[KubeCluster]) -> str | None:
    found = {c.name: roots(c) for c in clusters}
    problems = [f"{name}: istiod serves a root that is not the one in cacerts (istiod started before cacerts?)"
                for name, (plugged, served) in found.items() if plugged and served != plugged]
    if len({served for _, served in found.values()}) != 1 or None in {served for _, served in found.values()}:
        problems.append("the clusters do not serve one root: " + ", ".join(f"{n}: {'a root' if s else 'none'}" for n, (_, s) in found.items()))
    return "; ".join(problems) or None


def checks(clusters: dict[str, KubeCluster], *, client: str = "us") -> list[tuple[str, Check]]:
    names = list(clusters)
    out: list[tuple[str, Check]] = []
    for name, c in clusters.items():
        out.append((f"{name} istiod synced the other clusters", functools.partial(remote_synced, c, [o for o in names if o != name])))
        out.append((f"{name} gateway address", functools.partial(gateway_has_address, c)))
        out.append((f"{name} workloads have sidecars", functools.partial(workloads_have_sidecars, c)))
    for name in names:
        if name != client and client in clusters:
            out.append((f"{client} sleep sees {name} echo behind its gateway",
                        functools.partial(sees_remote_gateway, clusters[client], clusters[name])))
    out.append(("one root everywhere", functools.partial(same_root, list(clusters.values()))))
    return out


def failing(named: list[tuple[str, Check]]) -> list[str]:
    out = []
    for what, check in named:
        try:
            problem = check()
        except MeshError as exc:
            problem = f"{what}: {exc}"
        if problem:
            out.append(problem)
    return out


def gate(clusters: dict[str, KubeCluster], *, within: float, interval: float) -> None:
    """Wait until every check holds; raise NotReady listing what still fails."""
    named = checks(clusters)
    last: list[str] = []

    def ready() -> bool:
        last[:] = failing(named)
        return not last

    try:
        wait_until(ready, within=within, interval=interval, what="readiness gate")
    except WaitTimeout:
        raise NotReady(f"the mesh is not ready after {within:g}s: " + " | ".join(last)) from None
