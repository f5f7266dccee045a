"""Topology: the two clusters form one mesh, on two networks, and their workloads present its identity."""

from __future__ import annotations

import pytest

from eastwest.mesh import Mesh
from eastwest.settings import Settings
from eastwest.support import checks, stats
from eastwest.support.eventually import Eventually
from eastwest.workloads import ECHO_URL, SLEEP

pytestmark = [pytest.mark.core, pytest.mark.features("multi-network")]


def test_clusters_share_mesh_id_and_trust_domain(mesh: Mesh) -> None:
    """Every cluster's control plane runs the same mesh ID and trust domain."""
    configs = {name: cluster.mesh_config() for name, cluster in mesh.clusters.items()}
    mesh_ids = {name: c.mesh_id for name, c in configs.items()}
    trust_domains = {name: c.trust_domain for name, c in configs.items()}
    assert set(mesh_ids.values()) == {mesh.topology.mesh_id}, f"expected mesh ID {mesh.topology.mesh_id!r} everywhere; observed {mesh_ids}"
    assert set(trust_domains.values()) == {mesh.topology.trust_domain}, (
        f"expected trust domain {mesh.topology.trust_domain!r} everywhere; observed {trust_domains}"
    )


@pytest.mark.features("mtls")
@pytest.mark.parametrize("region", ["us", "eu"])
def test_workloads_present_the_mesh_trust_domain(mesh: Mesh, region: str, settings: Settings, eventually: Eventually) -> None:
    """What workloads actually present, not what the control plane was told: from a region's client, the
    echo servers of every cluster answer over mTLS, and every SPIFFE ID seen (XFCC By= the server,
    URI= the client) is in the mesh's trust domain."""
    client = mesh.cluster(region)
    plan = stats.all_plan(settings.sample_size, what=f"in trust domain {mesh.topology.trust_domain}", miss_rate=settings.miss_rate)
    eventually(
        lambda: client.call(SLEEP, ECHO_URL, count=plan.n),
        until=checks.identities_in(mesh.topology.trust_domain, list(mesh.clusters)),
        what=f"identities presented to and by the {region} client in trust domain {mesh.topology.trust_domain} ({plan.describe()})",
    )


def test_clusters_are_on_distinct_networks(mesh: Mesh) -> None:
    """Each cluster's control plane names its own network, and no two share one."""
    networks = {name: cluster.mesh_config().network for name, cluster in mesh.clusters.items()}
    expected = {name: cluster.network for name, cluster in mesh.clusters.items()}
    assert networks == expected, f"expected networks {expected}; control planes report {networks}"
    assert len(set(networks.values())) == len(networks), f"networks must differ between clusters; observed {networks}"
