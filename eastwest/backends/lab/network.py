"""The lab's wires: a transit bridge standing for the internet, one node per cluster, pods.

    transit bridge (the supervisor's own namespace) ── 172.31.255.0/24
      ├── us node (router: 172.31.255.200, pods 10.10.0.0/16) ── us pods
      ├── us east-west gateway (172.31.255.10 + a us pod IP)
      ├── eu node (router: 172.31.255.201, pods 10.20.0.0/16) ── eu pods
      └── eu east-west gateway (172.31.255.20 + an eu pod IP)

Pods route everything through their node. A node knows only its own pod subnet and the
transit subnet, so a US pod can reach the EU gateway's address but not an EU pod IP
("network unreachable"). Gateways know the way back to the other cluster's pods through
that cluster's node (the lab's stand-in for the source NAT a real node would do).

Every bridge gets a fixed MAC address when it is made. A Linux bridge without one takes
the lowest MAC of its ports, so a new pod's veth could change the MAC behind the pod
gateway (``10.x.0.1``); pods holding a REACHABLE neighbour entry would then send
everything that leaves the node to an address nobody answers for, for up to 45 s.
"""

from __future__ import annotations

import ipaddress
import itertools
import threading
from dataclasses import dataclass, field

from pyroute2 import IPRoute

from eastwest.backends.lab.netns import NetNS
from eastwest.support.topology import ClusterSpec, Topology

NODE_TRANSIT_OFFSET = 200  # node i gets transit address .200+i
TRANSIT_BRIDGE_MAC = "02:65:77:ff:00:01"  # locally administered ("ew"), never a port's


def node_bridge_mac(index: int) -> str:
    """The fixed MAC of node ``index``'s pod bridge (the pods' default gateway)."""
    return f"02:65:77:00:{index:02x}:01"


def gateway_external_mac(index: int) -> str:
    """The fixed MAC of cluster ``index``'s gateway on the transit network: a replacement gateway keeps it,
    so neighbours that cached the external address's MAC still reach it (as a LoadBalancer address stays put)."""
    return f"02:65:77:fe:{index:02x}:01"


def _up(ip: IPRoute, ifname: str) -> int:
    idx = ip.link_lookup(ifname=ifname)[0]
    ip.link("set", index=idx, state="up")
    return idx


def _address(ip: IPRoute, ifname: str, iface: ipaddress.IPv4Interface) -> None:
    idx = _up(ip, ifname)
    ip.addr("add", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen)


@dataclass
class Node:
    """A cluster's node: the router between its pod network and the transit network."""

    spec: ClusterSpec
    ns: NetNS
    transit_ip: ipaddress.IPv4Address
    pod_gateway: ipaddress.IPv4Address
    _next_ip: itertools.count = field(default_factory=lambda: itertools.count(10))
    _next_if: itertools.count = field(default_factory=lambda: itertools.count(1))

    def allocate_ip(self) -> ipaddress.IPv4Interface:
        host = self.spec.pod_subnet.network_address + next(self._next_ip)
        return ipaddress.IPv4Interface(f"{host}/{self.spec.pod_subnet.prefixlen}")


@dataclass
class PodNet:
    """A pod's namespace and addresses."""

    name: str
    ns: NetNS
    ip: str
    node_ifname: str
    external_ip: str | None = None


@dataclass(frozen=True)
class Leg:
    """One of a pod's interfaces, and the other end of its cable: a bridge port in another namespace.

    Network faults act at both ends (``chaos/netfaults.py``): rules in the pod on ``device``,
    and rules where its packets first arrive, ``bridge_ns``, for what the pod sends.
    """

    device: str  # in the pod: eth0, or eth1 for a gateway's external address
    bridge_ns: NetNS  # the node's namespace (pod network) or the transit network's
    peer: str  # the cable's other end there, a port of that namespace's bridge
    address: str  # the pod's address on this interface


class LabNetwork:
    """Builds and tears down the lab's namespaces and links. Runs inside the supervisor."""

    def __init__(self, topology: Topology):
        self.topology = topology
        self.root = NetNS.current("transit")
        self.nodes: dict[str, Node] = {}
        self._lock = threading.Lock()

    def build(self) -> None:
        """Create the transit bridge and one node per cluster."""
        transit = self.topology.transit_subnet
        with IPRoute() as ip:
            _up(ip, "lo")
            ip.link("add", ifname="transit", kind="bridge", address=TRANSIT_BRIDGE_MAC)
            _up(ip, "transit")
        for i, spec in enumerate(self.topology.clusters):
            ns = NetNS.create(f"{spec.name}-node")
            transit_ip = transit.network_address + NODE_TRANSIT_OFFSET + i
            pod_gw = spec.pod_subnet.network_address + 1
            self._veth(f"tr-{spec.name}", self.root, "eth0", ns, master="transit")
            with ns.entered(), IPRoute() as ip:
                _up(ip, "lo")
                _address(ip, "eth0", ipaddress.IPv4Interface(f"{transit_ip}/{transit.prefixlen}"))
                ip.link("add", ifname="cbr0", kind="bridge", address=node_bridge_mac(i))
                _address(ip, "cbr0", ipaddress.IPv4Interface(f"{pod_gw}/{spec.pod_subnet.prefixlen}"))
            ns.sysctl("net/ipv4/ip_forward", "1")
            self.nodes[spec.name] = Node(spec, ns, transit_ip, pod_gw)

    def _veth(self, a: str, ns_a: NetNS, b: str, ns_b: NetNS, *, master: str | None = None) -> None:
        """A veth pair with end ``a`` in ``ns_a`` (optionally enslaved to bridge ``master``) and ``b`` in ``ns_b``."""
        with ns_a.entered(), IPRoute() as ip:
            ip.link("add", ifname=a, kind="veth", peer={"ifname": b, "net_ns_fd": ns_b.fd})
            idx = ip.link_lookup(ifname=a)[0]
            if master:
                ip.link("set", index=idx, master=ip.link_lookup(ifname=master)[0])
            ip.link("set", index=idx, state="up")

    def add_pod(self, cluster: str, name: str, *, external_ip: str | None = None) -> PodNet:
        """Create a pod namespace wired to its node; ``external_ip`` adds a leg on the transit network."""
        node = self.nodes[cluster]
        with self._lock:
            iface = node.allocate_ip()
            node_if = f"p{next(node._next_if)}"
        ns = NetNS.create(f"{cluster}/{name}")
        self._veth(node_if, node.ns, "eth0", ns, master="cbr0")
        with ns.entered(), IPRoute() as ip:
            _up(ip, "lo")
            _address(ip, "eth0", iface)
            ip.route("add", dst="0.0.0.0/0", gateway=str(node.pod_gateway))
        if external_ip:
            transit = self.topology.transit_subnet
            self._veth(f"gw-{cluster}", self.root, "eth1", ns, master="transit")
            with ns.entered(), IPRoute() as ip:
                ip.link("set", index=ip.link_lookup(ifname="eth1")[0], address=gateway_external_mac(list(self.nodes).index(cluster)))
                _address(ip, "eth1", ipaddress.IPv4Interface(f"{external_ip}/{transit.prefixlen}"))
                for other in self.nodes.values():
                    if other.spec.name != cluster:
                        ip.route("add", dst=str(other.spec.pod_subnet), gateway=str(other.transit_ip))
        return PodNet(name, ns, str(iface.ip), node_if, external_ip)

    def legs(self, cluster: str, pod: PodNet) -> list[Leg]:
        """The pod's interfaces with where each one is plugged in."""
        legs = [Leg("eth0", self.nodes[cluster].ns, pod.node_ifname, pod.ip)]
        if pod.external_ip:
            legs.append(Leg("eth1", self.root, f"gw-{cluster}", pod.external_ip))
        return legs

    def remove_pod(self, cluster: str, pod: PodNet) -> None:
        """Unplug a pod; its namespace is freed once its processes are gone and its fd is closed."""
        node = self.nodes[cluster]
        with node.ns.entered(), IPRoute() as ip:
            found = ip.link_lookup(ifname=pod.node_ifname)
            if found:
                ip.link("del", index=found[0])
        if pod.external_ip:
            with IPRoute() as ip:
                found = ip.link_lookup(ifname=f"gw-{cluster}")
                if found:
                    ip.link("del", index=found[0])
        pod.ns.close()
