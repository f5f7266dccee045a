"""Self-tests of fixtures/support/eventually.py: consecutive successes, time-outs, evidence."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from eastwest.support.echo import EchoResponse
from eastwest.support.errors import ConvergenceTimeout, MeshError
from eastwest.support.eventually import eventually

FAST: dict[str, Any] = {"within": 0.3, "interval": 0.01}


class Script:
    """A probe that plays back observations; after the script it repeats the last one."""

    def __init__(self, *observations: object):
        self.observations = list(observations)
        self.calls = 0

    def __call__(self) -> object:
        obs = self.observations[min(self.calls, len(self.observations) - 1)]
        self.calls += 1
        return obs


class Obs:
    """An observation: whether it is good, and a distinct identity per call."""

    def __init__(self, good: bool, tag: str):
        self.good, self.tag = good, tag

    def __repr__(self) -> str:
        return f"Obs({self.tag})"


def check(o: Obs) -> str | None:
    return None if o.good else f"{o.tag} is bad"


def P(tag: str) -> Obs:  # noqa: N802 - reads like a script
    return Obs(True, tag)


def F(tag: str) -> Obs:  # noqa: N802
    return Obs(False, tag)


def test_streak_restarts_after_a_failure():
    probe = Script(P("1"), F("2"), P("3"), P("4"), P("5"), F("never reached"))
    last = eventually(probe, check, successes=3, **FAST)
    assert probe.calls == 5
    assert last is probe.observations[4]


def test_passes_are_counted_in_a_row_not_in_total():
    # four passes in total before the sixth call, but only three in a row from call 4 to 6
    probe = Script(P("1"), P("2"), F("3"), P("4"), P("5"), P("6"))
    last = eventually(probe, check, successes=3, **FAST)
    assert probe.calls == 6 and last.tag == "6"


def test_single_success_returns_first_passing_observation():
    probe = Script(F("a"), F("b"), P("c"), F("d"))
    assert eventually(probe, check, successes=1, **FAST).tag == "c"
    assert probe.calls == 3


@pytest.mark.parametrize("successes", [0, -1])
def test_successes_below_one_rejected(successes):
    probe = Script(P("x"))
    with pytest.raises(ValueError, match="successes must be at least 1"):
        eventually(probe, check, successes=successes, **FAST)
    assert probe.calls == 0


def test_timeout_carries_last_observation_reason_and_attempts():
    probe = Script(F("first"), F("second"), F("still-broken"))
    start = time.monotonic()
    with pytest.raises(ConvergenceTimeout) as exc:
        eventually(probe, check, successes=2, what="echo reachable from us", **FAST)
    took = time.monotonic() - start
    err = exc.value
    assert isinstance(err, AssertionError) and isinstance(err, MeshError)  # pytest reports it as a failure
    assert took >= 0.3 and took < 2.0
    assert err.elapsed >= 0.3
    assert err.attempts == probe.calls and err.attempts > 3  # polled every 10 ms, not once
    assert err.last is probe.observations[-1]
    msg = str(err)
    assert msg.startswith("echo reachable from us: not converged within 0.3s")
    assert f"({probe.calls} attempts, needed 2 passes in a row)" in msg
    assert "still-broken is bad" in msg  # why the last observation failed
    assert "last observation:\nObs(still-broken)" in msg  # and what it was


def test_timeout_on_a_passing_observation_still_names_the_failure():
    # the last observation passed but the streak is too short when time runs out: the message
    # must say what failed (not "None"), and that the streak fell short
    probe = Script(F("cold start"), P("warm"))
    with pytest.raises(ConvergenceTimeout) as exc:
        eventually(probe, check, successes=10_000, **FAST)
    msg = str(exc.value)
    assert isinstance(exc.value.last, Obs) and exc.value.last.tag == "warm"
    assert "None" not in msg.splitlines()[0]
    assert "cold start is bad" in msg
    assert f"only {probe.calls - 1} pass(es) in a row" in msg


def test_timeout_description_uses_raw_of_an_echo_response():
    body = "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
    resp = EchoResponse.from_http(
        url="http://echo.echo:80/", status=503, headers={"x-eastwest-response-flags": "UC"}, body=body, latency_s=0.004
    )
    with pytest.raises(ConvergenceTimeout) as exc:
        eventually(lambda: resp, lambda r: None if r.ok else f"status {r.status}", **FAST)
    msg = str(exc.value)
    assert "status 503" in msg
    assert "HTTP 503 from http://echo.echo:80/" in msg and "x-eastwest-response-flags: UC" in msg and body in msg


def test_timeout_description_of_a_batch_uses_summaries():
    batch = [
        EchoResponse.failed(url=f"http://echo.echo/{i}", error="connection refused", latency_s=0.001) for i in range(3)
    ]
    with pytest.raises(ConvergenceTimeout) as exc:
        eventually(lambda: batch, lambda b: f"{sum(not r.ok for r in b)}/3 failed", **FAST)
    msg = str(exc.value)
    assert "3/3 failed" in msg
    for r in batch:
        assert r.summary() in msg


def test_probe_exception_propagates_immediately():
    calls = {"n": 0}

    def probe() -> None:
        calls["n"] += 1
        raise RuntimeError("kubectl exploded")

    with pytest.raises(RuntimeError, match="kubectl exploded"):
        eventually(probe, lambda _: None, within=5, interval=0.01)
    assert calls["n"] == 1


def test_misses_are_logged_with_reason(caplog):
    probe = Script(F("warming"), P("1"), P("2"))
    with caplog.at_level(logging.INFO, logger="eastwest.eventually"):
        eventually(probe, check, successes=2, what="gateway ready", **FAST)
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("gateway ready: not yet after") and "warming is bad" in line for line in lines)
    assert any(line.startswith("gateway ready: converged after") and "(3 attempts)" in line for line in lines)
