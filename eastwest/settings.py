"""The run's configuration: one frozen Settings with its Timeouts and FailoverBounds. Plain data, no pytest.

The pytest plugin (``fixtures/options.py``) and the CLI build a Settings from options and
``EASTWEST_*`` variables; everything else only reads it. Every time limit lives in
:class:`Timeouts` and is overridden by name (``--mesh-timeout NAME=SECONDS``); the failover
suite's load and pass bounds live in :class:`FailoverBounds` (``--failover-bound NAME=VALUE``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eastwest.support.errors import ConfigError


@dataclass(frozen=True)
class Timeouts:
    """Every time limit the suites use, in seconds. Override with ``--mesh-timeout NAME=SECONDS``."""

    #: from a manifest applied to every proxy running it (lab: Envoy reports the version).
    #: A conformant mesh should need at most 30 s.
    apply: float = 30.0
    #: for traffic to show the expected behaviour after a change (the convergence wait).
    #: A conformant mesh should need at most 30 s.
    convergence: float = 30.0
    #: for one request (connect to last byte) or one TCP probe, when the call names none.
    request: float = 2.0
    #: between two observations of a convergence wait.
    poll_interval: float = 0.2
    #: for the whole mesh to come up (clusters, Istio, gateways, workloads);
    #: the lab needs about a second of it.
    bring_up: float = 600.0

    def describe(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


def parse_timeout_override(text: str) -> tuple[str, float]:
    """``"convergence=60"`` -> ("convergence", 60.0); raises ConfigError naming the valid names."""
    names = Timeouts.names()
    name, sep, value = text.partition("=")
    if not sep or name not in names:
        raise ConfigError(f"expected NAME=SECONDS with NAME one of {', '.join(names)}; got {text!r}")
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{name}: {value!r} is not a number of seconds") from None
    if seconds <= 0:
        raise ConfigError(f"{name}: must be more than 0 seconds")
    return name, seconds


def parse_rate(text: str) -> float:
    """``"1e-4"`` -> 0.0001; a probability strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"expected a probability such as 1e-4, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise ConfigError(f"must be between 0 and 1 (exclusive), got {value}")
    return value


def parse_positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise ConfigError(f"must be at least 1, got {value}")
    return value


@dataclass(frozen=True)
class FailoverBounds:
    """The failover suite's load, fault hold and pass bounds. Override with ``--failover-bound NAME=VALUE``.

    The bounds follow from the configuration the suite runs with: its DestinationRule
    (``manifests/suites/locality/destinationrule-echo-failover.yaml``: connectTimeout 1 s,
    outlierDetection interval 1 s, baseEjectionTime 5 s, one 5xx or gateway error ejects),
    Envoy's default update merge window (1 s; Istio does not set it) and the load. The
    methods below derive each bound (../shared/notes/chaos-failover.md §3.2 reasons per case);
    a bound given by name replaces its derivation. Run the suite against a mesh configured
    otherwise by overriding the configuration fields, and the bounds follow.
    """

    # ---- the load: one client, an open-loop schedule, one connection per request
    #: requests per second per client. 50/s resolves failover to 20 ms and costs the lab about
    #: a tenth of a core (measured: 20, 50, 100 and 200/s all held their schedule on 2 shared cores)
    rate: float = 50.0
    #: the client's own time limit per request (T_c): a request without an answer by then is an error
    client_timeout: float = 2.0
    #: Istio's failover criterion: this many consecutive responses from one cluster (istio.io failover task)
    consecutive: int = 10
    #: seconds of load before the fault: the steady state the fault is compared with (25 requests)
    steady: float = 0.5
    #: seconds a fault is held. Shorter than base_ejection, so no ejection expires while the fault
    #: holds and each fault shows one clean failover and failback; a longer hold adds an
    #: un-ejection per expiry (for 5xx faults a merge-window burst of errors) and doubles the next
    #: ejection: the bounds below count them. Longer than failover_within, so the errors after the
    #: deadline are measured over a real window
    hold: float = 4.5
    # ---- the configuration in effect (the DestinationRule's and Envoy's)
    #: connectionPool.tcp.connectTimeout (C)
    connect_timeout: float = 1.0
    #: outlierDetection.interval (I): how often ejected hosts are looked at again
    interval: float = 1.0
    #: outlierDetection.baseEjectionTime (B): an ejection lasts B x the times the host was ejected
    base_ejection: float = 5.0
    #: Envoy's cluster update_merge_window (W): health changes reach the load balancer up to W late
    merge_window: float = 1.0
    # ---- margins for a machine shared with other work
    #: seconds added to every derived time bound: config pushes, process scheduling and the
    #: load's own start lag on 2 shared cores (measured lag: under 0.1 s at load average 11)
    slack: float = 2.0
    #: errors added to every derived error bound: a request that coincides with a push or an ejection
    error_slack: int = 2
    # ---- the bounds (None: derived by the method of the same name)
    #: time to failover, from the fault in place to the first of ``consecutive`` remote answers
    failover_within: float | None = None
    #: time to failback, from the fault removed (or its replacement ready) to the first of ``consecutive`` local answers
    failback_within: float | None = None
    #: errors while a fault lands: requests in flight, or on pooled connections, when it hits
    onset_errors: int | None = None
    #: errors after the failover deadline while a 5xx fault holds (merge-window bursts)
    burst_errors: int | None = None
    #: once every endpoint of a service is ejected, how slow a failure may be (Istio answers 503 UH at once)
    fast_failure: float = 0.25
    #: share of requests that may fail under packet loss (TCP retransmits absorb most loss)
    loss_error_share: float = 0.05
    #: network round trips a delayed request may pay in full (SYN, TLS handshake, request, answer)
    delay_rounds: int = 4
    #: seconds of scheduling noise allowed on a latency figure (p99 of a few hundred requests on 2 shared cores)
    latency_slack: float = 0.25

    def ejections(self) -> int:
        """How often one fault can eject a host while it holds: once, and again after every
        ejection that expires during the hold (the n-th ejection lasts n x B)."""
        n, elapsed = 1, self.base_ejection
        while elapsed < self.hold:
            n += 1
            elapsed += n * self.base_ejection
        return n

    def failover_deadline(self) -> float:
        """The slowest way in: the first new connection to a silent endpoint waits C, fails, is
        retried remotely and ejects it. (A request caught on a pooled connection hangs until the
        client gives up, T_c, but the open-loop load keeps sending behind it, so it delays no one.)"""
        return self.failover_within if self.failover_within is not None else self.connect_timeout + self.slack

    def failback_deadline(self) -> float:
        """The last ejection expires at most n x B after it began and is noticed within I."""
        if self.failback_within is not None:
            return self.failback_within
        return self.ejections() * self.base_ejection + self.interval + self.slack

    def onset_error_bound(self) -> int:
        """One request in flight and one on a pooled connection (0.15 requests are in flight at
        50/s and 3 ms each), plus the slack."""
        return self.onset_errors if self.onset_errors is not None else 1 + self.error_slack

    def burst_error_bound(self) -> int:
        """A host un-ejected while it still answers 5xx keeps receiving traffic for the merge
        window: r x W errors per expiry, plus the request that ejects it again."""
        if self.burst_errors is not None:
            return self.burst_errors
        return (self.ejections() - 1) * (math.ceil(self.rate * self.merge_window) + 1)

    def load_limit(self) -> float:
        """How long a load may run before the backend stops it by itself (a test that died)."""
        return self.steady + self.hold + self.failback_deadline() + 60.0

    def describe(self) -> dict[str, float]:
        return {
            **{k: v for k, v in dataclasses.asdict(self).items() if v is not None},
            "failover_within": self.failover_deadline(),
            "failback_within": self.failback_deadline(),
            "onset_errors": self.onset_error_bound(),
            "burst_errors": self.burst_error_bound(),
        }

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


_WHOLE = {"consecutive", "error_slack", "onset_errors", "burst_errors", "delay_rounds"}
_SHARES = {"loss_error_share"}


def parse_bound_override(text: str) -> tuple[str, float | int]:
    """``"hold=6"`` -> ("hold", 6.0); raises ConfigError naming the valid names."""
    names = FailoverBounds.names()
    name, sep, value = text.partition("=")
    if not sep or name not in names:
        raise ConfigError(f"expected NAME=VALUE with NAME one of {', '.join(names)}; got {text!r}")
    try:
        number: float | int = int(value) if name in _WHOLE else float(value)
    except ValueError:
        kind = "a whole number" if name in _WHOLE else "a number"
        raise ConfigError(f"{name}: {value!r} is not {kind}") from None
    if number < 0 or (number == 0 and name not in _WHOLE | {"slack"}):
        raise ConfigError(f"{name}: must be more than 0, got {value}")
    if name in _SHARES and number > 1:
        raise ConfigError(f"{name}: a share between 0 and 1, got {value}")
    if name == "consecutive" and number < 1:
        raise ConfigError("consecutive: at least 1")
    return name, number


def failover_bounds(overrides: list[tuple[str, float | int]]) -> FailoverBounds:
    """FailoverBounds with ``overrides``; a combination that cannot work is one ConfigError line."""
    changes: dict[str, Any] = dict(overrides)
    bounds = dataclasses.replace(FailoverBounds(), **changes)
    if bounds.steady * bounds.rate < bounds.consecutive:
        raise ConfigError(f"steady={bounds.steady} s at rate={bounds.rate}/s sends fewer than consecutive={bounds.consecutive} "
                          "requests before the fault; raise steady or rate")
    return bounds


@dataclass(frozen=True)
class Settings:
    """The run's configuration, built once from the command line and the environment."""

    #: the backend that provides the mesh (a name from the backend registry)
    backend: str
    manifests: Path = Path("manifests")
    timeouts: Timeouts = field(default_factory=Timeouts)
    #: consecutive passes a convergence wait needs.
    required_successes: int = 3
    #: requests per sample in checks that need every request in one place (locality preference).
    sample_size: int = 100
    #: requests per sample in split checks (locality distribute); None: the smallest sample that meets
    #: ``false_failure_rate`` and ``miss_rate`` (``eastwest.support.stats.plan_split``).
    split_sample_size: int | None = None
    #: the most often a correct mesh may fail one batch of a split check (exact binomial).
    false_failure_rate: float = 1e-4
    #: the most often a mesh splitting as a named wrong alternative may pass one batch.
    miss_rate: float = 1e-4
    #: the chosen backend's own options, by name (each backend declares and reads its own)
    backend_options: Mapping[str, Any] = field(default_factory=dict)
    #: the failover suite's load and pass bounds (``--failover-bound NAME=VALUE``)
    failover: FailoverBounds = field(default_factory=FailoverBounds)
