"""The one way to wait: poll until a check passes several times in a row.

Meshes are eventually consistent; a single success proves little (a proxy can flip back
while a push is still draining). ``eventually`` therefore needs ``successes`` consecutive
passes, logs each miss with the elapsed time, and on time-out raises
:class:`ConvergenceTimeout` with the last observation and why it failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from eastwest.support.errors import ConvergenceTimeout

T = TypeVar("T")

#: A check returns None when the observation is acceptable, or the reason it is not.
Check = Callable[[T], "str | None"]
#: ``eventually`` with the run's time limits bound (what the ``eventually`` fixture gives a test)
Eventually = Callable[..., Any]

log = logging.getLogger("eastwest.eventually")


def describe(observation: object) -> str:
    """Render an observation for a failure message, using its ``raw()``/``summary()`` when it has one."""
    if isinstance(observation, (list, tuple)) and observation and hasattr(observation[0], "summary"):
        return "\n".join(o.summary() for o in observation)
    for attr in ("raw", "summary"):
        fn = getattr(observation, attr, None)
        if callable(fn):
            return str(fn())
    return repr(observation)


def eventually(
    probe: Callable[[], T],
    until: Callable[[T], str | None],
    *,
    within: float,
    successes: int = 3,
    interval: float = 0.2,
    what: str = "condition",
    describe: Callable[[T], str] = describe,
    context: Callable[[], str] | None = None,
) -> T:
    """Call ``probe`` until ``until(result)`` passes ``successes`` times in a row; return the last result.

    Args:
        probe: makes one observation (for example a batch of requests).
        until: a check: None when the observation is good, else the reason it is not.
        within: seconds before giving up.
        successes: consecutive passes required.
        interval: seconds between observations.
        what: what is being waited for, for logs and the failure message.
        describe: renders the last observation for the failure message.
        context: called only on time-out, for more evidence (for example the proxy's endpoints).

    Raises:
        ConvergenceTimeout: with the last observation and the reason it failed.
    """
    __tracebackhide__ = True  # a time-out reports at the test's line; its message carries the evidence
    if successes < 1:
        raise ValueError("successes must be at least 1")
    start = time.monotonic()
    state: dict[str, object] = {
        "streak": 0, "attempts": 0, "last": None, "reason": "never observed", "last_failure": None,
    }

    def attempt() -> bool:
        observation = probe()
        reason = until(observation)
        state["attempts"] = int(state["attempts"]) + 1  # type: ignore[call-overload]
        state["last"], state["reason"] = observation, reason
        elapsed = time.monotonic() - start
        if reason is None:
            state["streak"] = int(state["streak"]) + 1  # type: ignore[call-overload]
            log.debug("%s: pass %s/%s after %.2fs", what, state["streak"], successes, elapsed)
        else:
            state["streak"] = 0
            state["last_failure"] = reason
            log.info("%s: not yet after %.2fs: %s", what, elapsed, reason)
        return int(state["streak"]) >= successes  # type: ignore[call-overload]

    retrying = Retrying(
        stop=stop_after_delay(within),
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda done: not done),
        retry_error_callback=lambda _state: False,
        reraise=True,
    )
    converged = retrying(attempt)
    elapsed = time.monotonic() - start
    if not converged:
        reason = state["reason"]
        if reason is None:  # the last observation passed, but the streak was too short: say what failed
            reason = (
                f"only {state['streak']} pass(es) in a row at the end; "
                f"last failure: {state['last_failure'] or 'none observed'}"
            )
        extra = ""
        if context is not None:
            try:
                extra = f"\n{context()}"
            except Exception as exc:  # evidence is best effort: never hide the real failure
                extra = f"\n(could not collect more evidence: {exc})"
        raise ConvergenceTimeout(
            f"{what}: not converged within {within:g}s ({state['attempts']} attempts, "
            f"needed {successes} passes in a row): {reason}{extra}\n"
            f"last observation:\n{describe(state['last'])}",  # type: ignore[arg-type]
            last=state["last"],
            attempts=int(state["attempts"]),  # type: ignore[call-overload]
            elapsed=elapsed,
        )
    log.info("%s: converged after %.2fs (%s attempts)", what, elapsed, state["attempts"])
    return state["last"]  # type: ignore[return-value]
