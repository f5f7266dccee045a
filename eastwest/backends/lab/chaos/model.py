"""What the chaos modules share: a fault's records (Chaos Mesh's containerRecords) and the lab they act on."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from eastwest.backends.lab.kubelet import ClusterRuntime, Kubelet
from eastwest.backends.lab.network import LabNetwork

INJECTED, NOT_INJECTED = "Injected", "Not Injected"


@dataclass
class Record:
    """One selected pod (or container) of a fault, as a record of Chaos Mesh's status.experiment."""

    id: str  # namespace/pod, or namespace/pod/container
    selector_key: str  # "." (selector) or ".Target"
    phase: str = NOT_INJECTED
    message: str = ""


class LabHost(Protocol):
    """What faults need of the supervisor's Lab."""

    lock: threading.RLock
    network: LabNetwork
    kubelet: Kubelet
    clusters: dict[str, ClusterRuntime]
    envoy: str

    def publish(self, within: float) -> None:
        """Push every proxy's configuration and wait until they run it."""

    def reconcile(self, within: float) -> None:
        """Start replacements for deleted pods (the ReplicaSet controllers)."""
