"""Chaos Mesh 2.8.3 documents as the lab reads them: what it implements, and a refusal by name for the rest.

A document becomes a frozen :class:`Fault` (``reading.py`` reads it): the kinds and actions the
lab executes (``FAULTS``), the ones it refuses by name, and the parameters in Chaos Mesh's units.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

API_VERSION = "chaos-mesh.org/v1alpha1"
ACTIONS: dict[str, tuple[str, ...]] = {
    "PodChaos": ("pod-kill", "pod-failure", "container-kill"),
    "NetworkChaos": ("partition", "loss", "delay", "duplicate", "corrupt", "bandwidth"),
    "HTTPChaos": ("abort", "delay"),  # HTTPChaos has no action field: its actions are the fields abort and delay
}
#: what the lab injects, as "Kind/action" (Mesh.faults)
FAULTS = frozenset(f"{kind}/{action}" for kind, actions in ACTIONS.items() for action in actions)
REFUSED_KINDS = {
    "DNSChaos": "the lab has no DNS: Istio reaches remote services by VIP and SNI, and lab clients by the sidecar",
    "TimeChaos": "the lab cannot shift one pod's clock (Chaos Mesh injects a fake vDSO through ptrace)",
}
MODES = ("one", "all", "fixed", "fixed-percent", "random-max-percent")
FIELD_SELECTORS = ("metadata.name", "metadata.namespace", "spec.serviceAccountName", "status.podIP", "status.phase")
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Expression:
    """A set-based label requirement: In, NotIn, Exists, DoesNotExist."""

    key: str
    operator: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Selector:
    namespaces: tuple[str, ...]
    labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[Expression, ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    fields: tuple[tuple[str, str], ...] = ()
    phases: tuple[str, ...] = ()
    pods: tuple[tuple[str, tuple[str, ...]], ...] = ()  # namespace -> names; when set, the only selector


@dataclass(frozen=True)
class PodSelection:
    """Chaos Mesh's PodSelector: which pods, and how many of them (``mode`` with ``value``)."""

    selector: Selector
    mode: str
    value: str


@dataclass(frozen=True)
class Netem:
    """One netem parameter: ``probability`` (loss, duplicate, corrupt) or ``latency`` with ``jitter`` (delay)."""

    probability: float = 0.0
    latency: float = 0.0
    jitter: float = 0.0


@dataclass(frozen=True)
class Bandwidth:
    rate: int  # bytes per second
    limit: int  # bytes queued while waiting for tokens
    buffer: int  # bucket size (burst), bytes


@dataclass(frozen=True)
class HttpFault:
    port: int
    path: str | None
    method: str | None
    headers: tuple[tuple[str, str], ...]
    abort: bool
    delay: float | None


@dataclass(frozen=True)
class Fault:
    """One Chaos Mesh experiment, validated: what to do, to which pods, for how long."""

    kind: str
    namespace: str
    name: str
    action: str
    pods: PodSelection
    duration: float | None  # None: until recovered (deleted)
    source: str
    grace_period: int = 0
    containers: tuple[str, ...] = ()
    direction: str = "to"
    target: PodSelection | None = None
    external: tuple[ipaddress.IPv4Network, ...] = ()
    netem: Netem | None = None
    bandwidth: Bandwidth | None = None
    http: HttpFault | None = None

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name} ({self.source})"


def go_duration(text: Any) -> float:
    """A Go duration (``"30s"``, ``"1m30s"``, ``"250ms"``) in seconds; ValueError otherwise."""
    s = str(text).strip()
    if s == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in _GO_DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m[1]) * _GO_UNITS[m[2]]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"{text!r} is not a duration like 30s, 1m30s or 250ms")
    return total
