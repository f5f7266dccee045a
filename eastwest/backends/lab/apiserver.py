"""The lab's API server: it validates objects against what the lab implements, and stores them.

A kind, field or value the lab does not implement (``schemas.py``) is refused with an
error that names it, and a refused batch changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from eastwest.backends.lab.schemas import (
    BOOL,
    CLUSTER_SCOPED,
    DURATION,
    ENUMS,
    INT,
    INT_MAP,
    INT_OR_STR,
    ISTIO_VERSIONS,
    MAP,
    SCHEMAS,
    STR,
    parse_duration,
)
from eastwest.support.errors import ManifestError
from eastwest.support.manifest import Document


def _schema_key(api_version: str, kind: str) -> tuple[str, str] | None:
    group, _, version = api_version.rpartition("/")
    if group in ("networking.istio.io", "security.istio.io"):
        return (group, kind) if version in ISTIO_VERSIONS else None
    return (api_version, kind)


def _check(value: Any, schema: Any, path: str, doc: Document) -> None:
    def fail(msg: str) -> None:
        raise ManifestError(f"{doc.ref}: {msg}")

    if isinstance(schema, dict):
        if not isinstance(value, dict):
            fail(f"field {path} must be a mapping, got {type(value).__name__}")
        for key, sub in value.items():
            sub_path = f"{path}.{key}" if path else key
            if key not in schema:
                fail(f"field {sub_path} is not supported by the lab backend (supported here: {', '.join(schema)})")
            _check(sub, schema[key], sub_path, doc)
        return
    if isinstance(schema, list):
        if not isinstance(value, list):
            fail(f"field {path} must be a list, got {type(value).__name__}")
        for i, item in enumerate(value):
            _check(item, schema[0], f"{path}[{i}]", doc)
        return
    if schema in (MAP, INT_MAP):
        if not isinstance(value, dict):
            fail(f"field {path} must be a mapping, got {type(value).__name__}")
        for k, v in value.items():
            ok = isinstance(v, int) and not isinstance(v, bool) if schema == INT_MAP else isinstance(v, (str, int, float, bool))
            if not ok:
                fail(f"field {path}.{k} has an unexpected value {v!r}")
        return
    if schema == INT_OR_STR:
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            fail(f"field {path} must be a number or a port name, got {value!r}")
        return
    if schema == DURATION:
        try:
            parse_duration(value)
        except ValueError as exc:
            fail(f"field {path}: {exc}")
        return
    if schema is INT and (not isinstance(value, int) or isinstance(value, bool)):
        fail(f"field {path} must be an integer, got {value!r}")
    if schema is BOOL and not isinstance(value, bool):
        fail(f"field {path} must be true or false, got {value!r}")
    if schema is STR and not isinstance(value, (str, int, float)):
        fail(f"field {path} must be a string, got {value!r}")


def _enum_values(body: dict[str, Any], path: str) -> Iterable[tuple[str, Any]]:
    """Yield (concrete path, value) for a dotted path where ``[]`` means every list item."""
    parts = path.split(".")

    def walk(node: Any, i: int, where: str) -> Iterable[tuple[str, Any]]:
        if i == len(parts):
            yield where, node
            return
        part = parts[i]
        many = part.endswith("[]")
        key = part[:-2] if many else part
        if not isinstance(node, dict) or key not in node:
            return
        child = node[key]
        here = f"{where}.{key}" if where else key
        if many:
            for j, item in enumerate(child or []):
                yield from walk(item, i + 1, f"{here}[{j}]")
        else:
            yield from walk(child, i + 1, here)

    return walk(body, 0, "")


def validate(doc: Document) -> None:
    """Refuse, naming it, any kind, field or value the lab does not implement."""
    key = _schema_key(str(doc.body.get("apiVersion")), doc.kind)
    if key is None or key not in SCHEMAS:
        supported = ", ".join(sorted({k for _, k in SCHEMAS}))
        raise ManifestError(
            f"{doc.ref}: {doc.body.get('apiVersion')} {doc.kind} is not supported by the lab backend "
            f"(supported kinds: {supported})"
        )
    body = {k: v for k, v in doc.body.items() if k not in ("apiVersion", "kind")}
    _check(body, SCHEMAS[key], "", doc)
    for (kind, path), allowed in ENUMS.items():
        if kind != doc.kind:
            continue
        for where, value in _enum_values(doc.body, path):
            if value not in allowed:
                raise ManifestError(
                    f"{doc.ref}: {where}: {value!r} is not supported by the lab backend "
                    f"(supported: {', '.join(allowed)})"
                )
    _check_semantics(doc)


def _check_semantics(doc: Document) -> None:
    spec = doc.body.get("spec") or {}
    if doc.kind == "DestinationRule":
        if not spec.get("host"):
            raise ManifestError(f"{doc.ref}: spec.host is required")
        lls = ((spec.get("trafficPolicy") or {}).get("loadBalancer") or {}).get("localityLbSetting") or {}
        if lls.get("distribute") and lls.get("failover"):
            raise ManifestError(f"{doc.ref}: localityLbSetting takes one of distribute or failover, not both")
    if doc.kind == "ServiceEntry":
        if not spec.get("hosts"):
            raise ManifestError(f"{doc.ref}: spec.hosts is required")
        ports = {p.get("name") for p in spec.get("ports") or []}
        resolution = spec.get("resolution", "NONE")
        if resolution == "NONE":
            # NONE is original-destination passthrough: it needs the traffic capture the lab does not have
            raise ManifestError(f"{doc.ref}: spec.resolution NONE (the default) is not supported by the lab backend: it "
                                f"forwards to the original destination, which needs iptables capture; use STATIC or DNS")
        if resolution == "DNS" and not spec.get("endpoints"):
            raise ManifestError(f"{doc.ref}: spec.resolution DNS without endpoints resolves the hosts themselves, which the "
                                f"lab cannot; list endpoints (an address, or a gateway's load-balancer name)")
        for i, ep in enumerate(spec.get("endpoints") or []):
            address = str(ep.get("address", ""))
            if not _IPV4.match(address) and resolution != "DNS":
                # istiod's validation: with STATIC resolution endpoints must be IP addresses
                raise ManifestError(f"{doc.ref}: spec.endpoints[{i}].address {address!r} is a name; with resolution "
                                    f"{resolution} endpoints must be IP addresses (use resolution DNS for names)")
            if "weight" in ep and int(ep["weight"]) < 1:
                raise ManifestError(f"{doc.ref}: spec.endpoints[{i}].weight must be at least 1, got {ep['weight']}")
            for name in (ep.get("ports") or {}):
                if name not in ports:
                    raise ManifestError(f"{doc.ref}: spec.endpoints[{i}].ports names port {name!r}, which spec.ports lacks")
    if doc.kind == "VirtualService":
        hosts = [str(h) for h in spec.get("hosts") or []]
        if len(hosts) != 1 or "*" in hosts[0]:
            raise ManifestError(f"{doc.ref}: the lab routes a VirtualService for exactly one host, no wildcard (got {hosts})")
        http = spec.get("http") or []
        if len(http) != 1:
            raise ManifestError(f"{doc.ref}: the lab implements exactly one http route (it has no match), got {len(http)}")
        routes = http[0].get("route") or []
        if len(routes) != 1 or str((routes[0].get("destination") or {}).get("host")) != hosts[0]:
            raise ManifestError(f"{doc.ref}: spec.http[0].route must send to {hosts[0]} itself, one destination (the lab "
                                "implements route timeouts, not traffic shifting)")
    if doc.kind == "Deployment":
        containers = (((spec.get("template") or {}).get("spec") or {}).get("containers")) or []
        if len(containers) != 1:
            raise ManifestError(f"{doc.ref}: the lab runs exactly one container per pod, got {len(containers)}")
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if any(labels.get(k) != v for k, v in selector.items()):
            raise ManifestError(f"{doc.ref}: spec.selector.matchLabels does not match the pod template labels")


_IPV4 = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


@dataclass(frozen=True)
class Key:
    kind: str
    namespace: str
    name: str


class Store:
    """One cluster's objects, as an API server would hold them."""

    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        #: the DNS names the lab's resolver answers (the gateways' load-balancer names)
        self.dns_names: frozenset[str] = frozenset()

    @staticmethod
    def key(doc: Document) -> Key:
        ns = "" if doc.kind in CLUSTER_SCOPED else (doc.namespace or "default")
        return Key(doc.kind, ns, doc.name)

    def check_apply(self, docs: list[Document]) -> None:
        """Validate a whole batch before any of it is stored, so a bad batch changes nothing."""
        namespaces = {k.name for k in self.objects if k.kind == "Namespace"} | {"default"}
        for doc in docs:
            validate(doc)
            self._check_names(doc)
            if doc.kind == "Namespace":
                namespaces.add(doc.name)
            elif (doc.namespace or "default") not in namespaces:
                raise ManifestError(f'{doc.ref}: namespace "{doc.namespace}" not found (apply its Namespace first)')

    def _check_names(self, doc: Document) -> None:
        """A DNS endpoint must be a name the lab resolves: anything else would silently get no endpoint."""
        if doc.kind != "ServiceEntry":
            return
        for i, ep in enumerate((doc.body.get("spec") or {}).get("endpoints") or []):
            address = str(ep.get("address", ""))
            if not _IPV4.match(address) and address not in self.dns_names:
                known = ", ".join(sorted(self.dns_names)) or "none"
                raise ManifestError(f"{doc.ref}: spec.endpoints[{i}].address {address!r} is a name the lab cannot resolve "
                                    f"(it resolves the gateways' load-balancer names: {known})")

    def apply(self, docs: list[Document]) -> None:
        self.check_apply(docs)
        for doc in docs:
            self.objects[self.key(doc)] = doc.body

    def delete(self, docs: list[Document]) -> None:
        for doc in docs:
            key = self.key(doc)
            self.objects.pop(key, None)
            if doc.kind == "Namespace":
                for k in [k for k in self.objects if k.namespace == doc.name]:
                    del self.objects[k]

    def of_kind(self, kind: str) -> list[tuple[Key, dict[str, Any]]]:
        return sorted(((k, v) for k, v in self.objects.items() if k.kind == kind), key=lambda kv: (kv[0].namespace, kv[0].name))

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        body = self.objects.get(Key("Namespace", "", namespace)) or {}
        return dict((body.get("metadata") or {}).get("labels") or {})


def check_values(values: dict[str, Any], schema: dict[str, Any], source: str) -> None:
    """Refuse, naming it, a Helm value the lab's install does not read."""
    _check(values, schema, "", Document({"apiVersion": "v1", "kind": "Values", "metadata": {"name": source}}, source))
