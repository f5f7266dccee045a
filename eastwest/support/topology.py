"""The mesh topology both backends build, read from ``manifests/topology.yaml``."""

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
        }
        for c in self.clusters:
            out[f"{c.name.upper()}_GATEWAY_ADDRESS"] = c.gateway_address
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
                )
            )
        topo = Topology(
            mesh_id=str(_field(raw, "meshID", str(path))),
            trust_domain=str(_field(raw, "trustDomain", str(path))),
            clusters=tuple(clusters),
            transit_subnet=ipaddress.IPv4Network(_field(raw, "transitSubnet", str(path))),
            source=path,
        )
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    names = [c.name for c in clusters]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: cluster names must be unique, got {names}")
    nets = [c.pod_subnet for c in clusters] + [c.service_subnet for c in clusters] + [topo.transit_subnet]
    for i, a in enumerate(nets):
        for b in nets[i + 1 :]:
            if a.overlaps(b):
                raise ConfigError(f"{path}: subnets {a} and {b} overlap; every cluster needs its own CIDRs")
    for c in clusters:
        if ipaddress.IPv4Address(c.gateway_address) not in topo.transit_subnet:
            raise ConfigError(f"{path}: gateway address {c.gateway_address} of {c.name} is outside {topo.transit_subnet}")
    return topo
