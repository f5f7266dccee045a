"""The existing backend: the user's own two clusters, by kube context. Nothing of Istio is installed.

A preflight reads both clusters and names everything the suites need that is not there: Istio
(istiod and its CRDs), one network per cluster and distinct ones, one trust domain and mesh ID
(the topology's), an east-west gateway with an address in each, and whether Chaos Mesh is
installed (without it, tests that need its faults are skipped with that reason). Then the echo
and client workloads go into their own namespaces, which must not exist already unless this
project made them; they, and every namespace a suite manifest created, are removed after the run.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path

from eastwest.backends.kube import pins, readiness, render
from eastwest.backends.kube.api import ClusterApi, KubeApi
from eastwest.backends.kube.mesh import KubeCluster, KubeMesh
from eastwest.mesh import MeshConfig
from eastwest.schemas import Schemas
from eastwest.settings import Settings
from eastwest.support import install
from eastwest.support.errors import BackendUnavailable, ConfigError, MeshError
from eastwest.support.topology import Topology, load_topology
from eastwest.support.waiting import wait_until

log = logging.getLogger("eastwest.existing")
MANAGED = ",".join(f"{k}={v}" for k, v in render.MANAGED_BY.items())


class ExistingMesh:
    """Checks, workloads and cleanup on the user's clusters."""

    def __init__(self, settings: Settings, contexts: dict[str, str | None], *, kubeconfig: str | None = None,
                 echo_image: str | None = None, api_for: Callable[[str], ClusterApi] | None = None):
        self.settings = settings
        self.topology: Topology = load_topology(settings.manifests / "topology.yaml")
        missing = [f"--context-{role}" for role in self.topology.names if not contexts.get(role)]
        if missing:
            raise ConfigError(f"--mesh existing needs the kube context of every cluster: {' and '.join(missing)} "
                              f"(or EASTWEST_CONTEXT_{missing[0].split('-')[-1].upper()}); nothing was touched. "
                              "Without clusters of your own, use --mesh lab")
        self.contexts = {role: str(contexts[role]) for role in self.topology.names}
        if len(set(self.contexts.values())) != len(self.contexts):
            raise ConfigError(f"--context-*: every cluster needs its own context, got {self.contexts}")
        self.kubeconfig = Path(kubeconfig).expanduser() if kubeconfig else None
        self._api_for = api_for
        self._apis: dict[str, ClusterApi] = {}
        self.chaos_mesh: dict[str, bool] = {}
        #: the echo image as the user's clusters pull it (built with `eastwest existing echo-context | docker build -`)
        self.images = {pins.ECHO_IMAGE: echo_image} if echo_image else {}

    def api(self, role: str) -> ClusterApi:
        if role not in self._apis:
            self._apis[role] = self._api_for(role) if self._api_for else KubeApi(self.kubeconfig, self.contexts[role])
        return self._apis[role]

    def clusters(self) -> dict[str, KubeCluster]:
        schemas = Schemas()
        return {r: KubeCluster(self.topology, r, self.api(r), self.settings.timeouts, schemas=schemas if schemas.available else None,
                               chaos_mesh=self.chaos_mesh.get(r, False), images=self.images) for r in self.topology.names}

    def preflight(self) -> list[str]:
        """Raise BackendUnavailable naming every missing piece; return notes (what will be skipped and why)."""
        problems, notes, configs = [], [], {}
        for role, cluster in self.clusters().items():
            where = f"{role} (context {self.contexts[role]})"
            try:
                if not cluster.api.serves("networking.istio.io/v1", "Gateway") or cluster.api.get("apps/v1", "Deployment", "istiod",
                                                                                                   "istio-system") is None:
                    problems.append(f"{where}: Istio is not installed (no istiod Deployment in istio-system, or no Istio CRDs)")
                    continue
                configs[role] = cluster.mesh_config()
                problem = readiness.gateway_has_address(cluster)
                if cluster.gateway_service() is None:
                    problems.append(f"{where}: no east-west gateway (a Service in istio-system labelled topology.istio.io/network "
                                    "with port 15443; the istio/gateway chart with networkGateway makes one)")
                elif problem:
                    problems.append(f"{where}: {problem.split(': ', 1)[1]} (topology.yaml holds the addresses the suites expect)")
                self.chaos_mesh[role] = cluster.api.serves("chaos-mesh.org/v1alpha1", "PodChaos")
                if not self.chaos_mesh[role]:
                    notes.append(f"{where}: Chaos Mesh is not installed: tests that need its faults will be skipped")
                for ns in readiness.WORKLOAD_NAMESPACES:
                    found = cluster.api.get("v1", "Namespace", ns)
                    if found is not None and ((found.get("metadata") or {}).get("labels") or {}).get(
                            "app.kubernetes.io/managed-by") != "eastwest":
                        problems.append(f"{where}: namespace {ns} exists and was not made by eastwest; the suites deploy their "
                                        "workloads there and remove it afterwards, so it must not hold anything of yours")
            except MeshError as exc:
                problems.append(f"{where}: {exc}")
        problems += self._compare(configs)
        if problems:
            raise BackendUnavailable("--mesh existing: these clusters are not a mesh the suites can test:\n  - " + "\n  - ".join(problems) +
                                     f"\nNothing was changed. The suites expect what {self.topology.source} says; copy manifests/, "
                                     "edit topology.yaml and pass --manifests DIR if your mesh differs.")
        return notes

    def _compare(self, configs: dict[str, MeshConfig]) -> list[str]:
        out = []
        for role, config in configs.items():
            spec = self.topology.cluster(role)
            if config.network != spec.network:
                out.append(f"{role}: network is {config.network or 'unset'!r}, topology.yaml says {spec.network!r} "
                           "(istio-system label topology.istio.io/network or global.network)")
            if config.trust_domain != self.topology.trust_domain:
                out.append(f"{role}: trust domain {config.trust_domain!r}, topology.yaml says {self.topology.trust_domain!r}")
            if config.mesh_id != self.topology.mesh_id:
                out.append(f"{role}: mesh ID {config.mesh_id or 'unset'!r}, topology.yaml says {self.topology.mesh_id!r}")
            if config.cluster_name != role:
                out.append(f"{role}: istiod's clusterName is {config.cluster_name!r}; the suites name clusters by the topology's names")
        networks = [c.network for c in configs.values()]
        if len(set(networks)) != len(networks):
            out.append(f"the clusters share a network ({networks}): multi-network needs one network per cluster")
        if len({c.trust_domain for c in configs.values()}) > 1:
            out.append(f"the clusters have different trust domains: {', '.join(f'{r}={c.trust_domain}' for r, c in configs.items())}")
        return out

    def open(self) -> KubeMesh:
        clusters = self.clusters()
        try:
            for role, cluster in clusters.items():
                cluster.apply(install.documents(self.settings.manifests, self.topology, role, install.phase("workloads").manifests))
            readiness.gate(clusters, within=self.settings.timeouts.bring_up, interval=max(1.0, self.settings.timeouts.poll_interval))
        except BaseException:
            self.cleanup()
            raise
        return KubeMesh("existing", "existing-" + "-".join(self.contexts.values()), self.topology, clusters, self.settings.timeouts,
                        on_close=self.cleanup)

    def cleanup(self) -> None:
        """Delete every namespace this project made (labelled managed-by eastwest) and wait until they are gone."""
        for role in self.topology.names:
            api = self.api(role)
            owned = [n["metadata"]["name"] for n in api.list("v1", "Namespace", labels=MANAGED)]
            for name in owned:
                api.delete("v1", "Namespace", name)
            try:
                wait_until(functools.partial(_all_gone, api, owned), within=self.settings.timeouts.bring_up, interval=1.0,
                           what=f"{role}: namespaces {owned} removed")
            except MeshError as exc:
                log.warning("%s", exc)


def _all_gone(api: ClusterApi, namespaces: list[str]) -> bool:
    return all(api.get("v1", "Namespace", n) is None for n in namespaces)
