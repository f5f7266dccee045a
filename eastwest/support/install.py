"""What every backend installs, in order, from ``manifests/`` (the design's recipe).

1. the Istio control plane of each cluster, from Helm values (``istio/istiod.values.yaml``)
   and its east-west gateway (``istio/eastwest-gateway.values.yaml``, the istio/gateway chart
   with ``networkGateway``);
2. the objects of ``BASE_MANIFESTS``: the ``istio-system`` namespace with its network label,
   the AUTO_PASSTHROUGH ``cross-network-gateway``, the echo service and the sleep client.
"""

from __future__ import annotations

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
BASE_MANIFESTS = (
    "istio/istio-system.yaml",
    "istio/cross-network-gateway.yaml",
    "workloads/echo.yaml",
    "workloads/sleep.yaml",
)


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
