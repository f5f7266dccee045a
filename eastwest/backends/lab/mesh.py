"""The lab as a :class:`~eastwest.mesh.Mesh`: every operation is a typed request to the lab supervisor."""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from eastwest.backends.lab import protocol as rpc
from eastwest.backends.lab.chaos.spec import FAULTS
from eastwest.backends.lab.istiod import MIRRORS_ISTIO
from eastwest.backends.lab.launcher import connect, launch, wait_closed
from eastwest.mesh import (
    FEATURES,
    Cluster,
    FaultStatus,
    LoadSample,
    Mesh,
    MeshConfig,
    MeshDescription,
    ProbeResult,
    ProxyEndpoint,
    TlsResult,
    Workload,
)
from eastwest.settings import Timeouts
from eastwest.support import envoy, install
from eastwest.support.echo import EchoResponse
from eastwest.support.errors import LabError
from eastwest.support.manifest import Document
from eastwest.support.topology import Topology, load_topology
from eastwest.workloads import EASTWEST_GATEWAY

log = logging.getLogger("eastwest.lab")


def _wire(docs: Iterable[Document]) -> list[rpc.WireDocument]:
    return [rpc.WireDocument(d.body, d.source) for d in docs]


def _fault_status(s: rpc.ChaosStatus) -> FaultStatus:
    return FaultStatus(s.kind, s.name, s.selected, s.all_injected, s.all_recovered,
                       tuple(f"{r.pod}: {r.phase} ({r.message})" if r.message else f"{r.pod}: {r.phase}" for r in s.records), s.message)


class LabCluster(Cluster):
    """One lab cluster."""

    def __init__(self, mesh: LabMesh, name: str):
        super().__init__(mesh.topology.cluster(name), mesh.topology, mesh.timeouts)
        self._mesh = mesh

    def _status(self) -> rpc.ClusterStatus:
        return self._mesh.conn.request(rpc.Status()).clusters[self.name]

    def _mesh_config(self) -> MeshConfig:
        mesh = self._status().mesh
        if mesh is None:
            return MeshConfig("", "", "", "")
        return MeshConfig(mesh.mesh_id, mesh.trust_domain, mesh.network, mesh.cluster_name)

    def gateway_address(self) -> str | None:
        return self._status().gateway_address

    def apply(self, documents: Iterable[Document]) -> None:
        self._mesh.conn.request(rpc.Apply(self.name, _wire(documents), self.timeouts.apply))

    def delete(self, documents: Iterable[Document]) -> None:
        self._mesh.conn.request(rpc.Delete(self.name, _wire(documents), self.timeouts.apply))

    def _call(self, client: Workload, url: str, *, count: int, headers: dict[str, str], timeout: float) -> list[EchoResponse]:
        results = self._mesh.conn.request(rpc.Call(self.name, str(client), url, count, headers, timeout))
        return [
            EchoResponse.failed(url=r.url, error=r.error or "no response", latency_s=r.latency_s) if r.status is None
            else EchoResponse.from_http(url=r.url, status=r.status, headers=r.headers, body=r.body, latency_s=r.latency_s)
            for r in results
        ]

    def _probe(self, client: Workload, address: str, port: int, *, send: bytes, timeout: float) -> ProbeResult:
        r = self._mesh.conn.request(rpc.Probe(self.name, str(client), address, port, send, timeout))
        return ProbeResult(r.connected, r.error, r.reply, r.closed_by_peer)

    def _scan(self, client: Workload, address: str, ports: list[int], *, send: bytes, timeout: float) -> dict[int, ProbeResult]:
        replies = self._mesh.conn.request(rpc.Scan(self.name, str(client), address, ports, send, timeout))
        return {port: ProbeResult(r.connected, r.error, r.reply, r.closed_by_peer) for port, r in zip(ports, replies, strict=True)}

    def _tls_connect(self, client: Workload, address: str, port: int, *, sni: str, alpn: list[str], certificate: str,
                     send: bytes, timeout: float) -> TlsResult:
        r = self._mesh.conn.request(rpc.TlsConnect(self.name, str(client), address, port, sni, alpn, certificate, send, timeout))
        return TlsResult(r.connected, r.handshake_completed, r.version, r.alpn, tuple(r.server_sans), r.server_issuer,
                         r.certificate_requested, r.certificate_sent, r.alert, r.error, r.reply, r.closed_by_peer)

    def _start_load(self, client: Workload, url: str, *, rate: float, timeout: float, limit: float) -> str:
        return self._mesh.conn.request(rpc.StartLoad(self.name, str(client), url, rate, timeout, limit))

    def _stop_load(self, handle: str) -> list[LoadSample]:
        return [LoadSample(r.t, r.latency_s, r.status, r.cluster, r.response_flags, r.error)
                for r in self._mesh.conn.request(rpc.StopLoad(handle))]

    def pod_ips(self, workload: Workload | str) -> list[str]:
        return self._mesh.conn.request(rpc.PodIps(self.name, str(Workload.parse(workload))))

    def _admin(self, workload: Workload, path: str) -> str:
        return self._mesh.conn.request(rpc.Admin(self.name, str(workload), path, self.timeouts.request))

    def _proxy_endpoints(self, workload: Workload, upstream: str) -> list[ProxyEndpoint]:
        return envoy.endpoints(json.loads(self._admin(workload, "/clusters?format=json")), upstream)

    def proxy_config_dump(self, workload: Workload | str) -> dict[str, Any]:
        # with the EDS endpoints (locality weights, priorities), as `istioctl proxy-config all` shows them
        result: dict[str, Any] = json.loads(self._admin(Workload.parse(workload), "/config_dump?include_eds"))
        return result

    def proxy_logs(self, workload: Workload | str, lines: int = 50) -> str | None:
        """The proxy's own log and access log, and the app's."""
        return self._mesh.conn.request(rpc.Logs(self.name, str(Workload.parse(workload)), lines))

    # a Chaos Mesh object is a manifest: putting it in place and taking it away are bounded like applying one
    def _inject(self, document: Document) -> FaultStatus:
        return _fault_status(self._mesh.conn.request(rpc.InjectChaos(self.name, rpc.WireDocument(document.body, document.source),
                                                                     self.timeouts.apply)))

    def _recover(self, document: Document) -> FaultStatus:
        return _fault_status(self._mesh.conn.request(rpc.RecoverChaos(self.name, document.kind, document.name, self.timeouts.apply)))


class LabMesh(Mesh):
    """The embedded two-network lab: started here (and stopped by ``close``), or attached to by name."""

    backend = "lab"
    features = frozenset(FEATURES)
    faults = FAULTS  # what eastwest/backends/lab/chaos/ executes (README, "Faults in the lab")

    def __init__(self, manifests: Path, *, name: str | None = None, breaks: frozenset[str] = frozenset(), attach: bool = False,
                 envoy: str | None = None, timeouts: Timeouts | None = None, detach: bool = False):
        self.manifests = manifests
        self.timeouts = timeouts or Timeouts()
        self.topology: Topology = load_topology(manifests / "topology.yaml")
        self.process: subprocess.Popen[bytes] | None = None
        self.owned = not attach
        if attach:
            assert name is not None
            self.name = name
        else:
            self.name, self.process = launch(self.topology.source, within=self.timeouts.bring_up, name=name, breaks=breaks,
                                             detach=detach, envoy=envoy)
        self.conn = connect(self.name)
        self._clusters = {n: LabCluster(self, n) for n in self.topology.names}

    @property
    def identity(self) -> str:
        return f"lab-{self.name}"

    @property
    def clusters(self) -> Mapping[str, Cluster]:
        return self._clusters

    def describe(self) -> MeshDescription:
        """The lab's control plane is the project's istiod stand-in; Envoy's version is what its proxies report."""
        first = self._clusters[self.topology.names[0]]
        build = str(json.loads(first._admin(EASTWEST_GATEWAY, "/server_info")).get("version", ""))
        return MeshDescription(
            backend=self.backend,
            control_plane="eastwest lab control plane, the project's stand-in for istiod",
            istio_version=MIRRORS_ISTIO,
            control_plane_stand_in=True,
            envoy_version=envoy.release(build),
            envoy_build=build,
            deliberate_breaks=tuple(self.status().breaks),
            details=(("lab name", self.name), ("lab", "started by this run" if self.owned else "attached (eastwest lab up)")),
        )

    def install(self) -> None:
        """Install Istio, the east-west gateways and the base workloads in every cluster, phase by phase
        (``install.PHASES``, the order every backend follows)."""
        istiod: dict[str, dict[str, Any]] = {}
        try:
            for phase in install.PHASES:
                for name in self.topology.names:
                    t0 = time.monotonic()
                    if phase.manifests:
                        self._clusters[name].apply(install.documents(self.manifests, self.topology, name, phase.manifests))
                    elif phase.name == "istiod":
                        # the lab's istiod starts with its gateway (one Install request); cacerts of the
                        # namespace phase is the lab's own PKI, issued by the supervisor
                        istiod[name] = install.helm_values(self.manifests, self.topology, name, install.ISTIOD_VALUES)
                        continue
                    elif phase.name == "eastwest-gateway":
                        self.conn.request(rpc.Install(
                            name, istiod[name], install.helm_values(self.manifests, self.topology, name, install.GATEWAY_VALUES),
                            self.timeouts.apply,
                        ))
                    else:
                        # istio-base: the lab's CRDs are built in; remote-secrets: every lab istiod sees every cluster
                        continue
                    log.info("lab: %s phase %s done in %.2fs", name, phase.name, time.monotonic() - t0)
        except Exception:
            self.shutdown()
            raise

    def _start_capture(self, limit: float) -> str:
        return self.conn.request(rpc.StartCapture(limit))

    def _stop_capture(self, handle: str) -> bytes:
        return self.conn.request(rpc.StopCapture(handle))

    def status(self) -> rpc.LabStatus:
        return self.conn.request(rpc.Status())

    def shutdown(self) -> None:
        """Stop the supervisor (and with it every process and namespace of the lab); returns once
        a new lab of the same name can start."""
        try:
            self.conn.request(rpc.Shutdown())
            wait_closed(self.conn, self.timeouts.apply)
        except LabError:
            pass
        self.conn.close()
        if self.process is not None:
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def close(self) -> None:
        """Release what this object started: a lab it launched stops, an attached one keeps running."""
        if self.owned:
            self.shutdown()
        else:
            self.conn.close()
