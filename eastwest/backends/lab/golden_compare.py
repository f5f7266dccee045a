"""The golden comparison's verdict: differences between istiod's facts and the lab's, and the allowlist.

:func:`compare` renders the lab's configuration for a scenario's world (``world.py``) and diffs
its :func:`~eastwest.backends.lab.golden.facts` against istiod's goldens, proxy by proxy;
:func:`unexplained` keeps what ``goldens/allowlist.yaml`` does not explain, and the entries that
explain nothing (so the allowlist never outlives what it excuses).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from eastwest.backends.lab.golden import Facts, facts, lab_xds

ABSENT = "<absent>"


@dataclass(frozen=True)
class Difference:
    """One fact on which istiod and the lab disagree for one proxy."""

    proxy: str  # <scenario>/<golden file stem>
    resource: str
    field: str
    istiod: Any
    lab: Any

    def __str__(self) -> str:
        return f"{self.proxy}: {self.resource}: {self.field}: istiod {self.istiod!r}, lab {self.lab!r}"


def diff(proxy: str, istiod: Facts, lab: Facts) -> list[Difference]:
    """Every fact that differs; a resource only one side has is one difference (field ``*``)."""
    out = []
    for resource in sorted(set(istiod) | set(lab)):
        if resource not in lab or resource not in istiod:
            out.append(Difference(proxy, resource, "*", "present" if resource in istiod else ABSENT,
                                  "present" if resource in lab else ABSENT))
            continue
        a, b = istiod[resource], lab[resource]
        if "chain" in a and a.get("chain") != b.get("chain"):  # a different chain: what it does differs as a whole
            out.append(Difference(proxy, resource, "chain", a["chain"], b.get("chain", ABSENT)))
            continue
        for field in sorted(set(a) | set(b)):
            if a.get(field, ABSENT) != b.get(field, ABSENT):
                out.append(Difference(proxy, resource, field, a.get(field, ABSENT), b.get(field, ABSENT)))
    return out


@dataclass(frozen=True)
class Allowed:
    """An allowlist entry: shell-style patterns (one or a list) for proxy, resource and field, and why the difference stays."""

    proxy: tuple[str, ...]
    resource: tuple[str, ...]
    field: tuple[str, ...]
    reason: str

    def covers(self, d: Difference) -> bool:
        return all(any(fnmatch.fnmatchcase(value, p) for p in patterns)
                   for value, patterns in ((d.proxy, self.proxy), (d.resource, self.resource), (d.field, self.field)))

    def __str__(self) -> str:
        return f"proxy={list(self.proxy)} resource={list(self.resource)} field={list(self.field)} ({self.reason.split('.')[0]})"


def load_allowlist(path: Path) -> list[Allowed]:
    """Read the allowlist; a malformed entry raises ValueError with one line saying which and why."""
    raw = yaml.safe_load(path.read_text()) or []
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected a list of entries (proxy, resource, field, reason)")
    out = []
    for i, entry in enumerate(raw):
        keys = {"proxy", "resource", "field", "reason"}
        if not isinstance(entry, dict) or set(entry) != keys or not str(entry.get("reason") or "").strip():
            raise ValueError(f"{path}: entry {i + 1} must have exactly proxy, resource, field and a non-empty reason; got {entry!r}")
        pats = {k: tuple(str(p) for p in (entry[k] if isinstance(entry[k], list) else [entry[k]])) for k in ("proxy", "resource", "field")}
        out.append(Allowed(pats["proxy"], pats["resource"], pats["field"], " ".join(str(entry["reason"]).split())))
    return out


def unexplained(diffs: Iterable[Difference], allowlist: list[Allowed]) -> tuple[list[Difference], list[Allowed]]:
    """The differences no entry covers, and the entries that cover nothing (stale)."""
    diffs = list(diffs)
    left = [d for d in diffs if not any(a.covers(d) for a in allowlist)]
    unused = [a for a in allowlist if not any(a.covers(d) for d in diffs)]
    return left, unused


# ---- one scenario ------------------------------------------------------------------------------------


def compare(manifests: Path, goldens: Path, scenario: str) -> list[Difference]:
    """Every difference between istiod's goldens and the lab's istiod for every proxy of ``scenario``."""
    from eastwest.backends.lab.istiod import ControlPlane
    from eastwest.backends.lab.world import build_world
    from eastwest.backends.lab.world_json import service_ips

    world = build_world(manifests, scenario)
    control_plane = ControlPlane(world.cluster_states())
    ips = service_ips(world)
    out = []
    for pod in world.proxies():
        path = goldens / scenario / pod.proxy_file
        if not path.exists():
            raise FileNotFoundError(f"{path}: no golden for the lab proxy {pod.info.cluster}/{pod.info.namespace}/{pod.info.name}; "
                                    f"run `make goldens`")
        golden = json.loads(path.read_text())
        lab = world.lab_config(control_plane, pod)
        out += diff(f"{scenario}/{path.stem}", facts(golden, router=pod.gateway, cluster_ips=ips),
                    facts(lab_xds(lab.listeners, lab.clusters, lab.endpoints), router=pod.gateway, cluster_ips=ips))
    return out
