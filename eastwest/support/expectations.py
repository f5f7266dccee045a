"""What a conformant mesh shows under each kind of fault, derived from the run's FailoverBounds.

Each function returns an :class:`~eastwest.support.failover.Expectation` whose limits name
the setting (or derivation) they come from, so a failure says what to override. The cases
and their reasoning: ../shared/notes/chaos-failover.md §3.2 (C = connect timeout, T_c = the
client's time limit, B = base ejection time, I = interval, W = merge window, r = rate).
"""

from __future__ import annotations

from eastwest.settings import FailoverBounds
from eastwest.support.failover import Expectation, Limit


def _failover_within(b: FailoverBounds) -> Limit:
    return Limit(b.failover_deadline(), "failover_within = connect_timeout + slack")


def _failback_within(b: FailoverBounds) -> Limit:
    return Limit(b.failback_deadline(), f"failback_within = {b.ejections()} x base_ejection + interval + slack")


def fails_over(b: FailoverBounds, to: str, *, answers_5xx: bool = False, silent: bool = False, onset: int | None = None,
               onset_setting: str = "onset_errors", ejected: bool | None = None) -> Expectation:
    """The local endpoint fails, is ejected, and traffic moves to ``to`` until it comes back.

    ``answers_5xx``: the broken endpoint still answers (503 from its sidecar, an HTTP abort),
    so every ejection that expires while the fault holds lets one merge window of requests
    fail (``burst_errors``); otherwise an expiry costs only a slow request (connect-failure is
    retried elsewhere). ``silent``: packets are dropped or held (partition, delay), so every
    connection the client proxy keeps to the endpoint catches one request that hangs until the
    client gives up (a killed process instead closes its connections). ``onset``: errors while
    the fault lands, when a case knows better than ``onset_errors`` (a route timeout fails
    every request it catches). ``ejected``: the endpoint stays and must still be ejected at the end
    of the hold (the hold is shorter than an ejection), where the fault leaves it in place.
    """
    bursts = b.burst_error_bound() if answers_5xx else 0
    landing = b.onset_error_bound() if onset is None else onset
    return Expectation(
        fails_over_to=to,
        failover_within=_failover_within(b),
        failback_within=_failback_within(b),
        errors_during=Limit(landing + bursts, f"{onset_setting} + burst_errors"),
        catches_pooled_connections=silent,
        errors_after_deadline=Limit(bursts, "burst_errors"),
        ejected=ejected,
    )


def stays_home(b: FailoverBounds, *, added_latency: float = 0.0) -> Expectation:
    """The fault must not move traffic nor fail a request; ``added_latency`` (seconds per network
    round trip) may slow each request by ``delay_rounds`` round trips: SYN, TLS, request, answer."""
    return Expectation(
        remote_share_during=Limit(0.0, "a fault that breaks no connection must not move traffic"),
        errors_during=Limit(0, "a fault that breaks no connection fails no request"),
        p99_increase_ms=Limit(round((b.delay_rounds * added_latency + b.latency_slack) * 1000),
                              "delay_rounds x the added latency + latency_slack"),
    )


def absorbs_loss(b: FailoverBounds) -> Expectation:
    """Packet loss: TCP retransmits most of it; a connect that outlasts the connect timeout may eject
    the endpoint for a while (the remote share is reported, not bounded), few requests fail."""
    return Expectation(error_share_during=Limit(b.loss_error_share, "loss_error_share"))


def nothing_else_answers(b: FailoverBounds, *, ejected: bool | None = None) -> Expectation:
    """A service whose only way is broken (the remote gateway down): no other cluster ever answers,
    nothing answers while the fault holds, failures are fast once the endpoint is ejected
    (Istio's panic threshold 0: ``503 UH`` at once), and answers come back once it is repaired:
    after its ejection expires, so until then even a repaired way fails (fast).
    ``ejected``: the way stays in place and must still be ejected at the end of the hold."""
    return Expectation(
        successes_while_held=Limit(0, "no endpoint is left to answer"),
        fast_failures=Limit(b.fast_failure, "fast_failure"),
        failback_within=_failback_within(b),
        errors_after_recovery=None,
        errors_after_failback=Limit(0, "a repaired way that answers again keeps answering"),
        ejected=ejected,
    )


def hangs_without_failover(b: FailoverBounds) -> Expectation:
    """A hang behind a live sidecar: no connection fails and nothing answers 5xx, so without a
    route timeout nothing is ejected; every request waits until the client gives up and none
    moves to the other cluster (Istio's documented behaviour, not a defect of the mesh). Like
    Chaos Mesh's HTTPChaos, the hang acts on connections opened after it: a request on one the
    client proxy already had may still be answered until that connection closes."""
    return Expectation(
        remote_share_during=Limit(0.0, "nothing ejects a hung endpoint without a route timeout"),
        successes_while_held=Limit(b.error_slack, "error_slack: a hung endpoint answers nothing in time"),
        spares_pooled_connections=True,
        ejected=False,
        errors_after_recovery=Limit(b.error_slack, "error_slack: requests caught by the hang as it is removed"),
    )
