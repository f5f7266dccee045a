"""Kubernetes backends: kind clusters the suite builds, and the user's own clusters.

Not built yet: both refuse in their preflight, in one line, and point at the lab.
"""

from __future__ import annotations

from typing import ClassVar

from eastwest.backends import Backend, Option
from eastwest.mesh import Mesh
from eastwest.support.errors import BackendUnavailable


class _NotBuilt(Backend):
    def preflight(self) -> None:
        raise BackendUnavailable(f"--mesh {self.name}: this backend is not available in this version yet; use --mesh lab")

    def open(self) -> Mesh:
        self.preflight()
        raise AssertionError("unreachable")


class KindBackend(_NotBuilt):
    name = "kind"
    summary = "two kind clusters on separate docker networks, Istio installed with Helm"


class ExistingBackend(_NotBuilt):
    name = "existing"
    summary = "the user's own two clusters, by kube context"
    options: ClassVar[tuple[Option, ...]] = ()


BACKENDS = (KindBackend, ExistingBackend)
