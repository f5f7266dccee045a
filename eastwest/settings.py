"""The run's configuration: one frozen Settings with its Timeouts. Plain data, no pytest.

The pytest plugin (``fixtures/options.py``) and the CLI build a Settings from options and
``EASTWEST_*`` variables; everything else only reads it. Every time limit lives in
:class:`Timeouts` and is overridden by name (``--mesh-timeout NAME=SECONDS``).
"""

from __future__ import annotations

import dataclasses
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


def parse_positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise ConfigError(f"must be at least 1, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """The run's configuration, built once from the command line and the environment."""

    #: the backend that provides the mesh (a name from the backend registry)
    backend: str
    manifests: Path = Path("manifests")
    timeouts: Timeouts = field(default_factory=Timeouts)
    #: consecutive passes a convergence wait needs.
    required_successes: int = 3
    #: requests per sample in distribution tests (locality preference, weights).
    sample_size: int = 100
    #: the chosen backend's own options, by name (each backend declares and reads its own)
    backend_options: Mapping[str, Any] = field(default_factory=dict)
