"""The lab's wiring, built in private network namespaces of this test (no supervisor)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from eastwest.backends.lab.netns import NetNS
from eastwest.backends.lab.network import LabNetwork, node_bridge_mac
from eastwest.support.topology import load_topology

MANIFESTS = Path(__file__).resolve().parents[1] / "manifests"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="building namespaces in-process needs root (the lab itself does not)")


def mac_of(ns: NetNS, ifname: str) -> str:
    with ns.entered(), IPRoute() as ip:
        (link,) = ip.link("get", index=ip.link_lookup(ifname=ifname)[0])
        return str(link.get("IFLA_ADDRESS"))


@pytest.fixture
def network() -> Iterator[LabNetwork]:
    root = NetNS.create("test-transit")
    with root.entered():
        net = LabNetwork(load_topology(MANIFESTS / "topology.yaml"))
        net.build()
    try:
        yield net
    finally:
        for node in net.nodes.values():
            node.ns.close()
        net.root.close()
        root.close()


def test_pod_gateway_mac_stays_fixed_while_pods_come_and_go(network: LabNetwork) -> None:
    """A node bridge keeps its MAC whatever MACs the pods' veths get, so pods' ARP entries for their gateway stay right.

    Without a fixed address a Linux bridge takes the lowest MAC of its ports: a new pod
    could silently move the gateway's MAC and cut every cross-cluster connection of the
    node's pods until their neighbour entries expired (up to 45 s).
    """
    node = network.nodes["us"]
    expected = node_bridge_mac(0)
    assert mac_of(node.ns, "cbr0") == expected
    seen = set()
    pods = []
    with network.root.entered():
        for i in range(12):
            pod = network.add_pod("us", f"pod-{i}")
            pods.append(pod)
            seen.add(mac_of(node.ns, pod.node_ifname))
            assert mac_of(node.ns, "cbr0") == expected, f"the pod gateway's MAC changed after pod {i} joined (port MACs {sorted(seen)})"
        for pod in pods[::2]:
            network.remove_pod("us", pod)
            assert mac_of(node.ns, "cbr0") == expected, f"the pod gateway's MAC changed after {pod.name} left"
    for pod in pods[1::2]:
        pod.ns.close()


def test_node_bridges_have_distinct_macs(network: LabNetwork) -> None:
    """Each node's pod bridge has its own fixed MAC."""
    macs = {name: mac_of(node.ns, "cbr0") for name, node in network.nodes.items()}
    assert len(set(macs.values())) == len(macs), f"node bridges share a MAC: {macs}"
