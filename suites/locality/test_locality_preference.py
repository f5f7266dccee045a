"""Locality: with both clusters healthy, each client is served in its own region."""

from __future__ import annotations

import math

import pytest

from eastwest.mesh import Cluster, Mesh
from eastwest.settings import Settings
from eastwest.support import checks
from eastwest.support.eventually import Eventually
from eastwest.workloads import ECHO_UPSTREAM, ECHO_URL, SLEEP

pytestmark = [pytest.mark.extended, pytest.mark.features("multi-network", "locality-lb", "proxy-config-dump")]


def endpoint_evidence(cluster: Cluster) -> str:
    """The client proxy's endpoints for echo with their locality and priority."""
    endpoints = cluster.proxy_endpoints(SLEEP, ECHO_UPSTREAM)
    lines = [f"  {e.address}:{e.port} locality={e.locality or '-'} priority={e.priority} healthy={e.healthy}" for e in endpoints]
    hint = ""
    if len({e.priority for e in endpoints}) == 1 and len({e.locality for e in endpoints}) > 1:
        hint = ("\nevery locality has the same priority: locality load balancing is off "
                "(Istio applies failover priorities only with localityLbSetting enabled and outlierDetection set)")
    return f"{cluster.name} client's endpoints for {ECHO_UPSTREAM}:\n" + "\n".join(lines) + hint


@pytest.mark.manifests("locality/destinationrule-echo-failover.yaml")
@pytest.mark.parametrize("region", ["us", "eu"])
def test_healthy_clusters_serve_their_own_region(mesh: Mesh, region: str, settings: Settings, eventually: Eventually) -> None:
    """Every one of N requests from a region's client is served in that region."""
    client = mesh.cluster(region)
    eventually(
        lambda: client.call(SLEEP, ECHO_URL, count=settings.sample_size),
        until=checks.served_from(region),
        what=f"{settings.sample_size} requests from {region} all served in {region}",
        context=lambda: endpoint_evidence(client),
    )


def binomial_band(n: int, p: float, sigmas: float = 4.0) -> tuple[int, int]:
    """The counts within ``sigmas`` standard deviations of n*p: a false failure rate below 1e-4."""
    sd = math.sqrt(n * p * (1 - p))
    return math.floor(n * p - sigmas * sd), math.ceil(n * p + sigmas * sd)


@pytest.mark.manifests("locality/destinationrule-echo-distribute.yaml")
def test_distribute_splits_traffic_80_20(us: Cluster, settings: Settings, eventually: Eventually) -> None:
    """With distribute us/* -> 80% us, 20% eu, the share served in US is 80% within a 4-sigma binomial band."""
    n = max(settings.sample_size, 100)
    low, high = binomial_band(n, 0.8)

    def split(batch: checks.Batch) -> str | None:
        bad = [r for r in batch if not r.ok]
        if bad:
            return f"{len(bad)}/{len(batch)} requests failed"
        served_us = sum(1 for r in batch if r.cluster == "us")
        return None if low <= served_us <= high else f"expected {low}..{high} of {n} served in us (80% +/- 4 sigma); observed {served_us}"

    eventually(
        lambda: us.call(SLEEP, ECHO_URL, count=n),
        until=split,
        what="80/20 locality split from us",
        context=lambda: endpoint_evidence(us),
    )
