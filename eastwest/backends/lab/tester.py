"""What a security tester on the lab's networks can do: scan ports, speak raw TLS from a pod, capture the transit.

These are the supervisor's operations behind the features ``gateway-port-scan``,
``raw-tls-client`` and ``transit-capture``; :class:`~eastwest.backends.lab.supervisor.Lab`
inherits them (``rpc_<op>``, dispatched by ``wire.py``).
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from eastwest.backends.lab import protocol as rpc
from eastwest.backends.lab.capture import PacketCapture
from eastwest.backends.lab.dataplane import DataPlane
from eastwest.backends.lab.tlsclient import handshake
from eastwest.mesh import CLIENT_CERTIFICATES, MAX_SCAN_PORTS, OTHER_TRUST_DOMAIN
from eastwest.support import pki
from eastwest.support.errors import ConfigError
from eastwest.support.spiffe import SpiffeId

if TYPE_CHECKING:
    from eastwest.backends.lab.kubelet import Kubelet, Pod
    from eastwest.backends.lab.network import LabNetwork

SCAN_PARALLELISM = 16  # a scan of MAX_SCAN_PORTS ports takes at most 8 x its per-port time limit
TRANSIT_BRIDGE = "transit"

# the running captures of this supervisor (one lab per supervisor process)
_captures: dict[str, PacketCapture] = {}
_capture_ids = itertools.count(1)
_capture_lock = threading.Lock()


class NetworkTester:
    """The supervisor's tester operations (a mixin of ``Lab``)."""

    kubelet: Kubelet
    network: LabNetwork

    def find_pod(self, cluster: str, workload: str) -> Pod:
        raise NotImplementedError

    def _trust_domain(self, cluster: str) -> str:
        raise NotImplementedError

    def rpc_scan(self, req: rpc.Scan) -> list[rpc.ProbeReply]:
        if not 0 < len(req.ports) <= MAX_SCAN_PORTS:
            raise ConfigError(f"a scan probes 1 to {MAX_SCAN_PORTS} ports, got {len(req.ports)}")
        pod = self.find_pod(req.cluster, req.client)
        with ThreadPoolExecutor(SCAN_PARALLELISM, thread_name_prefix="scan") as pool:
            return list(pool.map(lambda port: DataPlane.probe(pod, req.address, port, req.send, req.timeout), req.ports))

    def _client_certificate(self, pod: Pod, kind: str) -> pki.WorkloadCert | None:
        """The certificate a raw TLS client presents, minted as the pod's cluster CA (or another) would."""
        own = SpiffeId(self._trust_domain(pod.cluster), pod.namespace, pod.service_account)
        if kind == "none":
            return None
        if kind == "own":
            return self.kubelet.cas[pod.cluster].workload(own)
        if kind == "untrusted-root":
            return self.kubelet.untrusted_ca.workload(own)
        if kind == "other-trust-domain":
            return self.kubelet.cas[pod.cluster].workload(SpiffeId(OTHER_TRUST_DOMAIN, pod.namespace, pod.service_account))
        raise ConfigError(f"unknown client certificate {kind!r}; known: {', '.join(CLIENT_CERTIFICATES)}")

    def rpc_tls_connect(self, req: rpc.TlsConnect) -> rpc.TlsReply:
        pod = self.find_pod(req.cluster, req.client)
        return handshake(pod.net.ns, req.address, req.port, sni=req.sni, alpn=req.alpn,
                         cert=self._client_certificate(pod, req.certificate), send=req.send, timeout=req.timeout,
                         workdir=pod.dir)

    def rpc_start_capture(self, req: rpc.StartCapture) -> str:
        with _capture_lock:
            capture_id = f"capture-{next(_capture_ids)}"
            _captures[capture_id] = PacketCapture(self.network.root, TRANSIT_BRIDGE, req.limit)
        return capture_id

    def rpc_stop_capture(self, req: rpc.StopCapture) -> bytes:
        with _capture_lock:
            capture = _captures.pop(req.capture_id, None)
        if capture is None:
            raise ConfigError(f"no capture {req.capture_id!r} is running")
        return capture.stop()
