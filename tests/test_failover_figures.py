"""Self-tests of eastwest/support/failover.py and timeline.py on synthetic timelines, and of FailoverBounds.

Each timeline is a load at 50 requests per second whose answers a small function decides by
start time, so the figures a test expects can be worked out by hand.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable

import pytest

from eastwest.mesh import LoadSample
from eastwest.settings import FailoverBounds, failover_bounds, parse_bound_override
from eastwest.support.errors import ConfigError
from eastwest.support.failover import (
    Evidence,
    Expectation,
    FaultEvents,
    Limit,
    concurrency,
    first_run,
    judge,
    measure,
    percentile,
)
from eastwest.support.timeline import timeline_png

RATE = 50.0
EVENTS = FaultEvents(injecting=1.0, injected=1.1, recovering=5.0, recovered=5.05)


def us(t: float) -> LoadSample:
    return LoadSample(t, 0.003, 200, "us")


def eu(t: float) -> LoadSample:
    return LoadSample(t, 0.006, 200, "eu")


def http503(t: float) -> LoadSample:
    return LoadSample(t, 0.002, 503, None, "URX,UF")


def timeout(t: float) -> LoadSample:
    return LoadSample(t, 2.0, None, None, None, "timed out")


def load(answer: Callable[[float], LoadSample], seconds: float = 8.0) -> list[LoadSample]:
    return [answer(round(i / RATE, 4)) for i in range(int(seconds * RATE))]


def figures(samples: list[LoadSample], events: FaultEvents = EVENTS, target: str | None = "eu", home: str = "us"):
    return measure(samples, events, client_cluster="us", home=home, target=target, consecutive=10, deadline=5.0,
                   fast_failure=0.25)


def fails_over(**changes) -> Expectation:
    base = Expectation(
        fails_over_to="eu", failover_within=Limit(5.0, "failover_within"), failback_within=Limit(8.0, "failback_within"),
        errors_during=Limit(3, "onset_errors"), errors_after_deadline=Limit(0, "burst_errors"),
    )
    return dataclasses.replace(base, **changes)


def healthy_failover(t: float) -> LoadSample:
    """Two 503s when the fault lands, EU until 1.5 s after removal, then US again."""
    if t < 1.0 or t >= 6.5:
        return us(t)
    if t < 1.04:
        return http503(t)
    return eu(t)


def test_a_healthy_failover_is_measured_and_passes() -> None:
    fig = figures(load(healthy_failover))
    assert fig.requests == 400 and fig.achieved_rate == pytest.approx(50, abs=0.1)
    assert fig.before.requests == 50 and fig.before.served == {"us": 50} and fig.before.errors == 0
    assert fig.errors_during == 2 and fig.error_kinds == {"503 URX,UF": 2}
    # the first of 10 consecutive EU answers started at 1.04 s, before the fault was reported in place
    assert fig.time_to_failover_s == 0.0
    assert fig.time_to_failback_s == pytest.approx(6.5 - 5.05, abs=1e-6)
    assert fig.errors_after_deadline == 0 and fig.errors_after_recovery == 0
    assert fig.remote_share_during == pytest.approx(198 / 200)
    assert fig.wrong_cluster == {}
    assert judge(fig, fails_over()) == []
    text = "\n".join(fig.lines())
    assert "time to failover to eu: 0.00 s" in text and "time to failback to us: 1.45 s" in text


def test_time_to_failover_counts_from_the_fault_in_place_to_ten_consecutive_remote_answers() -> None:
    def slow(t: float) -> LoadSample:
        if t < 1.0 or t >= 6.5:
            return us(t)
        if t < 3.0:
            return timeout(t) if round(t * RATE) % 2 else eu(t)  # alternating: never 10 in a row
        return eu(t)

    fig = figures(load(slow))
    assert fig.time_to_failover_s == pytest.approx(3.0 - 1.1, abs=1e-6)
    problems = judge(fig, fails_over(failover_within=Limit(1.5, "failover_within")))
    assert any(p.startswith("failover too slow: the first of the consecutive answers from eu came 1.90 s") and
               "bound 1.5 (failover_within) s" in p for p in problems), problems


def test_no_failover_names_the_missing_ejection() -> None:
    fig = figures(load(lambda t: http503(t) if 1.0 <= t < 5.0 else us(t)))
    assert fig.time_to_failover_s is None
    problems = judge(fig, fails_over())
    assert problems[0].startswith("no failover: the local endpoint was never ejected (is outlierDetection set?); "
                                  "during the fault 200 of 200 requests failed (200 x 503 URX,UF), 0 were served by eu"), problems
    assert any(p.startswith("200 errors during the fault") and p.endswith("bound 3 (onset_errors)") for p in problems), problems
    # the client proxy's own table says it did eject: then the cause is elsewhere
    ejected = judge(fig, fails_over(), Evidence(ejected=True, region="us"))
    assert ejected[0].startswith("no failover: the local endpoint was ejected but traffic did not move to eu"), ejected
    # what the endpoint table says at the end of the hold is asserted where a case knows it
    hang = judge(fig, Expectation(ejected=False), Evidence(ejected=True, region="us"))
    assert hang == ["the client proxy ejected its us endpoints, which nothing in this fault should do"], hang
    kept = judge(fig, Expectation(ejected=True), Evidence(ejected=False, region="us"))
    assert kept == ["expected the client proxy to have ejected its us endpoints by the end of the hold; it had not"], kept


def test_an_answer_from_a_cluster_that_should_not_serve_is_the_wrong_cluster() -> None:
    """A US client calling an EU-only service while the EU gateway is down: US must never answer."""
    def leak(t: float) -> LoadSample:
        if 1.0 <= t < 5.0:
            return us(t) if t > 4.5 else LoadSample(t, 0.01, 503, None, "UH")
        return eu(t)

    fig = figures(load(leak), target=None, home="eu")
    assert fig.wrong_cluster == {"us": 24}  # 4.52 s to 4.98 s
    problems = judge(fig, Expectation(successes_while_held=Limit(0, "nothing answers")))
    assert any(p.startswith("failed over to the wrong cluster: 24 x us answered, expected only eu") for p in problems), problems
    assert fig.successes_while_held == 24  # they started and ended while the fault held
    assert any(p.startswith("24 requests got an answer while the fault held, where nothing should answer") for p in problems)
    spared = judge(fig, Expectation(successes_while_held=Limit(20, "slack"), spares_pooled_connections=True))
    assert any(p.startswith("24 requests got an answer while the fault held") and
               p.endswith("bound 21 (slack + 1 pooled connections the fault does not act on)") for p in spared), spared
    # a one-shot fault (the gateway killed) holds only until its replacement appears: answers after that are recovery
    replaced = figures(load(leak), events=dataclasses.replace(EVENTS, failback_from=4.5), target=None, home="eu")
    assert replaced.successes_while_held == 0


def test_a_broken_steady_state_names_locality_failover() -> None:
    fig = figures(load(lambda t: us(t) if round(t * RATE) % 2 else eu(t)))
    problems = judge(fig, fails_over())
    assert problems[0].startswith("steady state before the fault does not hold: expected all 50 requests served by us"), problems
    assert "locality failover is not in effect, 25 of 50 requests were served by eu" in problems[0]
    assert "outlierDetection" in problems[0]


def test_errors_after_the_deadline_and_slow_failures_are_counted() -> None:
    def bursts(t: float) -> LoadSample:
        if 1.0 <= t < 1.04 or 6.2 <= t < 6.4:  # the onset, then a merge-window burst after the deadline
            return http503(t)
        if 6.4 <= t < 6.5:
            return timeout(t)
        return eu(t) if 1.0 <= t < 7.5 else us(t)

    fig = figures(load(bursts), events=FaultEvents(1.0, 1.1, 7.5, 7.55))
    assert fig.errors_after_deadline == 15 and fig.slow_failures_after_deadline == 5
    assert fig.slowest_failure_after_deadline_ms == 2000.0
    problems = judge(fig, fails_over(fast_failures=Limit(0.25, "fast_failure")))
    assert any(p.startswith("15 errors after the failover deadline (5.00 s after the fault was in place)") for p in problems), problems
    assert "17 errors during the fault (12 x 503 URX,UF, 5 x timed out); bound 3 (onset_errors)" in problems, problems
    assert any(p.startswith("failures are not fast once the endpoints are ejected: 5 failures") for p in problems), problems


def test_failback_too_slow_and_missing() -> None:
    late = figures(load(lambda t: us(t) if t < 1.0 or t >= 7.9 else eu(t), seconds=9))
    assert late.time_to_failback_s == pytest.approx(7.9 - 5.05, abs=1e-6)
    problems = judge(late, fails_over(failback_within=Limit(2.0, "failback_within")))
    assert any(p.startswith("failback too slow: traffic came back to us 2.85 s after") for p in problems), problems
    flap = figures(load(lambda t: http503(t) if 7.0 <= t < 7.05 else healthy_failover(t)))
    assert flap.errors_after_recovery == 3 and flap.errors_after_failback == 3
    assert judge(flap, fails_over(errors_after_recovery=None, errors_after_failback=Limit(0, "none"))) == [
        "3 errors after traffic was back at us; bound 0 (none)"]
    never = figures(load(lambda t: us(t) if t < 1.0 else eu(t)))
    assert never.time_to_failback_s is None
    assert any(p.startswith("no failback:") for p in judge(never, fails_over())), judge(never, fails_over())


def test_traffic_that_must_stay_home_is_checked_by_remote_share_and_latency() -> None:
    def leaks(t: float) -> LoadSample:
        if 2.0 <= t < 2.2:
            return eu(t)
        return LoadSample(t, 0.9 if 1.0 <= t < 5.0 else 0.003, 200, "us")

    fig = figures(load(leaks))
    stay = Expectation(remote_share_during=Limit(0.0, "must not fail over"), p99_increase_ms=Limit(500, "delay_rounds"),
                       errors_during=Limit(0, "none"))
    problems = judge(fig, stay)
    assert any(p.startswith("traffic left us though this fault must not move it: 5.0 %") for p in problems), problems
    assert "latency p99 rose by 897 ms during the fault (3 -> 900 ms); bound 500 (delay_rounds) ms" in problems, problems
    assert len(problems) == 2, problems


def test_an_error_share_and_a_missing_steady_state_after_are_reported() -> None:
    def lossy(t: float) -> LoadSample:
        if 1.0 <= t < 5.0 and round(t * RATE) % 10 == 0:
            return timeout(t)
        return us(t) if t < 7.8 else eu(t)  # the load ends with EU answering

    fig = figures(load(lossy))
    assert fig.errors_during == 20 and not fig.home_at_end
    problems = judge(fig, Expectation(error_share_during=Limit(0.05, "loss_error_share")))
    assert "10.0 % of the fault's requests failed (20 of 200: 20 x timed out); bound 0.05 (loss_error_share)" in problems, problems
    assert any(p.startswith("steady state after the fault does not hold: the load's last requests were not all answered by us")
               for p in problems), problems
    assert fig.wrong_cluster == {}  # eu is the failover cluster: moving there is legal routing, only unwanted here


def test_a_silent_fault_may_fail_one_request_per_pooled_connection() -> None:
    """Before the fault, up to three requests overlapped: the client proxy has three connections to the
    US endpoint, and a partition catches one request on each."""
    def pooled(t: float) -> LoadSample:
        if 0.5 <= t < 0.55:
            return LoadSample(t, 0.05, 200, "us")  # a stall: three requests in flight at once
        if 1.0 <= t < 1.1:
            return timeout(t)
        return eu(t) if 1.0 <= t < 5.0 else us(t)

    fig = figures(load(pooled))
    assert fig.concurrency_before == 3 and fig.errors_during == 5
    limit = fails_over(errors_during=Limit(3, "onset_errors"))
    assert judge(fig, dataclasses.replace(limit, catches_pooled_connections=True)) == []
    problems = judge(fig, limit)
    assert "5 errors during the fault (5 x timed out); bound 3 (onset_errors)" in problems, problems
    tighter = judge(fig, dataclasses.replace(limit, errors_during=Limit(1, "onset_errors"), catches_pooled_connections=True))
    assert ("5 errors during the fault (5 x timed out); bound 4 (onset_errors + 3 pooled connections (the most requests "
            "in flight before the fault))") in tighter, tighter


def test_first_run_and_percentile() -> None:
    samples = [eu(0.0), eu(0.1), timeout(0.2), eu(0.3), eu(0.4), eu(0.5)]
    assert first_run(samples, "eu", 3, 0.0) == eu(0.3)
    assert first_run(samples, "eu", 2, 0.0) == eu(0.0)
    assert first_run(samples, "eu", 4, 0.0) is None
    assert first_run(samples, "eu", 2, 0.0, end=0.05) == eu(0.0)
    assert first_run(samples, "eu", 3, 0.0, end=0.25) is None  # the only run of 3 starts after the end
    assert percentile(list(range(1, 101)), 99) == 99 and percentile(list(range(1, 101)), 50) == 50
    assert percentile([7.0], 99) == 7.0 and percentile([], 50) is None
    assert concurrency([eu(0.0), eu(0.001), eu(0.1)]) == 2 and concurrency([]) == 0


def test_the_timeline_picture_is_a_png() -> None:
    samples = load(healthy_failover)
    png = timeline_png(samples, figures(samples), "synthetic failover")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1100, 550)


# ---- FailoverBounds -----------------------------------------------------------------------


def test_bounds_follow_the_configuration_in_effect() -> None:
    b = FailoverBounds()
    assert b.ejections() == 1  # a 4.5 s hold ends before the first 5 s ejection can expire
    assert b.failover_deadline() == 1.0 + 2.0  # C + slack
    assert b.failback_deadline() == 5.0 + 1.0 + 2.0  # B + I + slack
    assert b.burst_error_bound() == 0 and b.onset_error_bound() == 3
    longer = FailoverBounds(hold=8)
    # the first ejection expires at 5-6 s, the fault ejects again for 2 x 5 s, and the
    # un-ejected host answers 5xx for one merge window at 50/s
    assert longer.ejections() == 2 and longer.failback_deadline() == 13.0 and longer.burst_error_bound() == 51
    assert FailoverBounds(hold=16).ejections() == 3
    assert FailoverBounds(failover_within=9.5).failover_deadline() == 9.5
    assert FailoverBounds(burst_errors=7, hold=8).burst_error_bound() == 7


def test_bound_overrides_are_checked_by_name_and_value() -> None:
    assert parse_bound_override("hold=6") == ("hold", 6.0)
    assert parse_bound_override("consecutive=5") == ("consecutive", 5)
    with pytest.raises(ConfigError, match=r"expected NAME=VALUE with NAME one of rate, client_timeout, .*; got 'hodl=6'"):
        parse_bound_override("hodl=6")
    with pytest.raises(ConfigError, match="consecutive: '2.5' is not a whole number"):
        parse_bound_override("consecutive=2.5")
    with pytest.raises(ConfigError, match="rate: must be more than 0"):
        parse_bound_override("rate=0")
    with pytest.raises(ConfigError, match="loss_error_share: a share between 0 and 1"):
        parse_bound_override("loss_error_share=5")
    with pytest.raises(ConfigError, match="sends fewer than consecutive=10 requests before the fault"):
        failover_bounds([("steady", 0.1)])
    assert failover_bounds([("hold", 6.0)]).hold == 6.0
