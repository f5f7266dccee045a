"""What every backend installs, in which order, from ``manifests/`` (the design's recipe as phases).

The order is Istio's multi-primary, multi-network install (istio.io "Install Multi-Primary on
different networks", Helm tab; Istio's own test framework ``pkg/test/framework/components/istio/kube.go``):

1. ``namespace``: ``istio-system`` labelled with the cluster's network, and the ``cacerts`` secret
   from the mesh PKI, **before** istiod: istiod reads the network label and the CA at start
   (a pod injected before the label gets network "", istio/istio#46777; istiod started without
   ``cacerts`` makes a self-signed root of its own);
2. ``istio-base``: Istio's CRDs and ``istio-reader-service-account`` (istio/base chart);
3. ``istiod``: the control plane (istio/istiod chart, ``ISTIOD_VALUES``);
4. ``eastwest-gateway``: the istio/gateway chart with ``networkGateway`` (``GATEWAY_VALUES``), only
   after istiod (the gateway pod is injected), until its Service has its external address;
5. ``expose-services``: the AUTO_PASSTHROUGH ``cross-network-gateway`` (needs the Gateway CRD of step 2,
   and is useless before step 4);
6. ``remote-secrets``: each istiod gets the other cluster's API server;
7. ``workloads``: echo and the sleep client, once the sidecar injector answers.

Backends add what their platform needs around these (the kind backend: docker networks, clusters,
images, MetalLB before; Chaos Mesh and a readiness gate after) but never reorder them. A backend
that has nothing to do in a phase (the lab has no CRDs to install) says so where it skips it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from eastwest.support import manifest
from eastwest.support.errors import ManifestError
from eastwest.support.manifest import Document
from eastwest.support.topology import Topology

ISTIOD_VALUES = "istio/istiod.values.yaml"
GATEWAY_VALUES = "istio/eastwest-gateway.values.yaml"
#: suite manifests live under this folder of manifests/ (``@pytest.mark.manifests`` paths are relative to it)
SUITE_MANIFESTS = "suites"


@dataclass(frozen=True)
class Release:
    """A Helm release a phase installs: ``helm install <release> <chart> -f <values>...``."""

    release: str
    chart: str  # a chart of the istio repository: base, istiod, gateway
    values: tuple[str, ...] = ()  # values files under manifests/, rendered per cluster


@dataclass(frozen=True)
class Phase:
    """One step of the install, the same for every backend."""

    name: str
    summary: str
    manifests: tuple[str, ...] = ()
    release: Release | None = None


PHASES: tuple[Phase, ...] = (
    Phase("namespace", "istio-system labelled with the cluster's network, and cacerts from the mesh PKI, before istiod",
          manifests=("istio/istio-system.yaml",)),
    Phase("istio-base", "Istio's CRDs and the reader service account (istio/base)", release=Release("istio-base", "base")),
    Phase("istiod", "the control plane (istio/istiod): mesh ID, cluster name, network, trust domain",
          release=Release("istiod", "istiod", (ISTIOD_VALUES,))),
    Phase("eastwest-gateway", "the east-west gateway (istio/gateway with networkGateway), until its Service has its address",
          release=Release("istio-eastwestgateway", "gateway", (GATEWAY_VALUES,))),
    Phase("expose-services", "the AUTO_PASSTHROUGH Gateway on 15443 exposing every *.local service",
          manifests=("istio/cross-network-gateway.yaml",)),
    Phase("remote-secrets", "each istiod reads the other cluster's API server (a remote secret per direction)"),
    Phase("workloads", "echo and the sleep client, with sidecars, once the injector answers",
          manifests=("workloads/echo.yaml", "workloads/sleep.yaml")),
)

#: every manifest of the phases, in install order
BASE_MANIFESTS: tuple[str, ...] = tuple(m for phase in PHASES for m in phase.manifests)


def phase(name: str) -> Phase:
    for p in PHASES:
        if p.name == name:
            return p
    raise KeyError(f"no install phase {name!r}; phases: {', '.join(p.name for p in PHASES)}")


def helm_values(root: Path, topology: Topology, cluster: str, name: str) -> dict[str, Any]:
    """Render one Helm values file for a cluster."""
    path = root / name
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ManifestError(f"values file not found: {name} (under {root})") from None
    rendered = manifest.render(text, topology.variables(cluster), name)
    try:
        values = yaml.safe_load(rendered) or {}
    except yaml.YAMLError as exc:
        raise ManifestError(f"{name}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise ManifestError(f"{name}: Helm values must be a mapping")
    return values


def merge_values(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of two ``-f`` files: maps merge key by key, anything else in ``override`` wins."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_values(out[key], value)
        else:
            out[key] = value
    return out


def documents(root: Path, topology: Topology, cluster: str, names: tuple[str, ...] | list[str]) -> list[Document]:
    """Load manifests for one cluster, keeping only the documents that target it."""
    docs: list[Document] = []
    for name in names:
        loaded = manifest.load(manifest.resolve(root, name), topology.variables(cluster), root=root)
        for doc in loaded:
            unknown = [c for c in doc.target_clusters() or () if c not in topology.names]
            if unknown:
                raise ManifestError(f"{doc.ref}: annotation {manifest.CLUSTERS_ANNOTATION} names {', '.join(map(repr, unknown))}, "
                                    f"which is no cluster; clusters: {', '.join(topology.names)}")
        docs += [d for d in loaded if d.targets(cluster)]
    return docs
