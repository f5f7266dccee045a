"""The lab supervisor's protocol: every request and reply across its socket, typed.

Each request is a frozen dataclass naming its operation (``op``) and its reply type
(``Reply``); ``wire.py`` carries them as JSON lines and dispatches each to ``rpc_<op>`` of the
supervisor's :class:`~eastwest.backends.lab.supervisor.Lab`. Requests carry every time limit
explicitly: the defaults live in ``Timeouts`` only, on the client side.

This module imports nothing of the lab, so both ends (``mesh.py`` and ``supervisor.py``) use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

R = TypeVar("R")


# ---- replies ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MeshSettings:
    """What a cluster's istiod runs with (from its Helm values)."""

    mesh_id: str
    trust_domain: str
    network: str
    cluster_name: str


@dataclass(frozen=True)
class PodStatus:
    name: str
    namespace: str
    ip: str
    sidecar: bool
    envoy_pid: int | None
    alive: bool
    ready: bool = False  # published as an endpoint (sidecar synced, app healthy), as a Ready pod


@dataclass(frozen=True)
class ClusterStatus:
    mesh: MeshSettings | None
    gateway_address: str | None
    pods: list[PodStatus]


@dataclass(frozen=True)
class LabStatus:
    clusters: dict[str, ClusterStatus]
    #: the deliberate breakages this lab was started with (``--lab-break``), for run identity in reports
    breaks: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HttpResult:
    """One request's outcome: an HTTP answer, or ``error`` when none came back."""

    url: str
    latency_s: float
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    error: str | None = None


@dataclass(frozen=True)
class ProbeReply:
    connected: bool
    error: str | None = None
    reply: bytes = b""
    closed_by_peer: bool = False


@dataclass(frozen=True)
class WireDocument:
    """A rendered manifest document as it crosses the socket."""

    body: dict[str, Any]
    source: str


@dataclass(frozen=True)
class ChaosRecord:
    """One selected pod of a fault, as Chaos Mesh's ``status.experiment.containerRecords`` has it."""

    pod: str  # namespace/name
    phase: str  # "Injected" | "Not Injected"
    message: str = ""


@dataclass(frozen=True)
class ChaosStatus:
    """A fault's state, with Chaos Mesh's conditions: Selected, AllInjected, AllRecovered."""

    kind: str
    name: str
    selected: bool
    all_injected: bool
    all_recovered: bool
    records: list[ChaosRecord] = field(default_factory=list)
    message: str = ""


@dataclass(frozen=True)
class LoadRecord:
    """One request of a steady load: when it started (seconds since the load began), how it ended."""

    t: float
    latency_s: float
    status: int | None
    cluster: str | None  # the cluster whose echo served it (None: not an echo answer)
    response_flags: str | None
    error: str | None


@dataclass(frozen=True)
class TlsReply:
    """What a raw TLS client in a pod saw (see ``eastwest.mesh.TlsResult``)."""

    connected: bool
    handshake_completed: bool = False
    version: str | None = None
    alpn: str | None = None
    server_sans: list[str] = field(default_factory=list)
    server_issuer: str | None = None
    certificate_requested: bool = False
    certificate_sent: str | None = None
    alert: str | None = None
    error: str | None = None
    reply: bytes = b""
    closed_by_peer: bool = False


# ---- requests --------------------------------------------------------------------------


@dataclass(frozen=True)
class Request(Generic[R]):
    op: ClassVar[str]
    Reply: ClassVar[Any]


@dataclass(frozen=True)
class Status(Request[LabStatus]):
    op = "status"
    Reply = LabStatus


@dataclass(frozen=True)
class Install(Request[MeshSettings]):
    """What ``helm install istiod`` and ``helm install istio/gateway`` do in one cluster."""

    op = "install"
    Reply = MeshSettings
    cluster: str
    istiod: dict[str, Any]
    gateway: dict[str, Any]
    within: float


@dataclass(frozen=True)
class Apply(Request[None]):
    op = "apply"
    Reply = type(None)
    cluster: str
    documents: list[WireDocument]
    within: float


@dataclass(frozen=True)
class Delete(Request[None]):
    op = "delete"
    Reply = type(None)
    cluster: str
    documents: list[WireDocument]
    within: float


@dataclass(frozen=True)
class Call(Request[list[HttpResult]]):
    """``count`` sequential HTTP requests from a pod of ``client``, one connection each."""

    op = "call"
    Reply = list[HttpResult]
    cluster: str
    client: str
    url: str
    count: int
    headers: dict[str, str]
    timeout: float


@dataclass(frozen=True)
class Probe(Request[ProbeReply]):
    op = "probe"
    Reply = ProbeReply
    cluster: str
    client: str
    address: str
    port: int
    send: bytes
    timeout: float


@dataclass(frozen=True)
class Scan(Request[list[ProbeReply]]):
    """Probe each of ``ports`` of ``address`` from a pod of ``client``, several at once; one reply per port, in order."""

    op = "scan"
    Reply = list[ProbeReply]
    cluster: str
    client: str
    address: str
    ports: list[int]
    send: bytes
    timeout: float


@dataclass(frozen=True)
class TlsConnect(Request[TlsReply]):
    """A TLS handshake from a pod of ``client``, bypassing its sidecar, presenting ``certificate``
    (a name of ``eastwest.mesh.CLIENT_CERTIFICATES``), then ``send`` and read the answer."""

    op = "tls_connect"
    Reply = TlsReply
    cluster: str
    client: str
    address: str
    port: int
    sni: str
    alpn: list[str]
    certificate: str
    send: bytes
    timeout: float


@dataclass(frozen=True)
class StartCapture(Request[str]):
    """Capture every frame on the transit network for at most ``limit`` seconds; returns the capture's id."""

    op = "start_capture"
    Reply = str
    limit: float


@dataclass(frozen=True)
class StopCapture(Request[bytes]):
    """Stop a capture; the frames in pcap format."""

    op = "stop_capture"
    Reply = bytes
    capture_id: str


@dataclass(frozen=True)
class PodIps(Request[list[str]]):
    op = "pod_ips"
    Reply = list[str]
    cluster: str
    workload: str


@dataclass(frozen=True)
class Admin(Request[str]):
    """GET on a proxy's admin API, from inside its pod."""

    op = "admin"
    Reply = str
    cluster: str
    workload: str
    path: str
    timeout: float


@dataclass(frozen=True)
class Logs(Request[str]):
    op = "logs"
    Reply = str
    cluster: str
    workload: str
    lines: int


@dataclass(frozen=True)
class InjectChaos(Request[ChaosStatus]):
    """Inject a Chaos Mesh fault (PodChaos, NetworkChaos, HTTPChaos) into ``cluster``; the reply
    comes once every selected pod has it in place (AllInjected), or says why not."""

    op = "inject_chaos"
    Reply = ChaosStatus
    cluster: str
    document: WireDocument
    within: float


@dataclass(frozen=True)
class RecoverChaos(Request[ChaosStatus]):
    """Remove a fault (as deleting its Chaos Mesh object does); the reply comes once AllRecovered."""

    op = "recover_chaos"
    Reply = ChaosStatus
    cluster: str
    kind: str
    name: str
    within: float


@dataclass(frozen=True)
class StartLoad(Request[str]):
    """Start a steady stream of requests from a pod of ``client`` (``rate`` per second, each
    bounded by ``timeout``), for at most ``limit`` seconds; returns the load's id."""

    op = "start_load"
    Reply = str
    cluster: str
    client: str
    url: str
    rate: float
    timeout: float
    limit: float


@dataclass(frozen=True)
class StopLoad(Request[list[LoadRecord]]):
    """Stop a load and return every request it made."""

    op = "stop_load"
    Reply = list[LoadRecord]
    load_id: str


@dataclass(frozen=True)
class Shutdown(Request[None]):
    op = "shutdown"
    Reply = type(None)


REQUESTS: dict[str, type[Request[Any]]] = {
    cls.op: cls for cls in (Status, Install, Apply, Delete, Call, Probe, Scan, TlsConnect, StartCapture, StopCapture, PodIps, Admin, Logs, InjectChaos, RecoverChaos,
                             StartLoad, StopLoad, Shutdown)
}
