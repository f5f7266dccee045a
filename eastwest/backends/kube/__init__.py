"""Kubernetes backends: kind clusters this project builds, and the user's own clusters.

Both share one implementation of the mesh interface (``mesh.py``: the official ``kubernetes``
client, one ApiClient per cluster, exec into pods, the sidecar's admin API, Chaos Mesh and Istio
faults) and one readiness gate (``readiness.py``). Files by role:

- ``pins.py``: every pinned version (kind, node image, charts, images, tools) and its source;
- ``render.py``: every object they create, as pure functions of the topology and ``manifests/``;
- ``plan.py``: the kind bring-up as ordered steps (``eastwest kind plan``); ``bringup.py`` runs them;
- ``commands.py``: external commands and progress; ``tools.py``: the tools preflight;
- ``api.py``: the API server seam; ``traffic.py``: exec scripts (curl loops, probes, load) and parsers;
- ``chaos.py``: faults; ``readiness.py``: the gate; ``kind.py``, ``existing.py``: the two lifecycles;
- ``cli.py``: ``eastwest kind up|status|down|plan`` and ``eastwest existing check|echo-context``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, ClassVar

from eastwest.backends import Backend, Option
from eastwest.mesh import Mesh

if TYPE_CHECKING:
    from eastwest.backends.kube.existing import ExistingMesh
    from eastwest.backends.kube.kind import KindRoad


class KindBackend(Backend):
    """Two kind clusters on separate docker networks, Istio installed with Helm."""

    name = "kind"
    summary = "two kind clusters on separate docker networks, Istio installed with Helm (needs Docker)"
    options: ClassVar[tuple[Option, ...]] = (
        Option("--kind-name", "name", "Name of the clusters and docker networks (default eastwest); a run attaches to them when they "
               "are up", env="EASTWEST_KIND_NAME", metavar="NAME"),
        Option("--kind-keep", "keep", "Leave clusters this run creates up afterwards (remove them with 'eastwest kind down')",
               env="EASTWEST_KIND_KEEP", kind="flag"),
        Option("--kind-plan", "plan", "Print the bring-up plan (every command and object, in order) and exit; starts nothing",
               env="EASTWEST_KIND_PLAN", kind="flag"),
        Option("--kind-state", "state", "Folder for the kubeconfig, kind configs and Helm values (default "
               "$XDG_STATE_HOME/eastwest/kind-NAME)", env="EASTWEST_KIND_STATE", metavar="DIR"),
    )

    def _road(self) -> KindRoad:
        from eastwest.backends.kube.kind import DEFAULT_NAME, KindRoad

        return KindRoad(self.settings, name=self.opts.get("name") or DEFAULT_NAME, state=self.opts.get("state"))

    def plan(self) -> str | None:
        return self._road().plan_text() if self.opts.get("plan") else None

    def preflight(self) -> None:
        self._road().preflight()

    def open(self) -> Mesh:
        return self._road().open(keep=bool(self.opts.get("keep")))

    @classmethod
    def add_commands(cls, commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        from eastwest.backends.kube.cli import add_kind_commands

        add_kind_commands(commands)


class ExistingBackend(Backend):
    """The user's own two clusters, by kube context; nothing of Istio is installed."""

    name = "existing"
    summary = "the user's own two clusters with Istio multi-network, by kube context"
    options: ClassVar[tuple[Option, ...]] = (
        Option("--context-us", "context_us", "Kube context of the US cluster", env="EASTWEST_CONTEXT_US", metavar="CTX"),
        Option("--context-eu", "context_eu", "Kube context of the EU cluster", env="EASTWEST_CONTEXT_EU", metavar="CTX"),
        Option("--existing-kubeconfig", "kubeconfig", "Kubeconfig holding both contexts (default: KUBECONFIG or ~/.kube/config)",
               env="EASTWEST_KUBECONFIG", metavar="PATH"),
        Option("--existing-echo-image", "echo_image", "The echo image as your clusters pull it (build it with "
               "'eastwest existing echo-context | docker build -t IMAGE -' and push it)", env="EASTWEST_ECHO_IMAGE", metavar="IMAGE"),
    )

    def _mesh(self) -> ExistingMesh:
        from eastwest.backends.kube.existing import ExistingMesh

        return ExistingMesh(self.settings, {"us": self.opts.get("context_us"), "eu": self.opts.get("context_eu")},
                            kubeconfig=self.opts.get("kubeconfig"), echo_image=self.opts.get("echo_image"))

    _checked: ExistingMesh | None = None

    def preflight(self) -> None:
        self._checked = self._mesh()
        for note in self._checked.preflight():
            print(f"eastwest: {note}")

    def open(self) -> Mesh:
        checked = self._checked or self._mesh()
        if not checked.chaos_mesh:
            checked.preflight()
        return checked.open()

    @classmethod
    def add_commands(cls, commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        from eastwest.backends.kube.cli import add_existing_commands

        add_existing_commands(commands)


BACKENDS = (KindBackend, ExistingBackend)
