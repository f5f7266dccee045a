"""Failover measured from a load's timeline: figures, what a conformant mesh shows, and verdicts.

A failover test streams requests from one client from before a fault until after it is
removed (``Cluster.load``), and stamps four moments on the load's clock (:class:`FaultEvents`):
the fault asked for, in place (Chaos Mesh's AllInjected), asked away, gone (AllRecovered).
:func:`measure` turns the samples and the stamps into :class:`FailoverFigures`:

* time to failover: from the fault in place to the first of N consecutive answers from the
  failover cluster (N = 10, Istio's own criterion in its failover task);
* errors during the fault, split at the failover deadline, and after recovery;
* time to failback: from the fault removed to the first of N consecutive local answers;
* the remote share and latency p50/p99 before, during and after the fault.

:func:`judge` compares the figures with an :class:`Expectation` (built from the run's
FailoverBounds) and returns one sentence per violation, naming the cause where the evidence
shows it ("no failover: the local endpoint was never ejected ..."). Plain data in, plain data
out: unit-tested on synthetic timelines, no pytest, no backend.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from eastwest.mesh import LoadSample

#: the gap between two request starts above which the load itself stalled (machine overloaded)
STALL_S = 0.5


@dataclass(frozen=True)
class FaultEvents:
    """The fault's moments, in seconds on the load's clock (0 = the load's first request)."""

    injecting: float  # inject asked for
    injected: float  # the fault in place (AllInjected)
    recovering: float  # removal asked for
    recovered: float  # the fault gone (AllRecovered)
    #: where failback is measured from: ``recovered``, or for a one-shot fault (pod-kill) the
    #: moment its replacement was ready
    failback_from: float | None = None

    @property
    def failback_origin(self) -> float:
        return self.recovered if self.failback_from is None else self.failback_from


@dataclass(frozen=True)
class Phase:
    """The requests of one phase of the test: before (ended before the fault was asked for), during
    (in flight or started while it was injected and held), after (started once its removal was asked for)."""

    requests: int
    errors: int
    served: dict[str, int]  # successes by serving cluster
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    def share(self, cluster: str) -> float:
        """The share of this phase's requests that ``cluster`` answered successfully."""
        return self.served.get(cluster, 0) / self.requests if self.requests else 0.0

    def summary(self) -> str:
        served = ", ".join(f"{n} by {c}" for c, n in sorted(self.served.items())) or "none served"
        lat = f"p50 {_ms(self.p50_ms)} p99 {_ms(self.p99_ms)} max {_ms(self.max_ms)}"
        return f"{self.requests} requests, {self.errors} errors, {served}; {lat}"


@dataclass(frozen=True)
class FailoverFigures:
    """What one load showed around one fault."""

    client_cluster: str
    home: str  # where successes belong while healthy
    target: str | None  # where traffic should go during the fault (None: nowhere else)
    requests: int
    achieved_rate: float
    longest_gap_s: float  # the longest pause between two request starts
    injection_s: float  # from asked for to in place
    deadline_s: float  # the failover deadline, after the fault in place
    time_to_failover_s: float | None
    time_to_failback_s: float | None
    #: from the fault in place to the first of the consecutive answers home again (a one-shot fault may be
    #: over before it is removed: then time_to_failback_s is 0)
    home_again_s: float | None
    errors_during: int
    errors_after_deadline: int
    errors_after_recovery: int
    errors_after_failback: int  # from the first of the consecutive answers home after the fault on
    #: successes among requests that started and ended while the fault held (until its removal, or for a
    #: one-shot fault until its replacement appeared)
    successes_while_held: int
    home_at_end: bool  # the load's last ``consecutive`` requests were all answered by home (steady state after)
    #: the most requests in flight at once before the fault: at least as many connections as the
    #: client proxy opened (and keeps pooled) towards home, each of which a silent fault catches one request on
    concurrency_before: int
    slow_failures_after_deadline: int  # failures after the deadline slower than the fast-failure bound
    slowest_failure_after_deadline_ms: float | None
    wrong_cluster: dict[str, int]  # successes from a cluster neither home nor target, during and after
    error_kinds: dict[str, int]  # during the fault
    before: Phase
    during: Phase
    after: Phase
    events: FaultEvents

    @property
    def remote_share_during(self) -> float:
        """The share of requests during the fault that another cluster than home answered."""
        d = self.during
        return sum(n for c, n in d.served.items() if c != self.home) / d.requests if d.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["remote_share_during"] = round(self.remote_share_during, 4)
        return out

    def lines(self) -> list[str]:
        """The figures as report lines."""
        e = self.events
        ttf = "none" if self.time_to_failover_s is None else f"{self.time_to_failover_s:.2f} s"
        ttb = "none" if self.time_to_failback_s is None else f"{self.time_to_failback_s:.2f} s"
        out = [
            f"load: {self.requests} requests from {self.client_cluster} at {self.achieved_rate:.1f}/s "
            f"(longest pause between two requests {self.longest_gap_s * 1000:.0f} ms)",
            f"fault: asked at {e.injecting:.2f} s, in place at {e.injected:.2f} s (+{self.injection_s:.2f} s), "
            f"removed at {e.recovering:.2f}-{e.recovered:.2f} s",
            f"time to failover{' to ' + self.target if self.target else ''}: {ttf} (deadline {self.deadline_s:.2f} s)",
            f"errors during the fault: {self.errors_during} ({_kinds(self.error_kinds)}; at most {self.concurrency_before} "
            "in flight at once before it); "
            f"after the deadline: {self.errors_after_deadline}; after recovery: {self.errors_after_recovery}; "
            f"after failback: {self.errors_after_failback}",
            f"remote share during the fault: {self.remote_share_during * 100:.1f} %",
            f"time to failback to {self.home}: {ttb}"
            + ("" if self.home_again_s is None else f" (home again {self.home_again_s:.2f} s after the fault was in place)"),
            f"before: {self.before.summary()}",
            f"during: {self.during.summary()}",
            f"after:  {self.after.summary()}",
        ]
        if self.wrong_cluster:
            out.append(f"served by an unexpected cluster: {_kinds(self.wrong_cluster)}")
        if self.longest_gap_s > STALL_S:
            out.append(f"warning: the load stalled for {self.longest_gap_s:.2f} s (the machine is overloaded); "
                       "figures around the stall are coarse")
        return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _kinds(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} x {k}" for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))) or "none"


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile (``p`` in 0..100) of ``values``, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def error_kind(s: LoadSample) -> str:
    """How a request failed, in one short phrase: ``503 UH``, ``timed out``, ..."""
    if s.status is None:
        return s.error or "no response"
    flags = s.response_flags if s.response_flags not in (None, "", "-") else ""
    return f"{s.status} {flags}".strip()


def phase(samples: Sequence[LoadSample]) -> Phase:
    latencies = [s.latency_s * 1000 for s in samples]
    served = Counter(s.cluster or "?" for s in samples if s.ok)
    return Phase(len(samples), sum(1 for s in samples if not s.ok), dict(served), percentile(latencies, 50),
                 percentile(latencies, 99), max(latencies) if latencies else None)


def concurrency(samples: Sequence[LoadSample]) -> int:
    """The most requests in flight at any one moment."""
    edges = sorted([(s.t, 1) for s in samples] + [(s.t + s.latency_s, -1) for s in samples])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def first_run(samples: Sequence[LoadSample], cluster: str, n: int, start: float, end: float = math.inf) -> LoadSample | None:
    """The first of ``n`` consecutive successes served by ``cluster`` whose first request started
    in [start, end) (consecutive in start order)."""
    run: list[LoadSample] = []
    for s in samples:
        if s.t < start:
            continue
        if s.ok and s.cluster == cluster:
            if not run and s.t >= end:
                return None
            run.append(s)
            if len(run) == n:
                return run[0]
        else:
            run = []
    return None


def measure(samples: Sequence[LoadSample], events: FaultEvents, *, client_cluster: str, home: str, target: str | None,
            consecutive: int, deadline: float, fast_failure: float) -> FailoverFigures:
    """The figures of one load around one fault.

    ``home`` is where the client's traffic belongs while healthy, ``target`` the cluster it may
    fail over to (None: nowhere; then an answer from any other cluster is from the wrong one),
    ``deadline`` the seconds after the fault is in place by which failover must be done.
    """
    ordered = sorted(samples, key=lambda s: s.t)
    # a request still in flight when the fault is asked for belongs to the fault, not to the steady state
    before = [s for s in ordered if s.t + s.latency_s <= events.injecting]
    during = [s for s in ordered if s.t + s.latency_s > events.injecting and s.t < events.recovering]
    after = [s for s in ordered if s.t >= events.recovering]
    cutoff = events.injected + deadline
    late = [s for s in during if s.t >= cutoff]
    late_failures = [s for s in late if not s.ok]
    held_until = events.recovering if events.failback_from is None else min(events.recovering, events.failback_from)
    held = [s for s in during if s.t >= events.injected and s.t + s.latency_s <= held_until]
    ttf = None
    failed_over = None
    if target is not None:
        failed_over = first_run(ordered, target, consecutive, events.injecting, events.recovering)
        if failed_over is not None:
            ttf = max(0.0, failed_over.t - events.injected)
    ttb = None
    home_again = None
    if target is None or failed_over is not None:
        home_again = first_run(ordered, home, consecutive, failed_over.t if failed_over else events.recovering)
        if home_again is not None:
            ttb = max(0.0, home_again.t - events.failback_origin)
    expected = {home, *([target] if target else [])}
    wrong = Counter(s.cluster or "?" for s in during + after if s.ok and s.cluster not in expected)
    starts = [s.t for s in ordered]
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    span = starts[-1] - starts[0] if len(starts) > 1 else 0.0
    return FailoverFigures(
        client_cluster=client_cluster,
        home=home,
        target=target,
        requests=len(ordered),
        achieved_rate=round((len(ordered) - 1) / span, 2) if span > 0 else 0.0,
        longest_gap_s=round(max(gaps), 4) if gaps else 0.0,
        injection_s=round(events.injected - events.injecting, 4),
        deadline_s=deadline,
        time_to_failover_s=None if ttf is None else round(ttf, 4),
        time_to_failback_s=None if ttb is None else round(ttb, 4),
        home_again_s=None if home_again is None else round(home_again.t - events.injected, 4),
        errors_during=sum(1 for s in during if not s.ok),
        errors_after_deadline=len(late_failures),
        errors_after_recovery=sum(1 for s in after if not s.ok),
        errors_after_failback=sum(1 for s in ordered if home_again is not None and s.t >= home_again.t and not s.ok),
        successes_while_held=sum(1 for s in held if s.ok),
        home_at_end=len(after) >= consecutive and all(s.ok and s.cluster == home for s in after[-consecutive:]),
        concurrency_before=concurrency(before),
        slow_failures_after_deadline=sum(1 for s in late_failures if s.latency_s > fast_failure),
        slowest_failure_after_deadline_ms=round(max(s.latency_s for s in late_failures) * 1000, 1) if late_failures else None,
        wrong_cluster=dict(wrong),
        error_kinds=dict(Counter(error_kind(s) for s in during if not s.ok)),
        before=phase(before),
        during=phase(during),
        after=phase(after),
        events=events,
    )


@dataclass(frozen=True)
class Limit:
    """One pass bound and the setting it comes from (named in failures so a reader can override it)."""

    value: float
    setting: str

    def __str__(self) -> str:
        return f"{self.value:g} ({self.setting})"


@dataclass(frozen=True)
class Expectation:
    """What a conformant mesh shows under one fault; a None bound is not asserted."""

    #: the cluster traffic moves to during the fault; None where it must not move (or cannot)
    fails_over_to: str | None = None
    failover_within: Limit | None = None
    failback_within: Limit | None = None
    errors_during: Limit | None = None
    #: the fault silences the endpoint (drops or holds packets): each connection the client proxy
    #: already had to it catches one request, which hangs until the client gives up; errors_during
    #: grows by the pooled connections (``concurrency_before``)
    catches_pooled_connections: bool = False
    errors_after_deadline: Limit | None = None
    errors_after_recovery: Limit | None = field(default_factory=lambda: Limit(0, "a removed fault leaves no errors behind"))
    #: errors once traffic is home again (where errors after removal are part of the failback)
    errors_after_failback: Limit | None = None
    #: the most of the fault's requests another cluster than home may answer (0: must not fail over)
    remote_share_during: Limit | None = None
    #: how much slower the fault's p99 latency may be than the steady state's before it
    p99_increase_ms: Limit | None = None
    #: the share of the fault's requests that may fail (where a count cannot be known in advance)
    error_share_during: Limit | None = None
    #: once the only endpoints are ejected, every failure after the deadline is at most this slow
    fast_failures: Limit | None = None
    #: answers allowed to requests that started with the fault in place and could not outlast it
    #: (a fault that leaves nothing to answer: a hang without a route timeout, the only gateway down)
    successes_while_held: Limit | None = None
    #: the fault acts on new connections only (Chaos Mesh's HTTPChaos: "does not affect requests sent
    #: on a TCP socket before the injection"): requests on the client proxy's pooled connections may
    #: still be answered until those close; successes_while_held grows by them (``concurrency_before``)
    spares_pooled_connections: bool = False
    #: whether the client proxy has ejected the watched endpoints (by default its own cluster's) at
    #: the end of the hold (read from its endpoint table, where the backend shows it); None: not asserted
    ejected: bool | None = None


@dataclass(frozen=True)
class Evidence:
    """What the test read of the mesh during the fault, to name a cause."""

    #: whether the client proxy had ejected (marked unhealthy) every endpoint of ``region`` (by default
    #: its own) just before the fault was removed; None when unknown or when it had none
    ejected: bool | None = None
    region: str = ""
    endpoints: str = ""


def judge(fig: FailoverFigures, exp: Expectation, evidence: Evidence = Evidence()) -> list[str]:
    """Every way the figures miss the expectation, one sentence each, the likely cause first."""
    out: list[str] = []
    home = fig.home
    b = fig.before
    if b.errors or b.requests == 0 or b.share(home) < 1.0:
        others = {c: n for c, n in b.served.items() if c != home}
        cause = ""
        if others:
            cause = (f": locality failover is not in effect, {sum(others.values())} of {b.requests} requests were served by "
                     f"{', '.join(sorted(others))} with nothing broken (Istio applies failover priorities only with "
                     "outlierDetection set and localityLbSetting enabled)")
        out.append(f"steady state before the fault does not hold: expected all {b.requests} requests served by {home}; "
                   f"observed {b.summary()}{cause}")
    if exp.fails_over_to is not None:
        if fig.time_to_failover_s is None:
            out.append(_no_failover(fig, exp.fails_over_to, evidence))
        elif exp.failover_within is not None and fig.time_to_failover_s > exp.failover_within.value:
            out.append(f"failover too slow: the first of the consecutive answers from {exp.fails_over_to} came "
                       f"{fig.time_to_failover_s:.2f} s after the fault was in place; bound {exp.failover_within} s")
    if exp.ejected is not None and evidence.ejected is not None and evidence.ejected != exp.ejected:
        out.append(f"expected the client proxy to have ejected its {evidence.region} endpoints by the end of the hold; "
                   "it had not" if exp.ejected else
                   f"the client proxy ejected its {evidence.region} endpoints, which nothing in this fault should do")
    if fig.wrong_cluster:
        allowed = " or ".join(c for c in (home, exp.fails_over_to) if c)
        out.append(f"failed over to the wrong cluster: {_kinds(fig.wrong_cluster)} answered, expected only {allowed}")
    if exp.remote_share_during is not None and fig.remote_share_during > exp.remote_share_during.value:
        out.append(f"traffic left {home} though this fault must not move it: {fig.remote_share_during * 100:.1f} % of the "
                   f"fault's requests were served elsewhere; bound {exp.remote_share_during}")
    held = exp.successes_while_held
    if held is not None and exp.spares_pooled_connections:
        held = Limit(held.value + fig.concurrency_before,
                     f"{held.setting} + {fig.concurrency_before} pooled connections the fault does not act on")
    if held is not None and fig.successes_while_held > held.value:
        out.append(f"{fig.successes_while_held} requests got an answer while the fault held, where nothing should answer; "
                   f"bound {held}")
    during = exp.errors_during
    if during is not None and exp.catches_pooled_connections:
        during = Limit(during.value + fig.concurrency_before,
                       f"{during.setting} + {fig.concurrency_before} pooled connections (the most requests in flight before the fault)")
    _at_most(out, fig.errors_during, during, f"errors during the fault ({_kinds(fig.error_kinds)})")
    _at_most(out, fig.errors_after_deadline, exp.errors_after_deadline,
             f"errors after the failover deadline ({fig.deadline_s:.2f} s after the fault was in place)")
    if exp.fast_failures is not None and fig.slow_failures_after_deadline:
        out.append(f"failures are not fast once the endpoints are ejected: {fig.slow_failures_after_deadline} failures after "
                   f"the deadline took longer than {exp.fast_failures} s (slowest {_ms(fig.slowest_failure_after_deadline_ms)}); "
                   "Istio disables the panic threshold (minHealthPercent 0), so a proxy with no healthy endpoint "
                   "answers 503 UH at once instead of trying ejected ones")
    if exp.p99_increase_ms is not None and fig.during.p99_ms is not None and fig.before.p99_ms is not None:
        increase = fig.during.p99_ms - fig.before.p99_ms
        if increase > exp.p99_increase_ms.value:
            out.append(f"latency p99 rose by {increase:.0f} ms during the fault ({fig.before.p99_ms:.0f} -> {fig.during.p99_ms:.0f} ms); "
                       f"bound {exp.p99_increase_ms} ms")
    if exp.error_share_during is not None and fig.during.requests:
        share = fig.errors_during / fig.during.requests
        if share > exp.error_share_during.value:
            out.append(f"{share * 100:.1f} % of the fault's requests failed ({fig.errors_during} of {fig.during.requests}: "
                       f"{_kinds(fig.error_kinds)}); bound {exp.error_share_during}")
    if exp.failback_within is not None:
        if fig.time_to_failback_s is None:
            if exp.fails_over_to is None or fig.time_to_failover_s is not None:
                out.append(f"no failback: {fig.after.requests} requests after the fault was removed never had "
                           f"{home} answer consecutively ({fig.after.summary()})")
        elif fig.time_to_failback_s > exp.failback_within.value:
            out.append(f"failback too slow: traffic came back to {home} {fig.time_to_failback_s:.2f} s after the fault was "
                       f"removed; bound {exp.failback_within} s")
    _at_most(out, fig.errors_after_recovery, exp.errors_after_recovery, "errors after the fault was removed")
    _at_most(out, fig.errors_after_failback, exp.errors_after_failback, f"errors after traffic was back at {home}")
    if not fig.home_at_end:
        out.append(f"steady state after the fault does not hold: the load's last requests were not all answered by {home} "
                   f"({fig.after.summary()})")
    return out


def _no_failover(fig: FailoverFigures, target: str, evidence: Evidence) -> str:
    d = fig.during
    seen = f"during the fault {d.errors} of {d.requests} requests failed ({_kinds(fig.error_kinds)}), {d.served.get(target, 0)} were served by {target}"
    if evidence.ejected is False or (evidence.ejected is None and d.served.get(target, 0) == 0):
        return f"no failover: the local endpoint was never ejected (is outlierDetection set?); {seen}"
    if evidence.ejected:
        return (f"no failover: the local endpoint was ejected but traffic did not move to {target} (is {target} among the "
                f"client's failover priorities, and its east-west gateway reachable?); {seen}")
    return f"no complete failover: {target} never answered consecutively; {seen}"


def _at_most(out: list[str], observed: int, limit: Limit | None, what: str) -> None:
    if limit is not None and observed > limit.value:
        out.append(f"{observed} {what}; bound {limit}")
