"""Locality: with both clusters healthy, each client is served in its own region, and distribute splits 80/20.

Every proportion here comes with stated error rates (``eastwest.support.stats``): the
preference check needs all N requests at home and states the smallest leak it catches; the
split check takes the smallest sample whose acceptance band fails a 70/30 and a 90/10 split
and fails a true 80/20 split less than once in 10,000 batches. One passing batch is the
convergence (as in Istio's locality tests): the split waits with ``successes=1``.
"""

from __future__ import annotations

import pytest

from eastwest.mesh import Cluster, Mesh
from eastwest.settings import Settings
from eastwest.support import checks, envoy, stats
from eastwest.support.eventually import Eventually
from eastwest.workloads import ECHO_UPSTREAM, ECHO_URL, SLEEP

pytestmark = [pytest.mark.extended, pytest.mark.features("multi-network", "locality-lb", "proxy-config-dump")]

#: manifests/suites/locality/destinationrule-echo-distribute.yaml: from us/*, 80 % us and 20 % eu
DISTRIBUTE = {"us": 0.8, "eu": 0.2}
#: the wrong splits the check must fail: weights off by ten points either way
WRONG_SPLITS = (0.7, 0.9)


def locality_evidence(cluster: Cluster, expected_shares: dict[str, float] | None = None) -> str:
    """The client proxy's endpoint table and locality weights, and the cause they show."""
    endpoints = cluster.proxy_endpoints(SLEEP, ECHO_UPSTREAM)
    weights = envoy.locality_weights(cluster.proxy_config_dump(SLEEP), ECHO_UPSTREAM)
    cause = checks.locality_cause(endpoints, weights, own_region=cluster.spec.region, expected_shares=expected_shares)
    return f"{cluster.name} client's endpoints for {ECHO_UPSTREAM}:\n{checks.endpoint_table(endpoints, weights)}\nlikely cause: {cause}"


def split_plan(settings: Settings, region: str) -> stats.SplitPlan:
    """The run's plan for the split: computed from the two rates, or for ``--split-sample-size``."""
    what = f"served in {region}"
    if settings.split_sample_size:
        return stats.split_plan(settings.split_sample_size, DISTRIBUTE[region], WRONG_SPLITS, what=what,
                                false_failure_rate=settings.false_failure_rate)
    return stats.plan_split(DISTRIBUTE[region], WRONG_SPLITS, what=what, false_failure_rate=settings.false_failure_rate,
                            miss_rate=settings.miss_rate)


@pytest.mark.manifests("locality/destinationrule-echo-failover.yaml")
@pytest.mark.parametrize("region", ["us", "eu"])
def test_healthy_clusters_serve_their_own_region(mesh: Mesh, region: str, settings: Settings, eventually: Eventually) -> None:
    """Every one of N requests from a region's client is served in that region, each on its first attempt."""
    client = mesh.cluster(region)
    plan = stats.all_plan(settings.sample_size, what=f"served in {region}", miss_rate=settings.miss_rate)
    eventually(
        lambda: client.call(SLEEP, ECHO_URL, count=plan.n),
        until=checks.served_from(region, plan),
        what=f"{plan.n} requests from {region} all served in {region} ({plan.describe()})",
        context=lambda: locality_evidence(client),
    )


@pytest.mark.manifests("locality/destinationrule-echo-distribute.yaml")
def test_distribute_splits_traffic_80_20(us: Cluster, settings: Settings, eventually: Eventually) -> None:
    """With distribute us/* -> 80 % us, 20 % eu, the count served in US lies in the plan's exact binomial band."""
    plan = split_plan(settings, us.name)
    eventually(
        lambda: us.call(SLEEP, ECHO_URL, count=plan.n),
        until=checks.split(plan, us.name),
        successes=1,
        what=f"80/20 locality split from us ({plan.describe()})",
        context=lambda: locality_evidence(us, DISTRIBUTE),
    )
