"""Every version the kube backends pin, in one place, each with where it comes from.

Sources are in ``../shared/notes/kind-road.md`` §0 and §3 (kind, node image, charts, images) and
were read in the upstream repositories at these tags.
"""

from __future__ import annotations

from dataclasses import dataclass

#: kind release: its default node image is exactly NODE_IMAGE (kubernetes-sigs/kind v0.31.0,
#: pkg/apis/config/defaults/image.go); kind >= 0.32 switches kubeadm to v1beta4 for 1.36 nodes
KIND_VERSION = "v0.31.0"
#: Kubernetes 1.35, what Istio 1.30.3's own kind CI runs (prow/integ-suite-kind.sh), pinned by digest
NODE_IMAGE = "kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f"

ISTIO_VERSION = "1.30.3"
#: the chart defaults name a testing registry and tag "latest" in source trees; set both explicitly
ISTIO_HUB = "docker.io/istio"
ISTIO_CHARTS = "https://istio-release.storage.googleapis.com/charts"

CHAOS_MESH_VERSION = "2.8.3"
CHAOS_MESH_CHARTS = "https://charts.chaos-mesh.org"

METALLB_VERSION = "v0.16.1"
#: MetalLB's native (L2, no FRR) manifest, verified by digest before it is applied
METALLB_MANIFEST_URL = f"https://raw.githubusercontent.com/metallb/metallb/{METALLB_VERSION}/config/manifests/metallb-native.yaml"
#: sha256 of config/manifests/metallb-native.yaml at tag v0.16.1 (88,670 bytes), read from the git object
METALLB_MANIFEST_SHA256 = "bf25feebb7582ca7df845efd52ffbc2960d6cbf4cfc972f47fded9f788b67f0b"

#: the echo server (eastwest/apps/echo.py) as an image, built here and loaded into the nodes
ECHO_IMAGE = "eastwest/echo:0.1.0"
#: its base; a tag, not a digest: no registry is reachable where this was written to read one
ECHO_BASE_IMAGE = "python:3.12-slim"

#: what pod-failure swaps containers to (Chaos Mesh's default, gcr.io/google-containers/pause:latest,
#: is a legacy registry and a moving tag); loaded into the nodes like every other image
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"

#: third-party images the charts and manifests run (names as the pods reference them); the workload
#: manifests' own images (curl, echo) are read from manifests/ so they are pinned in one place only
THIRD_PARTY_IMAGES = (
    f"{ISTIO_HUB}/pilot:{ISTIO_VERSION}",
    f"{ISTIO_HUB}/proxyv2:{ISTIO_VERSION}",
    f"quay.io/metallb/controller:{METALLB_VERSION}",
    f"quay.io/metallb/speaker:{METALLB_VERSION}",
    f"ghcr.io/chaos-mesh/chaos-mesh:v{CHAOS_MESH_VERSION}",
    f"ghcr.io/chaos-mesh/chaos-daemon:v{CHAOS_MESH_VERSION}",
    PAUSE_IMAGE,
)


@dataclass(frozen=True)
class ToolPin:
    """A command-line tool the kind road runs, the versions it accepts, and how to get it."""

    name: str
    minimum: tuple[int, ...]
    below: tuple[int, ...] | None  # first version refused (Helm 4 is not supported by Istio 1.30)
    exact: str | None  # kind: one release, its node image is pinned with it
    how: str

    def describe(self) -> str:
        if self.exact:
            return self.exact
        low = "v" + ".".join(map(str, self.minimum))
        return f">= {low}" + (f", < v{'.'.join(map(str, self.below))}" if self.below else "")


TOOLS = (
    ToolPin("docker", (24, 0), None, None, "install Docker Engine (docs.docker.com/engine/install) and start its daemon"),
    ToolPin("kind", (0, 31, 0), None, KIND_VERSION,
            f"go install sigs.k8s.io/kind@{KIND_VERSION} (or the release binary from kind.sigs.k8s.io)"),
    ToolPin("helm", (3, 15, 0), (4,), None,
            "install Helm 3 (helm.sh/docs/intro/install; Istio 1.30 does not support Helm 4, istio/istio#58302)"),
    ToolPin("kubectl", (1, 34, 0), None, None, "install kubectl within one minor of Kubernetes 1.35 (kubernetes.io/docs/tasks/tools)"),
)
