"""Deliberate breakages of the lab (``--lab-break NAME``): each models a real misconfiguration,
so a self-test can prove the suites catch it and name its cause.

A breakage is an install-time property of the lab; runtime faults (Chaos Mesh's vocabulary)
are a different thing and live elsewhere.
"""

from __future__ import annotations

BREAKS: dict[str, str] = {
    "split-roots": "every cluster gets a root CA of its own: the classic multi-cluster install without a shared root",
}
