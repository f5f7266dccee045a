"""The backend registry: every backend is one class, in a folder of its own under here.

A backend declares its name, the options it reads (with their environment fallbacks), its
features, a preflight that says in one message everything this machine lacks, and how it
opens a mesh (start, or attach to one already running). Nothing outside a backend's own
folder names a backend: ``--mesh`` takes its choices from :func:`registry`, and the pytest
plugin and the CLI only talk to the :class:`Backend` interface.
"""

from __future__ import annotations

import abc
import argparse
import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from eastwest.support.errors import ConfigError

if TYPE_CHECKING:
    from eastwest.mesh import Mesh
    from eastwest.settings import Settings


@dataclass(frozen=True)
class Option:
    """One option a backend reads: ``--lab-name NAME`` <-> ``EASTWEST_LAB_NAME``."""

    flag: str
    dest: str
    help: str
    env: str | None = None
    kind: Literal["value", "flag", "list"] = "value"
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    aliases: tuple[str, ...] = ()

    def from_env(self, environ: dict[str, str]) -> Any:
        if self.env is None or self.env not in environ:
            return None
        raw = environ[self.env]
        if self.kind == "flag":
            return raw.lower() in ("1", "true", "yes")
        if self.kind == "list":
            return [v for v in raw.split(",") if v]
        return raw

    def check(self, value: Any) -> None:
        if self.choices is None or value is None:
            return
        for v in value if isinstance(value, list) else [value]:
            if v not in self.choices:
                raise ConfigError(f"{self.flag}: unknown value {v!r}; known: {', '.join(self.choices)}")


class Backend(abc.ABC):
    """A way to get a mesh: the embedded lab, kind clusters, the user's own clusters."""

    #: the value of ``--mesh``
    name: ClassVar[str]
    #: one line for ``--help`` and the README
    summary: ClassVar[str]
    #: the backend used when ``--mesh`` is not given (exactly one backend sets it)
    default: ClassVar[bool] = False
    #: options only this backend reads
    options: ClassVar[tuple[Option, ...]] = ()

    def __init__(self, settings: Settings):
        self.settings = settings

    @property
    def opts(self) -> dict[str, Any]:
        return dict(self.settings.backend_options)

    @abc.abstractmethod
    def preflight(self) -> None:
        """Check everything the backend needs before anything starts; raise BackendUnavailable
        (one message naming every missing piece and how to get it)."""

    def plan(self) -> str | None:
        """What ``open()`` would do, as text, when the user asked to see that instead of a run
        (``--kind-plan``): the harness prints it and stops before anything starts. None otherwise."""
        return None

    @abc.abstractmethod
    def open(self) -> Mesh:
        """Bring a mesh up, or attach to a running one, installed and ready for traffic.
        ``Mesh.close()`` later releases exactly what this started."""

    @classmethod
    def add_commands(cls, commands: argparse._SubParsersAction) -> None:
        """Add this backend's ``eastwest <name> ...`` commands (default: none)."""
        return None


@cache
def registry() -> dict[str, type[Backend]]:
    """Every backend, by name: each subpackage of ``eastwest.backends`` exports ``BACKENDS``."""
    found: dict[str, type[Backend]] = {}
    for module in pkgutil.iter_modules(__path__):
        if not module.ispkg:
            continue
        package = importlib.import_module(f"{__name__}.{module.name}")
        for backend in getattr(package, "BACKENDS", ()):
            found[backend.name] = backend
    return dict(sorted(found.items(), key=lambda kv: (not kv[1].default, kv[0])))


def default_backend() -> str:
    defaults = [name for name, b in registry().items() if b.default]
    if len(defaults) != 1:
        raise ConfigError(f"exactly one backend must be the default, found {defaults}")
    return defaults[0]


def get(name: str) -> type[Backend]:
    try:
        return registry()[name]
    except KeyError:
        raise ConfigError(f"unknown backend {name!r}; choose one of {', '.join(registry())}") from None


def option_owner(dest_or_flag: str) -> tuple[type[Backend], Option] | None:
    for backend in registry().values():
        for option in backend.options:
            if dest_or_flag in (option.flag, option.dest, *option.aliases):
                return backend, option
    return None
