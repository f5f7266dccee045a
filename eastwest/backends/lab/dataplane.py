"""Traffic from inside a pod: HTTP requests through its sidecar, steady loads, raw TCP probes, kube-proxy.

A client with a sidecar sends through it as an explicit HTTP proxy (127.0.0.1:15001: the
lab has no iptables capture). A client without one resolves a Service name the way
kube-dns and kube-proxy would: to one of the Service's local pod endpoints, in turn.
A steady load (:class:`SteadyLoad`) sends the same requests on an open-loop schedule.
"""

from __future__ import annotations

import http.client
import itertools
import json
import math
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import SplitResult, urlsplit

from eastwest.backends.lab.envoy_config import OUTBOUND_PORT
from eastwest.backends.lab.istiod import svc_host
from eastwest.backends.lab.kubelet import ClusterRuntime, Pod
from eastwest.backends.lab.protocol import HttpResult, LoadRecord, ProbeReply
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
        self._loads: dict[str, SteadyLoad] = {}
        self._load_ids = itertools.count(1)
        self._lock = threading.Lock()

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

    @staticmethod
    def parse_url(url: str) -> SplitResult:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ConfigError(f"url must be http://host[:port]/path, got {url!r}")
        return parts

    def request(self, rt: ClusterRuntime, pod: Pod, parts: SplitResult, headers: dict[str, str], timeout: float) -> HttpResult:
        """One GET on a new connection (to the pod's sidecar, or kube-proxy's pick), all of it within ``timeout``:
        each step waits only for what is left of it, as a client's total time limit (curl --max-time) does."""
        url = parts.geturl()
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        port = parts.port or 80
        start = time.monotonic()
        deadline = start + timeout
        try:
            target = ("127.0.0.1", OUTBOUND_PORT) if pod.sidecar else self.resolve_without_sidecar(rt, parts.hostname or "", port)
            sock = pod.net.ns.socket()
            try:
                sock.settimeout(timeout)
                sock.connect(target)
                conn = http.client.HTTPConnection(parts.hostname or "", port, timeout=timeout)
                conn.sock = sock
                conn.request("GET", path, headers={"Host": parts.netloc, "User-Agent": "eastwest-lab", **headers})
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                resp = conn.getresponse()
                body = resp.read().decode(errors="replace")
            finally:
                sock.close()
        except (OSError, http.client.HTTPException) as exc:
            return HttpResult(url, time.monotonic() - start, error=describe(exc))
        latency = time.monotonic() - start
        if latency > timeout:  # the answer came after the client would have given up
            return HttpResult(url, latency, error="timed out")
        return HttpResult(url, latency, resp.status, dict(resp.getheaders()), body)

    def call(self, rt: ClusterRuntime, pod: Pod, url: str, count: int, headers: dict[str, str], timeout: float) -> list[HttpResult]:
        parts = self.parse_url(url)
        return [self.request(rt, pod, parts, headers, timeout) for _ in range(count)]

    def start_load(self, rt: ClusterRuntime, pod: Pod, url: str, *, rate: float, timeout: float, limit: float) -> str:
        """Start a :class:`SteadyLoad` of GETs from ``pod``; returns its id."""
        parts = self.parse_url(url)
        load = SteadyLoad(lambda: self.request(rt, pod, parts, {}, timeout), rate=rate, timeout=timeout, limit=limit)
        with self._lock:
            load_id = f"load-{next(self._load_ids)}"
            self._loads[load_id] = load
        load.start()
        return load_id

    def stop_load(self, load_id: str) -> list[LoadRecord]:
        with self._lock:
            load = self._loads.pop(load_id, None)
        if load is None:
            raise ConfigError(f"no load {load_id!r} (stopped already?); running: {', '.join(self._loads) or 'none'}")
        return load.stop()

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


def load_record(t: float, result: HttpResult) -> LoadRecord:
    """What a load keeps of one request: when it started, how long it took, who answered, how it failed."""
    cluster = None
    if result.body.lstrip().startswith("{"):
        try:
            cluster = json.loads(result.body).get("cluster") or None
        except ValueError:
            cluster = None
    flags = next((v for k, v in result.headers.items() if k.lower() == "x-eastwest-response-flags"), None)
    return LoadRecord(round(t, 6), round(result.latency_s, 6), result.status, cluster, flags, result.error)


class SteadyLoad:
    """A stream of ``rate`` requests per second on an open-loop schedule, each recorded.

    Request i starts at ``i / rate`` seconds after the start whatever became of the ones
    before it, so a request that hangs until its time limit does not hide the ones behind it
    (a closed-loop client would stall and under-count failures, the coordinated omission of
    load testing). Requests in flight at once run on a pool sized for the worst case, every
    request hanging for the whole ``timeout``. The load ends when stopped, or after ``limit``
    seconds if nobody stops it (a test process that died).
    """

    def __init__(self, send: Callable[[], HttpResult], *, rate: float, timeout: float, limit: float):
        if not (0 < rate <= 1000) or timeout <= 0 or limit <= 0:
            raise ConfigError(f"a steady load needs 0 < rate <= 1000, timeout > 0 and limit > 0; got rate={rate}, "
                              f"timeout={timeout}, limit={limit}")
        self.send = send
        self.rate = rate
        self.limit = limit
        self.records: list[LoadRecord] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._workers = ThreadPoolExecutor(max_workers=math.ceil(rate * timeout) + 2, thread_name_prefix="load")
        self._thread = threading.Thread(target=self._schedule, name="load-schedule", daemon=True)
        self.t0 = 0.0

    def start(self) -> None:
        self.t0 = time.monotonic()
        self._thread.start()

    def _schedule(self) -> None:
        i = 0
        while True:
            due = i / self.rate
            if due > self.limit:
                return
            if self._stopped.wait(max(self.t0 + due - time.monotonic(), 0)):
                return
            self._workers.submit(self._one)
            i += 1

    def _one(self) -> None:
        t = time.monotonic() - self.t0
        record = load_record(t, self.send())
        with self._lock:
            self.records.append(record)

    def stop(self) -> list[LoadRecord]:
        """Stop scheduling, let the requests in flight finish (each within its time limit), return them all by start."""
        self._stopped.set()
        self._thread.join()
        self._workers.shutdown(wait=True)
        with self._lock:
            return sorted(self.records, key=lambda r: r.t)
