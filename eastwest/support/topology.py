"""The mesh topology every backend builds, read from ``manifests/topology.yaml``.

Beside the mesh facts (mesh ID, trust domain, networks, localities, CIDRs, gateway addresses)
it holds the addresses the kind backend needs to wire docker networks (optional for the
others): each cluster's node subnet and the fixed address its API server has on the transit
network, and the part of the transit network docker may hand out on its own. ``load_topology``
checks that no two subnets overlap and that every fixed address sits where it must.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from eastwest.support.errors import ConfigError


@dataclass(frozen=True)
class ClusterSpec:
    """One cluster of the mesh, by role."""

    name: str
    network: str
    region: str
    zone: str
    pod_subnet: ipaddress.IPv4Network
    service_subnet: ipaddress.IPv4Network
    gateway_address: str
    #: the docker network of this cluster's nodes (kind only)
    node_subnet: ipaddress.IPv4Network | None = None
    #: the control plane's fixed address on the transit network, which the other cluster's istiod
    #: reaches (kind only: the remote secret's server)
    api_server_address: str | None = None
    #: the DNS name of the east-west gateway's load balancer (a cloud LB's hostname; kind: a name the
    #: backend makes resolvable), which a ServiceEntry with ``resolution: DNS`` points at
    gateway_hostname: str = ""

    @property
    def locality(self) -> str:
        """Istio's locality string, ``region/zone``."""
        return f"{self.region}/{self.zone}"


@dataclass(frozen=True)
class Topology:
    """The mesh: its identity and its clusters in a stable order."""

    mesh_id: str
    trust_domain: str
    clusters: tuple[ClusterSpec, ...]
    transit_subnet: ipaddress.IPv4Network
    source: Path
    #: where docker may allocate transit addresses by itself; fixed addresses stay outside it (kind only)
    transit_dynamic_range: ipaddress.IPv4Network | None = None

    def cluster(self, name: str) -> ClusterSpec:
        for c in self.clusters:
            if c.name == name:
                return c
        raise ConfigError(f"{self.source}: no cluster named {name!r}; clusters: {', '.join(self.names)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.clusters)

    def variables(self, cluster: str) -> dict[str, str]:
        """The ``${VARIABLES}`` manifests may use when rendered for ``cluster``."""
        me = self.cluster(cluster)
        out = {
            "MESH_ID": self.mesh_id,
            "TRUST_DOMAIN": self.trust_domain,
            "CLUSTER": me.name,
            "NETWORK": me.network,
            "REGION": me.region,
            "ZONE": me.zone,
            "GATEWAY_ADDRESS": me.gateway_address,
            "GATEWAY_HOSTNAME": me.gateway_hostname,
        }
        for c in self.clusters:
            out[f"{c.name.upper()}_GATEWAY_ADDRESS"] = c.gateway_address
            out[f"{c.name.upper()}_GATEWAY_HOSTNAME"] = c.gateway_hostname
            out[f"{c.name.upper()}_NETWORK"] = c.network
        return out


def _field(raw: dict[str, Any], key: str, where: str) -> Any:
    if key not in raw:
        raise ConfigError(f"{where}: missing '{key}'")
    return raw[key]


def load_topology(path: Path) -> Topology:
    """Load and check the topology file; every problem is one ConfigError line."""
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"topology file not found: {path} (is --manifests pointing at the manifests/ folder?)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with meshID, trustDomain and clusters")
    clusters = []
    raw_clusters = _field(raw, "clusters", str(path))
    if not isinstance(raw_clusters, list) or not raw_clusters:
        raise ConfigError(f"{path}: 'clusters' must be a non-empty list of clusters, got {raw_clusters!r}")
    try:
        for i, c in enumerate(raw_clusters):
            where = f"{path}: clusters[{i}]"
            if not isinstance(c, dict):
                raise ConfigError(f"{where}: expected a mapping (name, network, region, zone, podSubnet, serviceSubnet, gatewayAddress), got {c!r}")
            clusters.append(
                ClusterSpec(
                    name=str(_field(c, "name", where)),
                    network=str(_field(c, "network", where)),
                    region=str(_field(c, "region", where)),
                    zone=str(_field(c, "zone", where)),
                    pod_subnet=ipaddress.IPv4Network(_field(c, "podSubnet", where)),
                    service_subnet=ipaddress.IPv4Network(_field(c, "serviceSubnet", where)),
                    gateway_address=str(ipaddress.IPv4Address(_field(c, "gatewayAddress", where))),
                    node_subnet=ipaddress.IPv4Network(c["nodeSubnet"]) if "nodeSubnet" in c else None,
                    api_server_address=str(ipaddress.IPv4Address(c["apiServerAddress"])) if "apiServerAddress" in c else None,
                    gateway_hostname=str(c.get("gatewayHostname") or f"istio-eastwestgateway.{c['name']}.lb.internal"),
                )
            )
        topo = Topology(
            mesh_id=str(_field(raw, "meshID", str(path))),
            trust_domain=str(_field(raw, "trustDomain", str(path))),
            clusters=tuple(clusters),
            transit_subnet=ipaddress.IPv4Network(_field(raw, "transitSubnet", str(path))),
            source=path,
            transit_dynamic_range=ipaddress.IPv4Network(raw["transitDynamicRange"]) if "transitDynamicRange" in raw else None,
        )
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    names = [c.name for c in clusters]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: cluster names must be unique, got {names}")
    _check_addresses(path, topo)
    return topo


def _check_addresses(path: Path, topo: Topology) -> None:
    """Subnets never overlap; fixed transit addresses are usable, distinct and outside docker's range."""
    named = [(f"{c.name} podSubnet", c.pod_subnet) for c in topo.clusters]
    named += [(f"{c.name} serviceSubnet", c.service_subnet) for c in topo.clusters]
    named += [(f"{c.name} nodeSubnet", c.node_subnet) for c in topo.clusters if c.node_subnet is not None]
    named.append(("transitSubnet", topo.transit_subnet))
    for i, (a_name, a) in enumerate(named):
        for b_name, b in named[i + 1 :]:
            if a.overlaps(b):
                raise ConfigError(f"{path}: subnets {a} and {b} overlap ({a_name}, {b_name}); every cluster needs its own CIDRs")
    transit = topo.transit_subnet
    dynamic = topo.transit_dynamic_range
    if dynamic is not None and not dynamic.subnet_of(transit):
        raise ConfigError(f"{path}: transitDynamicRange {dynamic} is not inside transitSubnet {transit}")
    fixed = [(f"gateway address {c.gateway_address} of {c.name}", c.gateway_address) for c in topo.clusters]
    fixed += [(f"API server address {c.api_server_address} of {c.name}", c.api_server_address)
              for c in topo.clusters if c.api_server_address is not None]
    seen: dict[str, str] = {}
    for what, address in fixed:
        ip = ipaddress.IPv4Address(address)
        if ip not in transit:
            raise ConfigError(f"{path}: {what} is outside {transit}")
        # the network and broadcast addresses are unusable; docker's bridge takes the first host address
        if ip in (transit.network_address, transit.broadcast_address, transit.network_address + 1):
            raise ConfigError(f"{path}: {what} is reserved in {transit} (network, broadcast or the bridge's gateway .1)")
        if dynamic is not None and ip in dynamic:
            raise ConfigError(f"{path}: {what} is inside transitDynamicRange {dynamic}, where docker allocates addresses itself")
        if address in seen:
            raise ConfigError(f"{path}: {what} is also the {seen[address]}; every fixed address must differ")
        seen[address] = what
