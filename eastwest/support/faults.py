"""The fault vocabulary: Chaos Mesh 2.8.3's kinds and actions, as "Kind/action" names.

Backends declare the faults they can inject (``Mesh.faults``) and tests the faults they need
(``@pytest.mark.faults``) in these names; a Chaos Mesh document says which it is. PodChaos,
NetworkChaos and DNSChaos name their action in ``spec.action``; an HTTPChaos's actions are the
fields it sets (``abort``, ``delay``, ``replace``, ``patch``: Chaos Mesh applies them in that
order); TimeChaos and StressChaos have one action each.
"""

from __future__ import annotations

import re

from eastwest.support.manifest import Document

#: kind -> actions (api/v1alpha1/*_types.go, chaos-mesh v2.8.3)
CHAOS_ACTIONS: dict[str, tuple[str, ...]] = {
    "PodChaos": ("pod-kill", "pod-failure", "container-kill"),
    "NetworkChaos": ("netem", "delay", "loss", "duplicate", "corrupt", "partition", "bandwidth"),
    "HTTPChaos": ("abort", "delay", "replace", "patch"),
    "DNSChaos": ("error", "random"),
    "TimeChaos": ("time-offset",),
    "StressChaos": ("stress",),
}
GROUP = "chaos-mesh.org"


def known_faults() -> list[str]:
    return [f"{kind}/{action}" for kind, actions in CHAOS_ACTIONS.items() for action in actions]


def check_fault_name(name: str) -> str | None:
    """Why ``name`` is not a fault name, or None when it is one."""
    if name in known_faults():
        return None
    kind, _, action = name.partition("/")
    if kind in CHAOS_ACTIONS:
        return f"{kind} has no action {action!r}; its actions: {', '.join(CHAOS_ACTIONS[kind])}"
    return f"unknown fault {name!r}: a fault is Kind/action with Kind one of {', '.join(CHAOS_ACTIONS)}"


def fault_names(doc: Document) -> list[str]:
    """The "Kind/action" names a Chaos Mesh document injects (an HTTPChaos may combine several)."""
    spec = doc.body.get("spec") or {}
    if doc.kind == "HTTPChaos":
        return [f"HTTPChaos/{a}" for a in CHAOS_ACTIONS["HTTPChaos"] if spec.get(a) not in (None, False)]
    if doc.kind in ("TimeChaos", "StressChaos"):
        return [f"{doc.kind}/{CHAOS_ACTIONS[doc.kind][0]}"]
    return [f"{doc.kind}/{spec.get('action')}"]


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration(text: str) -> float:
    """A Go duration as Chaos Mesh writes them (``"1m30s"``, ``"200ms"``) in seconds; ValueError otherwise."""
    text = str(text).strip()
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration (like 200ms, 30s, 1m30s): {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)
