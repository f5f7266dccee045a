"""Traffic from inside a pod: HTTP requests through its sidecar, raw TCP probes, kube-proxy.

A client with a sidecar sends through it as an explicit HTTP proxy (127.0.0.1:15001: the
lab has no iptables capture). A client without one resolves a Service name the way
kube-dns and kube-proxy would: to one of the Service's local pod endpoints, in turn.
"""

from __future__ import annotations

import http.client
import socket
import time
from urllib.parse import urlsplit

from eastwest.backends.lab.envoy_config import OUTBOUND_PORT
from eastwest.backends.lab.istiod import svc_host
from eastwest.backends.lab.kubelet import ClusterRuntime, Pod
from eastwest.backends.lab.protocol import HttpResult, ProbeReply
from eastwest.support.errors import ConfigError


def describe(exc: BaseException) -> str:
    """An OS or HTTP error as the short phrase the checks look for ("timed out", ...)."""
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "connection closed without a response"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


class DataPlane:
    """Sends requests and probes from pods."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}  # kube-proxy's round robin, per Service host

    def resolve_without_sidecar(self, rt: ClusterRuntime, host: str, port: int) -> tuple[str, int]:
        """kube-dns + kube-proxy for a pod without a sidecar: a Service name -> one of its local endpoints."""
        parts = host.split(".")
        if all(p.isdigit() for p in parts) and len(parts) == 4:
            return host, port
        for key, body in rt.store.of_kind("Service"):
            if host not in (key.name + "." + key.namespace, f"{key.name}.{key.namespace}.svc", svc_host(key.name, key.namespace)):
                continue
            for p in body["spec"].get("ports") or []:
                if int(p["port"]) != port:
                    continue
                selector = body["spec"].get("selector") or {}
                pods = [pod for pod in rt.pods.values() if pod.ready and pod.namespace == key.namespace and selector
                        and all(pod.labels.get(k) == str(v) for k, v in selector.items())]
                if not pods:
                    raise OSError(f"service {host} has no endpoints in {rt.name}")
                i = self._next.get(host, 0)
                self._next[host] = i + 1
                pod = pods[i % len(pods)]
                target = p.get("targetPort", p["port"])
                return pod.net.ip, pod.ports.get(target, 0) if isinstance(target, str) else int(target)
        raise OSError(f"could not resolve host {host}")

    def call(self, rt: ClusterRuntime, pod: Pod, url: str, count: int, headers: dict[str, str], timeout: float) -> list[HttpResult]:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ConfigError(f"url must be http://host[:port]/path, got {url!r}")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        port = parts.port or 80
        out = []
        for _ in range(count):
            start = time.monotonic()
            try:
                target = ("127.0.0.1", OUTBOUND_PORT) if pod.sidecar else self.resolve_without_sidecar(rt, parts.hostname, port)
                sock = pod.net.ns.socket()
                sock.settimeout(timeout)
                try:
                    sock.connect(target)
                    conn = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
                    conn.sock = sock
                    conn.request("GET", path, headers={"Host": parts.netloc, "User-Agent": "eastwest-lab", **headers})
                    resp = conn.getresponse()
                    body = resp.read().decode(errors="replace")
                    out.append(HttpResult(url, time.monotonic() - start, resp.status, dict(resp.getheaders()), body))
                finally:
                    sock.close()
            except (OSError, http.client.HTTPException) as exc:
                out.append(HttpResult(url, time.monotonic() - start, error=describe(exc)))
        return out

    @staticmethod
    def probe(pod: Pod, address: str, port: int, send: bytes, timeout: float) -> ProbeReply:
        sock = pod.net.ns.socket()
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
        except OSError as exc:
            sock.close()
            return ProbeReply(False, describe(exc))
        if not send:  # a connect probe: servers speak only when spoken to, so waiting would only cost time
            sock.close()
            return ProbeReply(True)
        reply, closed = b"", False
        try:
            sock.sendall(send)
            chunk = sock.recv(4096)
            reply, closed = chunk, not chunk
        except TimeoutError:
            pass
        except OSError:
            closed = True
        finally:
            sock.close()
        return ProbeReply(True, None, reply, closed)
