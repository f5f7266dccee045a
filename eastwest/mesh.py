"""The mesh interface every suite is written against, and every backend implements.

A suite sees a :class:`Mesh` with two :class:`Cluster` objects by role (``us``, ``eu``); it
applies manifests, sends requests from a named client workload and reads typed
:class:`~eastwest.support.echo.EchoResponse` objects. It never learns whether the clusters
are kind clusters, the user's own clusters or the embedded lab.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Protocol

from eastwest.settings import Timeouts
from eastwest.support.echo import EchoResponse
from eastwest.support.manifest import Document
from eastwest.support.spiffe import SpiffeId
from eastwest.support.topology import ClusterSpec, Topology

# Features a backend may support; tests declare the ones they need (fixtures/gating.py).
FEATURES: dict[str, str] = {
    "multi-network": "clusters on distinct networks joined by east-west gateways",
    "mtls": "sidecar-to-sidecar mutual TLS with SPIFFE identities",
    "service-entry": "hand-written ServiceEntry and DestinationRule routing",
    "peer-authentication": "PeerAuthentication STRICT/PERMISSIVE on the server side",
    "sidecarless-client": "a client workload without a sidecar",
    "foreign-root-client": "a client whose certificate comes from a root the mesh does not trust",
    "locality-lb": "locality-aware load balancing (failover priorities and distribute weights)",
    "proxy-config-dump": "the Envoy configuration of any proxy, for evidence",
    "raw-tcp-probe": "opening a plain TCP connection from inside a pod",
    "proxy-logs": "the logs of any proxy (and its app), for evidence",
}


@dataclass(frozen=True)
class Workload:
    """A workload by namespace and name (its Deployment), e.g. ``Workload("sleep", "sleep")``."""

    namespace: str
    name: str

    @classmethod
    def parse(cls, ref: str | Workload) -> Workload:
        """Accept ``"ns/name"`` or a Workload."""
        if isinstance(ref, Workload):
            return ref
        ns, sep, name = ref.partition("/")
        if not sep or not ns or not name:
            raise ValueError(f"workload reference must be 'namespace/name', got {ref!r}")
        return cls(ns, name)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class MeshConfig:
    """What a cluster's control plane actually runs with."""

    mesh_id: str
    trust_domain: str
    network: str
    cluster_name: str


@dataclass(frozen=True)
class ProxyEndpoint:
    """One endpoint of one upstream cluster, as a proxy currently sees it."""

    address: str
    port: int
    locality: str  # "region/zone" ("" when unset)
    priority: int
    healthy: bool
    weight: int = 1

    def summary(self) -> str:
        return f"{self.address}:{self.port} locality={self.locality or '-'} priority={self.priority} healthy={self.healthy} weight={self.weight}"


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of a raw TCP connection attempt from inside a pod."""

    connected: bool
    error: str | None = None  # "connection refused", "no route to host", "timed out", ...
    reply: bytes = b""  # what came back after sending the payload, if anything
    closed_by_peer: bool = False  # the peer closed or reset without answering

    def summary(self) -> str:
        if not self.connected:
            return f"not connected: {self.error}"
        if self.reply:
            return f"connected; reply {self.reply[:120]!r}"
        return "connected; peer closed without a reply" if self.closed_by_peer else "connected; no reply"


class TrafficObserver(Protocol):
    """Something that wants to see every request a test makes and what it reads of the mesh (reports, logs)."""

    def on_call(self, cluster: Cluster, client: Workload, url: str, responses: list[EchoResponse]) -> None: ...

    def on_probe(self, cluster: Cluster, client: Workload, target: str, result: ProbeResult) -> None: ...

    def on_observation(self, cluster: Cluster, title: str, text: str) -> None: ...


@dataclass
class Cluster(abc.ABC):
    """One cluster of the mesh, by role."""

    spec: ClusterSpec
    topology: Topology = field(repr=False)
    #: the run's time limits: ``request`` bounds a call or probe, ``apply`` a manifest's rollout
    timeouts: Timeouts = field(default_factory=Timeouts, repr=False)
    #: notified of every call, probe and reading (the reporting plugin records them as evidence)
    observers: list[TrafficObserver] = field(default_factory=list, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def network(self) -> str:
        return self.spec.network

    @property
    def locality(self) -> str:
        return self.spec.locality

    def spiffe_id(self, namespace: str, service_account: str) -> SpiffeId:
        """The identity a workload of this cluster carries."""
        return SpiffeId(self.topology.trust_domain, namespace, service_account)

    def mesh_config(self) -> MeshConfig:
        """The mesh ID, trust domain, network and cluster name this cluster's control plane uses."""
        config = self._mesh_config()
        self._observed("mesh config", repr(config))
        return config

    def _observed(self, title: str, text: str) -> None:
        for observer in self.observers:
            observer.on_observation(self, title, text)

    @abc.abstractmethod
    def _mesh_config(self) -> MeshConfig:
        """Backend part of :meth:`mesh_config`."""

    @abc.abstractmethod
    def gateway_address(self) -> str | None:
        """The east-west gateway's external address, or None while it has none."""

    @abc.abstractmethod
    def apply(self, documents: Iterable[Document]) -> None:
        """Create or replace objects; returns once every proxy of the cluster has the new config
        (within the run's ``apply`` time limit, else raises)."""

    @abc.abstractmethod
    def delete(self, documents: Iterable[Document]) -> None:
        """Delete objects (missing ones are ignored); returns once proxies are updated (``apply`` limit)."""

    def call(
        self,
        client: Workload | str,
        url: str,
        *,
        count: int = 1,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> list[EchoResponse]:
        """Send ``count`` sequential requests from a pod of ``client`` to ``url``, one connection each.

        Each request may take ``timeout`` seconds (default: the run's ``request`` time limit).
        """
        responses = self._call(Workload.parse(client), url, count=count, headers=dict(headers or {}),
                               timeout=timeout or self.timeouts.request)
        for observer in self.observers:
            observer.on_call(self, Workload.parse(client), url, responses)
        return responses

    def probe(self, client: Workload | str, address: str, port: int, *, send: bytes = b"", timeout: float | None = None) -> ProbeResult:
        """Open a plain TCP connection from a pod of ``client`` to ``address:port``, bypassing its sidecar.

        Connecting, and waiting for a reply to ``send``, each may take ``timeout`` seconds
        (default: the run's ``request`` time limit). With nothing to send, it only connects.
        """
        result = self._probe(Workload.parse(client), address, port, send=send, timeout=timeout or self.timeouts.request)
        for observer in self.observers:
            observer.on_probe(self, Workload.parse(client), f"{address}:{port}", result)
        return result

    @abc.abstractmethod
    def _call(self, client: Workload, url: str, *, count: int, headers: dict[str, str], timeout: float) -> list[EchoResponse]:
        """Backend part of :meth:`call`."""

    @abc.abstractmethod
    def _probe(self, client: Workload, address: str, port: int, *, send: bytes, timeout: float) -> ProbeResult:
        """Backend part of :meth:`probe`."""

    @abc.abstractmethod
    def pod_ips(self, workload: Workload | str) -> list[str]:
        """The pod IPs of a workload in this cluster."""

    def proxy_endpoints(self, workload: Workload | str, upstream: str) -> list[ProxyEndpoint]:
        """The endpoints the sidecar of ``workload`` has for ``upstream`` (``outbound|80||echo.echo.svc.cluster.local``)."""
        endpoints = self._proxy_endpoints(Workload.parse(workload), upstream)
        self._observed(f"endpoints of {upstream} at {Workload.parse(workload)}", "\n".join(e.summary() for e in endpoints) or "(none)")
        return endpoints

    @abc.abstractmethod
    def _proxy_endpoints(self, workload: Workload, upstream: str) -> list[ProxyEndpoint]:
        """Backend part of :meth:`proxy_endpoints`."""

    @abc.abstractmethod
    def proxy_config_dump(self, workload: Workload | str) -> dict[str, Any]:
        """Envoy's ``/config_dump`` of the proxy of ``workload`` (the gateway: ``istio-system/istio-eastwestgateway``)."""

    def proxy_logs(self, workload: Workload | str, lines: int = 50) -> str | None:
        """The last ``lines`` of the proxy's logs, where the backend can read them (feature ``proxy-logs``)."""
        return None


class Mesh(abc.ABC):
    """The whole mesh: clusters by role, what the backend can do, and its lifecycle."""

    backend: str
    topology: Topology
    features: frozenset[str]
    timeouts: Timeouts

    @property
    @abc.abstractmethod
    def clusters(self) -> Mapping[str, Cluster]:
        """Clusters by name, in topology order."""

    def cluster(self, name: str) -> Cluster:
        """The cluster in a role (``"us"``, ``"eu"``)."""
        try:
            return self.clusters[name]
        except KeyError:
            raise KeyError(f"no cluster {name!r} in this mesh; clusters: {', '.join(self.clusters)}") from None

    def others(self, name: str) -> list[Cluster]:
        """Every cluster but ``name`` (Istio's ``Clusters().Exclude(...)``)."""
        return [c for c in self.clusters.values() if c.name != name]

    def supports(self, feature: str) -> bool:
        return feature in self.features

    @property
    def identity(self) -> str:
        """A name for this mesh instance that every process using it agrees on (locks, reports)."""
        return f"{self.backend}-{id(self)}"

    @abc.abstractmethod
    def close(self) -> None:
        """Release what this object brought up; a mesh it only attached to keeps running."""

    def __enter__(self) -> Mesh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
