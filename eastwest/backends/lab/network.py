"""The lab's wires: a transit bridge standing for the internet, one node per cluster, pods.

    transit bridge (the supervisor's own namespace) ── 172.31.255.0/24
      ├── us node (router: 172.31.255.200, pods 10.10.0.0/16) ── us pods
      ├── us east-west gateway (172.31.255.10 + a us pod IP)
      ├── eu node (router: 172.31.255.201, pods 10.20.0.0/16) ── eu pods
      └── eu east-west gateway (172.31.255.20 + an eu pod IP)

Pods route everything through their node. A node knows only its own pod subnet and the
transit subnet, so a US pod can reach the EU gateway's address but not an EU pod IP
("network unreachable"). A node source-NATs what its pods send out to the transit network
(nf_tables masquerade, as a kind/cloud node does for pod traffic leaving the node), so a
remote gateway answers the node's transit address and needs no route to the other
cluster's pods: like a real east-west gateway, it reaches only its own cluster's pods.

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
from pyroute2.nftables.expressions import genex, ipv4addr, masq
from pyroute2.nftables.main import NFTables

from eastwest.backends.lab.netns import NetNS
from eastwest.support.topology import ClusterSpec, Topology

NODE_TRANSIT_OFFSET = 200  # node i gets transit address .200+i
TRANSIT_BRIDGE_MAC = "02:65:77:ff:00:01"  # locally administered ("ew"), never a port's


#: the node's own nf_tables table (its pods' masquerade): infrastructure, not a fault
NODE_NAT_TABLE = "eastwest-node"
NFPROTO_IPV4 = 2
NFT_META_OIFNAME = 7
IFNAMSIZ = 16


def _oifname_is(name: str) -> list[dict[str, object]]:
    """nf_tables ``meta oifname "<name>"``: the packet leaves through that interface."""
    return [genex("meta", {"dreg": 1, "key": NFT_META_OIFNAME}),
            genex("cmp", {"sreg": 1, "op": 0, "data": {"attrs": [("NFTA_DATA_VALUE", name.encode().ljust(IFNAMSIZ, b"\0"))]}})]


def masquerade_pods(ns: NetNS, pod_subnet: ipaddress.IPv4Network, out_ifname: str = "eth0") -> None:
    """``ip saddr <pods> oifname eth0 masquerade`` in the node's namespace, programmed over netlink.

    Mirrors a Kubernetes node (kind's kindnetd ``ip-masq``, a cloud node's SNAT): pod traffic that
    leaves the node for a non-pod network carries the node's address, and replies come back to the
    node, which un-NATs them to the pod. Istio relies on it: the east-west gateway of the other
    network never routes to this cluster's pod IPs.
    """
    with ns.entered():
        nft = NFTables(nfgen_family=NFPROTO_IPV4)
        try:
            nft.table("add", name=NODE_NAT_TABLE)
            nft.chain("add", table=NODE_NAT_TABLE, name="postrouting", type="nat", hook="postrouting", priority=100)
            nft.rule("add", table=NODE_NAT_TABLE, chain="postrouting",
                     expressions=(ipv4addr(src=str(pod_subnet)), _oifname_is(out_ifname), masq()))
        finally:
            nft.close()


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

    def __init__(self, topology: Topology, *, flat: bool = False):
        self.topology = topology
        #: break pod-networks-flat: nodes route each other's pod subnets (one flat network)
        self.flat = flat
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
            masquerade_pods(ns, spec.pod_subnet)
            self.nodes[spec.name] = Node(spec, ns, transit_ip, pod_gw)
        if self.flat:
            for node in self.nodes.values():
                with node.ns.entered(), IPRoute() as ip:
                    for other in self.nodes.values():
                        if other is not node:
                            ip.route("add", dst=str(other.spec.pod_subnet), gateway=str(other.transit_ip))

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
            # the gateway's load-balancer leg: on-link to the transit network only. No route to another
            # cluster's pods (a real east-west gateway has none); replies go to the sending node's address.
            with ns.entered(), IPRoute() as ip:
                ip.link("set", index=ip.link_lookup(ifname="eth1")[0], address=gateway_external_mac(list(self.nodes).index(cluster)))
                _address(ip, "eth1", ipaddress.IPv4Interface(f"{external_ip}/{transit.prefixlen}"))
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
