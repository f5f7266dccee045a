"""Sample sizes and acceptance bands for the proportions the suites assert, with stated error rates.

A distribution check counts how many of ``n`` requests landed somewhere and accepts the
count when it lies in a band. Two error rates describe such a check:

- the **false-failure rate**: a mesh that splits exactly as configured (``expected``) lands
  outside the band (``P[X not in band | p = expected]``);
- the **miss rate**: a mesh that splits as a named wrong alternative (70/30 instead of
  80/20) lands inside the band (``P[X in band | p = alternative]``); one minus it is the power.

Both are computed exactly from the binomial distribution (no normal approximation), and
:func:`plan_split` picks the smallest ``n`` that keeps both below their targets. A check
that needs *every* request in one place (``expected = 1``) cannot fail a correct mesh; its
plan states the smallest leak it detects with the target miss rate.

Binomial sampling is the conservative model: Envoy's weighted round robin spreads a batch
more evenly than independent draws would, so a real mesh fails less often than stated.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

#: a correct mesh fails a distribution check at most once in 10,000 batches
DEFAULT_FALSE_FAILURE_RATE = 1e-4
#: a mesh splitting as a named wrong alternative passes a batch at most once in 10,000
DEFAULT_MISS_RATE = 1e-4
#: fewest requests in any distribution batch (Istio's locality tests send 50)
MIN_SAMPLE = 50
#: most requests :func:`plan_split` will ask for before saying the targets are out of reach
MAX_SAMPLE = 20_000


_LOG_FACTORIALS: list[float] = [0.0]


def _log_factorials(n: int) -> list[float]:
    """log k! for k = 0..n (grown on demand and kept: plans scan many n)."""
    while len(_LOG_FACTORIALS) <= n:
        _LOG_FACTORIALS.append(_LOG_FACTORIALS[-1] + math.log(len(_LOG_FACTORIALS)))
    return _LOG_FACTORIALS


def _log_pmf(n: int, p: float) -> list[float]:
    """log P[X = k] for k = 0..n, X ~ Binomial(n, p)."""
    if p <= 0.0 or p >= 1.0:
        certain = 0 if p <= 0.0 else n
        return [0.0 if k == certain else -math.inf for k in range(n + 1)]
    lp, lq, lf = math.log(p), math.log1p(-p), _log_factorials(n)
    return [lf[n] - lf[k] - lf[n - k] + k * lp + (n - k) * lq for k in range(n + 1)]


@functools.lru_cache(maxsize=256)
def pmf(n: int, p: float) -> tuple[float, ...]:
    """P[X = k] for k = 0..n, X ~ Binomial(n, p)."""
    return tuple(math.exp(v) for v in _log_pmf(n, p))


def prob_between(n: int, p: float, low: int, high: int) -> float:
    """P[low <= X <= high] for X ~ Binomial(n, p) (exact; the range is clipped to 0..n)."""
    low, high = max(low, 0), min(high, n)
    if low > high:
        return 0.0
    return min(1.0, math.fsum(pmf(n, p)[low:high + 1]))


def acceptance_band(n: int, p: float, false_failure_rate: float) -> tuple[int, int]:
    """The narrowest central band [low, high] of counts with P[X outside | p] <= false_failure_rate.

    Each tail gets at most half of the rate; the band is then as narrow as that allows.
    """
    probs = pmf(n, p)
    half = false_failure_rate / 2
    low, below = 0, 0.0
    while low < n and below + probs[low] <= half:
        below += probs[low]
        low += 1
    high, above = n, 0.0
    while high > 0 and above + probs[high] <= half:
        above += probs[high]
        high -= 1
    return low, high


@dataclass(frozen=True)
class SplitPlan:
    """How many requests a split check sends, which counts it accepts, and its error rates."""

    #: what is counted, e.g. "served in us"
    what: str
    expected: float
    n: int
    low: int
    high: int
    #: exact P[count outside the band] for a mesh that splits exactly as expected
    false_failure_rate: float
    #: exact P[count inside the band] for each wrong alternative share
    miss_rates: tuple[tuple[float, float], ...]

    def accepts(self, count: int) -> bool:
        return self.low <= count <= self.high

    def describe(self) -> str:
        """One paragraph for the evidence: the plan, and what it guarantees."""
        misses = ", ".join(f"{alt:.0%}: {miss:.1e} (power {1 - miss:.6f})" for alt, miss in self.miss_rates)
        return (
            f"statistics: {self.n} requests; accept {self.low}..{self.high} {self.what} "
            f"(expected {self.expected:.0%} = {self.expected * self.n:.0f}); exact binomial false-failure rate "
            f"{self.false_failure_rate:.1e}; chance of passing a wrong split per batch: {misses or 'none named'}"
        )


def _check_rate(name: str, rate: float) -> None:
    if not 0.0 < rate < 1.0:
        raise ValueError(f"{name} must be between 0 and 1 (exclusive), got {rate}")


def split_plan(n: int, expected: float, alternatives: tuple[float, ...] = (), *, what: str = "",
               false_failure_rate: float = DEFAULT_FALSE_FAILURE_RATE) -> SplitPlan:
    """The band and error rates of a split check with ``n`` requests (for a fixed or overridden ``n``)."""
    _check_rate("false_failure_rate", false_failure_rate)
    if n < 1:
        raise ValueError(f"a sample needs at least one request, got {n}")
    low, high = acceptance_band(n, expected, false_failure_rate)
    actual = 1.0 - prob_between(n, expected, low, high)
    misses = tuple((alt, prob_between(n, alt, low, high)) for alt in alternatives)
    return SplitPlan(what, expected, n, low, high, max(actual, 0.0), misses)


def _normal_estimate(expected: float, alt: float, alpha: float, beta: float) -> int:
    """Sample size from the normal approximation: a starting point for the exact search."""
    z_a = _z(alpha / 2)
    z_b = _z(beta)
    sd0, sd1 = math.sqrt(expected * (1 - expected)), math.sqrt(alt * (1 - alt))
    return math.ceil(((z_a * sd0 + z_b * sd1) / abs(expected - alt)) ** 2)


def _z(tail: float) -> float:
    """The standard normal quantile with ``tail`` above it (bisection on erfc; no SciPy needed)."""
    lo, hi = 0.0, 40.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * math.erfc(mid / math.sqrt(2)) > tail:
            lo = mid
        else:
            hi = mid
    return hi


@functools.lru_cache(maxsize=64)
def plan_split(expected: float, alternatives: tuple[float, ...], *, what: str = "",
               false_failure_rate: float = DEFAULT_FALSE_FAILURE_RATE, miss_rate: float = DEFAULT_MISS_RATE) -> SplitPlan:
    """The smallest sample (at least :data:`MIN_SAMPLE`) whose band fails every alternative with
    probability at least ``1 - miss_rate`` and a correct mesh at most ``false_failure_rate``."""
    _check_rate("false_failure_rate", false_failure_rate)
    _check_rate("miss_rate", miss_rate)
    if not 0.0 < expected < 1.0:
        raise ValueError(f"a split's expected share must be strictly between 0 and 1, got {expected}")
    if any(abs(alt - expected) < 1e-9 or not 0.0 <= alt <= 1.0 for alt in alternatives):
        raise ValueError(f"alternatives {alternatives} must be shares in 0..1 different from the expected {expected}")
    start = max(MIN_SAMPLE, min((int(0.9 * _normal_estimate(expected, a, false_failure_rate, miss_rate)) for a in alternatives),
                                default=MIN_SAMPLE))
    # miss rates shrink with n but not monotonically (the band moves in whole counts): scan upward
    for n in range(start, MAX_SAMPLE + 1):
        plan = split_plan(n, expected, alternatives, what=what, false_failure_rate=false_failure_rate)
        if all(miss <= miss_rate for _, miss in plan.miss_rates):
            return plan
    raise ValueError(f"no sample of at most {MAX_SAMPLE} requests tells {expected} from {alternatives} "
                     f"with false-failure rate {false_failure_rate} and miss rate {miss_rate}")


@dataclass(frozen=True)
class AllPlan:
    """A check that needs every one of ``n`` requests in one place: what it can and cannot see."""

    what: str
    n: int
    miss_rate: float

    @property
    def detectable_leak(self) -> float:
        """The smallest share of stray requests that makes one batch fail with probability >= 1 - miss_rate."""
        return 1.0 - self.miss_rate ** (1.0 / self.n)

    def describe(self) -> str:
        return (
            f"statistics: {self.n} requests, all must be {self.what}; a correct mesh never fails this "
            f"(false-failure rate 0); a mesh sending {self.detectable_leak:.1%} or more elsewhere fails a batch with "
            f"probability >= {1 - self.miss_rate:.4f}"
        )


def all_plan(n: int, *, what: str = "", miss_rate: float = DEFAULT_MISS_RATE) -> AllPlan:
    _check_rate("miss_rate", miss_rate)
    if n < 1:
        raise ValueError(f"a sample needs at least one request, got {n}")
    return AllPlan(what, n, miss_rate)
