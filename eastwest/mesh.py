"""The mesh interface every suite is written against, and every backend implements.

A suite sees a :class:`Mesh` with two :class:`Cluster` objects by role (``us``, ``eu``); it
applies manifests, sends requests from a named client workload and reads typed
:class:`~eastwest.support.echo.EchoResponse` objects. It never learns whether the clusters
are kind clusters, the user's own clusters or the embedded lab.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from eastwest.settings import Timeouts
from eastwest.support.echo import EchoResponse
from eastwest.support.errors import FaultNotInjected, FaultUnsupported, FeatureUnsupported
from eastwest.support.manifest import Document
from eastwest.support.spiffe import SpiffeId
from eastwest.support.tlswire import WireReport, analyse
from eastwest.support.topology import ClusterSpec, Topology

# Mesh features: behaviour of the mesh that a conformance test certifies. These, and only these,
# are the report's feature labels and the conformance report's per-feature counts.
MESH_FEATURES: dict[str, str] = {
    "multi-network": "clusters on distinct networks joined by east-west gateways",
    "mtls": "sidecar-to-sidecar mutual TLS with SPIFFE identities",
    "service-entry": "hand-written ServiceEntry and DestinationRule routing",
    "peer-authentication": "PeerAuthentication STRICT/PERMISSIVE on the server side",
    "locality-lb": "locality-aware load balancing (failover priorities and distribute weights)",
}
# Harness capabilities: what a backend lets the harness do or run (evidence, probes, special clients).
# Tests gate on them like on features, but they certify nothing, so reports keep them out of the features.
HARNESS_CAPABILITIES: dict[str, str] = {
    "sidecarless-client": "a client workload without a sidecar",
    "foreign-root-client": "a client whose certificate comes from a root the mesh does not trust",
    "foreign-root-server": "a server whose certificate comes from a root the mesh does not trust",
    "proxy-config-dump": "the Envoy configuration of any proxy, for evidence",
    "raw-tcp-probe": "opening a plain TCP connection from inside a pod",
    "proxy-logs": "the logs of any proxy (and its app), for evidence",
    "raw-tls-client": "a TLS handshake from inside a pod, bypassing its sidecar, with a chosen client certificate",
    "transit-capture": "capturing every packet that crosses between the clusters' networks",
    "gateway-port-scan": "probing a bounded list of ports of an address from inside a pod",
}
# Everything a backend may declare and a test may need (fixtures/gating.py gates on both kinds).
FEATURES: dict[str, str] = {**MESH_FEATURES, **HARNESS_CAPABILITIES}


@dataclass(frozen=True)
class MeshDescription:
    """What a backend declares it runs, for the run's identity in reports (declared, never sniffed).

    ``istio_version`` is the Istio release installed, or, where ``control_plane_stand_in`` is
    true, the release whose behaviour a stand-in control plane mirrors (the lab's istiod).
    """

    backend: str
    #: one line naming the control plane: "istiod (Helm chart istio/istiod)" or the stand-in's name
    control_plane: str
    istio_version: str
    envoy_version: str
    control_plane_stand_in: bool = False
    #: the proxies' full build string, as Envoy reports it (``/server_info`` ``version``)
    envoy_build: str = ""
    #: misconfigurations the backend was told to install on purpose (the lab's ``--lab-break``)
    deliberate_breaks: tuple[str, ...] = ()
    #: the backend's own facts worth printing (lab name, kind node image, kube contexts), in order
    details: tuple[tuple[str, str], ...] = ()

#: the client certificates a raw TLS client (feature ``raw-tls-client``) can present
CLIENT_CERTIFICATES: dict[str, str] = {
    "none": "no certificate at all",
    "own": "the client workload's own certificate: its SPIFFE ID, from its cluster's CA",
    "untrusted-root": "a certificate for the client's SPIFFE ID from a root the mesh does not trust",
    "other-trust-domain": "a certificate from the client cluster's own CA for the client's name in trust domain "
                          "'other-trust.example' (the right root, the wrong trust domain)",
}
#: the trust domain of the ``other-trust-domain`` client certificate
OTHER_TRUST_DOMAIN = "other-trust.example"
#: at most this many ports in one scan, so a scan stays bounded in count and time
MAX_SCAN_PORTS = 128


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


@dataclass(frozen=True)
class PortScan:
    """What a bounded scan of one address found: every port probed, and how it answered."""

    address: str
    results: Mapping[int, ProbeResult]

    @property
    def open_ports(self) -> list[int]:
        return sorted(p for p, r in self.results.items() if r.connected)

    def summary(self) -> str:
        closed = sorted({r.error or "?" for r in self.results.values() if not r.connected})
        lines = [f"{self.address}: {len(self.results)} ports probed, open: {self.open_ports or 'none'}; "
                 f"the others: {', '.join(closed) or '-'}"]
        lines += [f"  {p}: {self.results[p].summary()}" for p in self.open_ports]
        return "\n".join(lines)


@dataclass(frozen=True)
class TlsResult:
    """What a raw TLS client inside a pod saw (feature ``raw-tls-client``).

    ``handshake_completed`` means the client finished its side: in TLS 1.3 the server checks
    the client's certificate only afterwards, so a refusal then shows as an ``alert`` on the
    first read. ``certificate_requested`` is whether the server sent a CertificateRequest.
    """

    connected: bool
    handshake_completed: bool = False
    version: str | None = None  # "TLSv1.3"
    alpn: str | None = None
    server_sans: tuple[str, ...] = ()
    server_issuer: str | None = None
    certificate_requested: bool = False
    certificate_sent: str | None = None  # the SAN of the certificate presented, None for none
    alert: str | None = None  # the TLS alert the server sent ("certificate required")
    error: str | None = None
    reply: bytes = b""
    closed_by_peer: bool = False

    @property
    def http_status(self) -> int | None:
        """The status of an HTTP/1.x answer in ``reply``, if one came."""
        head = self.reply.split(b"\r\n", 1)[0].split()
        return int(head[1]) if len(head) >= 2 and head[0].startswith(b"HTTP/1.") and head[1].isdigit() else None

    def summary(self) -> str:
        if not self.connected:
            return f"not connected: {self.error}"
        parts = [f"handshake {'completed' if self.handshake_completed else 'failed'}"
                 + (f" ({self.version}, ALPN {self.alpn or 'none'})" if self.version else ""),
                 f"server certificate SAN {', '.join(self.server_sans) or '-'} issued by {self.server_issuer or '-'}",
                 f"client certificate {'requested' if self.certificate_requested else 'NOT requested'} by the server, "
                 f"{'sent: ' + self.certificate_sent if self.certificate_sent else 'none sent'}"]
        if self.alert:
            parts.append(f"server alert: {self.alert}")
        if self.error:
            parts.append(f"error: {self.error}")
        if self.reply:
            parts.append(f"answer: {self.reply[:160]!r}")
        elif self.handshake_completed:
            parts.append("no answer" + (" (peer closed)" if self.closed_by_peer else ""))
        return "; ".join(parts)


@dataclass(frozen=True)
class FaultStatus:
    """A fault's state in Chaos Mesh's terms: selected pods, AllInjected, AllRecovered."""

    kind: str  # PodChaos, NetworkChaos, HTTPChaos
    name: str
    selected: bool
    all_injected: bool
    all_recovered: bool
    records: tuple[str, ...] = ()  # one line per selected pod: "echo/echo-us-0: Injected"
    message: str = ""

    def summary(self) -> str:
        state = "recovered" if self.all_recovered else "injected" if self.all_injected else "not injected"
        return f"{self.kind}/{self.name}: {state}; " + ("; ".join(self.records) or "no pod selected") + (f" ({self.message})" if self.message else "")


@dataclass(frozen=True)
class LoadSample:
    """One request of a steady load: its start (seconds since the load began) and how it ended."""

    t: float
    latency_s: float
    status: int | None
    cluster: str | None  # the cluster whose echo served it; None when no echo answered
    response_flags: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class TransitCapture:
    """A capture of the network between the clusters (filled when it stops): the frames in pcap
    format, and every TCP stream among them judged (:mod:`eastwest.support.tlswire`)."""

    pcap: bytes = b""
    report: WireReport | None = None


@dataclass
class LoadRun:
    """A steady load in progress; ``samples`` is filled when it stops."""

    client: Workload
    url: str
    rate: float
    samples: list[LoadSample] = field(default_factory=list)


class TrafficObserver(Protocol):
    """Something that wants to see every request a test makes and what it reads of the mesh (reports, logs)."""

    def on_call(self, cluster: Cluster, client: Workload, url: str, responses: list[EchoResponse]) -> None: ...

    def on_probe(self, cluster: Cluster, client: Workload, target: str, result: ProbeResult) -> None: ...

    def on_observation(self, cluster: Cluster, title: str, text: str) -> None: ...

    def on_fault(self, cluster: Cluster, event: str, status: FaultStatus) -> None: ...

    def on_load(self, cluster: Cluster, event: str, run: LoadRun) -> None: ...


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
                               timeout=self.timeouts.request if timeout is None else timeout)
        for observer in self.observers:
            observer.on_call(self, Workload.parse(client), url, responses)
        return responses

    def probe(self, client: Workload | str, address: str, port: int, *, send: bytes = b"", timeout: float | None = None) -> ProbeResult:
        """Open a plain TCP connection from a pod of ``client`` to ``address:port``, bypassing its sidecar.

        Connecting, and waiting for a reply to ``send``, each may take ``timeout`` seconds
        (default: the run's ``request`` time limit). With nothing to send, it only connects.
        """
        result = self._probe(Workload.parse(client), address, port, send=send, timeout=self.timeouts.request if timeout is None else timeout)
        for observer in self.observers:
            observer.on_probe(self, Workload.parse(client), f"{address}:{port}", result)
        return result

    @abc.abstractmethod
    def _call(self, client: Workload, url: str, *, count: int, headers: dict[str, str], timeout: float) -> list[EchoResponse]:
        """Backend part of :meth:`call`."""

    @abc.abstractmethod
    def _probe(self, client: Workload, address: str, port: int, *, send: bytes, timeout: float) -> ProbeResult:
        """Backend part of :meth:`probe`."""

    def scan(self, client: Workload | str, address: str, ports: Iterable[int], *, send: bytes = b"",
             timeout: float | None = None) -> PortScan:
        """Probe each of ``ports`` of ``address`` from a pod of ``client`` (feature ``gateway-port-scan``).

        At most :data:`MAX_SCAN_PORTS` ports; each connection (and the wait for a reply to ``send``)
        is bounded by ``timeout`` (default: the ``request`` time limit).
        """
        wanted = sorted(set(ports))
        if not wanted or len(wanted) > MAX_SCAN_PORTS:
            raise ValueError(f"a scan probes 1 to {MAX_SCAN_PORTS} ports, got {len(wanted)}")
        result = PortScan(address, self._scan(Workload.parse(client), address, wanted, send=send,
                                             timeout=self.timeouts.request if timeout is None else timeout))
        self._observed(f"port scan of {address} from {Workload.parse(client)}", result.summary())
        return result

    def _scan(self, client: Workload, address: str, ports: list[int], *, send: bytes, timeout: float) -> dict[int, ProbeResult]:
        """Backend part of :meth:`scan`: one probe after the other, unless the backend does better."""
        return {port: self._probe(client, address, port, send=send, timeout=timeout) for port in ports}

    def tls_connect(self, client: Workload | str, address: str, port: int, *, sni: str, alpn: Iterable[str] = (),
                    certificate: str = "none", send: bytes = b"", timeout: float | None = None) -> TlsResult:
        """Complete a TLS handshake from inside a pod of ``client``, bypassing its sidecar, and send ``send``
        (feature ``raw-tls-client``). ``certificate`` is one of :data:`CLIENT_CERTIFICATES`. The server's
        certificate is read, not verified: the result says what it is."""
        if certificate not in CLIENT_CERTIFICATES:
            raise ValueError(f"certificate must be one of {', '.join(CLIENT_CERTIFICATES)}, got {certificate!r}")
        result = self._tls_connect(Workload.parse(client), address, port, sni=sni, alpn=list(alpn), certificate=certificate,
                                   send=send, timeout=self.timeouts.request if timeout is None else timeout)
        self._observed(f"TLS to {address}:{port} (SNI {sni}) from {Workload.parse(client)} with certificate {certificate}",
                       result.summary())
        return result

    def _tls_connect(self, client: Workload, address: str, port: int, *, sni: str, alpn: list[str], certificate: str,
                     send: bytes, timeout: float) -> TlsResult:
        """Backend part of :meth:`tls_connect`."""
        raise FeatureUnsupported("this backend has no raw TLS client (feature raw-tls-client)")

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

    # ---- faults and load (the chaos seam) ----------------------------------------------

    @contextlib.contextmanager
    def inject(self, document: Document) -> Iterator[FaultStatus]:
        """Inject a Chaos Mesh fault (a rendered PodChaos, NetworkChaos or HTTPChaos) and always remove it.

        Returns once the fault is really in place (AllInjected); raises FaultNotInjected when it
        never lands, and FaultUnsupported when the backend cannot honour a kind or field.
        The fault is removed when the block ends, also on failure or interruption.
        """
        status = self._inject(document)
        for observer in self.observers:
            observer.on_fault(self, "injected", status)
        try:
            if not status.all_injected:
                raise FaultNotInjected(f"the fault never landed: {status.summary()}")
            yield status
        finally:
            recovered = self._recover(document)
            for observer in self.observers:
                observer.on_fault(self, "recovered", recovered)

    def _inject(self, document: Document) -> FaultStatus:
        """Backend part of :meth:`inject` (backends that support faults override it)."""
        raise FaultUnsupported(f"{document.ref}: this backend cannot inject faults")

    def _recover(self, document: Document) -> FaultStatus:
        """Backend part of :meth:`inject`'s clean-up."""
        raise FaultUnsupported(f"{document.ref}: this backend cannot inject faults")

    @contextlib.contextmanager
    def load(self, client: Workload | str, url: str, *, rate: float, timeout: float, limit: float) -> Iterator[LoadRun]:
        """A steady stream of ``rate`` requests per second from a pod of ``client`` for the block
        (each bounded by ``timeout``, the whole by ``limit`` seconds); ``run.samples`` afterwards."""
        run = LoadRun(Workload.parse(client), url, rate)
        handle = self._start_load(run.client, url, rate=rate, timeout=timeout, limit=limit)
        for observer in self.observers:
            observer.on_load(self, "started", run)
        try:
            yield run
        finally:
            run.samples = self._stop_load(handle)
            for observer in self.observers:
                observer.on_load(self, "stopped", run)

    def _start_load(self, client: Workload, url: str, *, rate: float, timeout: float, limit: float) -> str:
        raise FaultUnsupported("this backend cannot run a steady load")

    def _stop_load(self, handle: str) -> list[LoadSample]:
        raise FaultUnsupported("this backend cannot run a steady load")


class Mesh(abc.ABC):
    """The whole mesh: clusters by role, what the backend can do, and its lifecycle."""

    backend: str
    topology: Topology
    features: frozenset[str]
    #: the faults this backend can inject, as "Kind/action" ("PodChaos/pod-kill", "NetworkChaos/partition")
    faults: frozenset[str] = frozenset()
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

    @contextlib.contextmanager
    def capture_transit(self, *, limit: float) -> Iterator[TransitCapture]:
        """Capture every packet between the clusters' networks for the block, at most ``limit`` seconds
        (feature ``transit-capture``); the capture's ``pcap`` is filled when the block ends."""
        capture = TransitCapture()
        handle = self._start_capture(limit)
        try:
            yield capture
        finally:
            capture.pcap = self._stop_capture(handle)
        capture.report = analyse(capture.pcap)
        first = next(iter(self.clusters.values()))  # observers watch clusters; the capture is the mesh's, report it once
        first._observed("transit capture: every TCP stream between the clusters", capture.report.summary())

    def _start_capture(self, limit: float) -> str:
        raise FeatureUnsupported("this backend cannot capture the traffic between its networks (feature transit-capture)")

    def _stop_capture(self, handle: str) -> bytes:
        raise FeatureUnsupported("this backend cannot capture the traffic between its networks (feature transit-capture)")

    def describe(self) -> MeshDescription:
        """What this mesh runs (control plane, Istio and Envoy versions), for reports; backends override it.

        The default says only that the backend declared nothing, so a report never guesses."""
        return MeshDescription(self.backend, control_plane="not declared by the backend",
                               istio_version="unknown", envoy_version="unknown")

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
