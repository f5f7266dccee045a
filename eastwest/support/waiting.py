"""Waiting inside backends: poll a condition until it holds or a named time limit runs out.

Suites wait with ``eventually`` (consecutive successes, evidence); a backend waits for a
state (a proxy synced, a name released, a pod ready) with :func:`wait_until`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from eastwest.support.errors import MeshError

T = TypeVar("T")


class WaitTimeout(MeshError):
    """A backend state was not reached within its time limit."""


def wait_until(check: Callable[[], T | None], *, within: float, interval: float, what: str) -> T:
    """Call ``check`` every ``interval`` s until it returns something other than None/False; return it.

    Raises WaitTimeout naming ``what`` and ``within`` when it never does.
    """
    retrying = Retrying(stop=stop_after_delay(max(0.0, within)), wait=wait_fixed(interval),
                        retry=retry_if_result(lambda value: value is None or value is False),
                        retry_error_callback=lambda state: None)
    result = retrying(check)
    if result is None or result is False:
        raise WaitTimeout(f"{what}: not reached within {within:g}s")
    return result
