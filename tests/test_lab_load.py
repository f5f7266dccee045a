"""The lab's steady load (Cluster.load) and its VirtualService route timeout, on a real lab.

The load is the failover suite's instrument: it must keep its open-loop schedule when answers
are slow, bound every request by the client's time limit, and record who answered. The route
timeout is what makes a hang behind a live sidecar fail over: a request that outlasts it is
answered 504 UT, which ejects the endpoint as Istio's outlier detection does.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest

from eastwest.backends.lab.mesh import LabMesh
from eastwest.support import install
from eastwest.support.errors import ConfigError
from eastwest.workloads import ECHO_UPSTREAM, ECHO_URL, SLEEP
from tests.labs import MANIFESTS, running_lab

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="the lab needs unshare (util-linux)")


@pytest.fixture(scope="module")
def lab() -> Iterator[LabMesh]:
    with running_lab("locality/destinationrule-echo-failover.yaml") as mesh:
        yield mesh


def test_a_steady_load_keeps_its_rate_and_records_every_answer(lab: LabMesh) -> None:
    us = lab.cluster("us")
    with us.load(SLEEP, ECHO_URL, rate=50, timeout=2.0, limit=30) as run:
        time.sleep(2.0)
    samples = run.samples
    assert 95 <= len(samples) <= 110, len(samples)
    assert all(s.ok and s.cluster == "us" and s.status == 200 and s.error is None for s in samples), samples[:3]
    assert [s.t for s in samples] == sorted(s.t for s in samples)
    # open loop: the i-th request starts i/50 s after the first, whatever the machine does meanwhile
    lateness = [s.t - i / 50 for i, s in enumerate(samples)]
    assert max(lateness) < 0.5, max(lateness)
    assert all(0 < s.latency_s < 1.0 for s in samples)


def test_a_slow_answer_does_not_hold_back_the_requests_behind_it(lab: LabMesh) -> None:
    """Each answer takes 0.5 s; at 20/s for 1.5 s a closed-loop client would send 3 requests, this one 30."""
    us = lab.cluster("us")
    with us.load(SLEEP, ECHO_URL + "?delay=0.5", rate=20, timeout=2.0, limit=30) as run:
        time.sleep(1.5)
    assert len(run.samples) >= 28, len(run.samples)
    assert all(s.ok and s.latency_s >= 0.5 for s in run.samples), [s for s in run.samples if not s.ok][:3]
    assert run.samples[-1].t - run.samples[0].t < 1.6


def test_every_request_is_bounded_by_the_client_time_limit_and_the_load_by_its_limit(lab: LabMesh) -> None:
    us = lab.cluster("us")
    with us.load(SLEEP, ECHO_URL + "?delay=3", rate=10, timeout=0.5, limit=0.45) as run:
        time.sleep(1.2)  # longer than the limit: the load stopped by itself after 0.45 s
    assert len(run.samples) == 5, run.samples  # t = 0, 0.1, 0.2, 0.3, 0.4
    for s in run.samples:
        assert s.status is None and s.error == "timed out" and s.cluster is None, s
        assert 0.5 <= s.latency_s < 0.8, s


def test_stopping_an_unknown_load_is_one_clear_error(lab: LabMesh) -> None:
    us = lab.cluster("us")
    with pytest.raises(ConfigError, match="no load 'load-999' \\(stopped already\\?\\)"):
        us._stop_load("load-999")
    with pytest.raises(ConfigError, match="a steady load needs 0 < rate <= 1000"):
        with us.load(SLEEP, ECHO_URL, rate=0, timeout=1.0, limit=1.0):
            pass


def test_a_route_timeout_answers_504_ut_and_ejects_the_hung_endpoint(lab: LabMesh) -> None:
    """With the failover DestinationRule, a 1 s VirtualService timeout turns a hang into 504 UT, which
    ejects the US endpoint: the next requests are served by EU. Without it, the same hang waits."""
    us = lab.cluster("us")
    [slow] = us.call(SLEEP, ECHO_URL + "?delay=1.5", timeout=3.0)
    assert slow.status == 200 and slow.cluster == "us" and slow.latency_s >= 1.5, slow.summary()  # no route timeout yet
    docs = install.documents(MANIFESTS, lab.topology, "us", ["suites/failover/virtualservice-echo-timeout.yaml"])
    us.apply(docs)
    try:
        route = next(r for r in us.proxy_config_dump(SLEEP)["configs"] if "dynamic_route_configs" in r or "static_route_configs" in r)
        assert '"timeout": "1s"' in str(route).replace("'", '"'), "route timeout not in the client's config"
        [timed_out] = us.call(SLEEP, ECHO_URL + "?delay=3", timeout=3.0)
        assert timed_out.status == 504 and timed_out.response_flags == "UT", timed_out.summary()
        assert 0.9 <= timed_out.latency_s < 1.5, timed_out.summary()
        after = us.call(SLEEP, ECHO_URL, count=5)
        assert [r.cluster for r in after] == ["eu"] * 5, [r.summary() for r in after]
        local = [e for e in us.proxy_endpoints(SLEEP, ECHO_UPSTREAM) if e.locality.startswith("us/")]
        assert local and not any(e.healthy for e in local), local
    finally:
        us.delete(docs)
