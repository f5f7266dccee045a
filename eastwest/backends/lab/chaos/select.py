"""Which pods a fault acts on: Chaos Mesh's selectors, then its ``mode`` and ``value``.

Mirrors ``pkg/selector/pod/selector.go`` (selectors are ANDed; ``pods`` names pods directly)
and ``pkg/selector/generic/mode.go`` (``one``: a random pod; ``fixed``: ``value`` random pods;
``fixed-percent``: ceil(n * value / 100); ``random-max-percent``: a random percentage in
[0, value], then ceil; none selected is Chaos Mesh's "cannot generate objects from empty list").
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from eastwest.backends.lab.chaos.spec import PodSelection, Selector


@dataclass(frozen=True)
class Candidate:
    """What selectors read of a pod. Every lab pod is Running: a pod exists once its processes start."""

    namespace: str
    name: str
    ip: str
    service_account: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    phase: str = "Running"

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def _fields(pod: Candidate) -> dict[str, str]:
    return {"metadata.name": pod.name, "metadata.namespace": pod.namespace, "spec.serviceAccountName": pod.service_account,
            "status.podIP": pod.ip, "status.phase": pod.phase}


def matches(pod: Candidate, sel: Selector) -> bool:
    if sel.pods:
        return pod.name in dict(sel.pods).get(pod.namespace, ())
    if pod.namespace not in sel.namespaces:
        return False
    if any(pod.labels.get(k) != v for k, v in sel.labels):
        return False
    for e in sel.expressions:
        present = e.key in pod.labels
        ok = {"In": present and pod.labels[e.key] in e.values, "NotIn": not present or pod.labels[e.key] not in e.values,
              "Exists": present, "DoesNotExist": not present}[e.operator]
        if not ok:
            return False
    if any(pod.annotations.get(k) != v for k, v in sel.annotations):
        return False
    fields = _fields(pod)
    if any(fields[k] != v for k, v in sel.fields):
        return False
    return not sel.phases or pod.phase in sel.phases


def count(mode: str, value: str, available: int, rng: random.Random) -> int:
    """How many of ``available`` pods the mode takes (mode.go FilterObjectsByMode)."""
    if mode == "one":
        return 1
    if mode == "all":
        return available
    number = int(value)
    if mode == "fixed":
        return min(number, available)
    if mode == "random-max-percent":
        number = rng.randint(0, number)
    return math.ceil(available * number / 100)


def select(pods: list[Candidate], selection: PodSelection, rng: random.Random | None = None) -> list[Candidate]:
    """The pods a PodSelector picks, in a stable order (empty when nothing matches)."""
    rng = rng or random.Random()
    found = sorted((p for p in pods if matches(p, selection.selector)), key=lambda p: p.ref)
    if not found:
        return []
    return sorted(rng.sample(found, count(selection.mode, selection.value, len(found), rng)), key=lambda p: p.ref)
