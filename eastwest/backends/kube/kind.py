"""The kind backend: two kind clusters on their own docker networks, built, attached to and removed by name.

Lifecycle like the lab's: a run brings the clusters up, or attaches to the ones ``eastwest kind up``
(or another run, or another pytest-xdist worker) brought up. Runs that share clusters hold a
shared lock on them for as long as they use them; the bring-up holds an exclusive one, so two
processes never build at once. Clusters a run created are removed by the last run that leaves
them, unless ``--kind-keep``; clusters it found are never removed by a run. Removal touches only
what carries this project's names and labels.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from eastwest.backends.kube import plan, readiness, tools
from eastwest.backends.kube.api import ClusterApi, KubeApi
from eastwest.backends.kube.bringup import BringUp
from eastwest.backends.kube.commands import Command, Progress, Runner, Subprocess
from eastwest.backends.kube.mesh import KubeCluster, KubeMesh
from eastwest.backends.kube.render import DOCKER_LABEL, Layout
from eastwest.schemas import Schemas
from eastwest.settings import Settings
from eastwest.support.errors import BackendUnavailable, ConfigError, MeshError
from eastwest.support.topology import Topology, load_topology

DEFAULT_NAME = "eastwest"
MARKER = "delete-when-unused"  # written when a run (not `eastwest kind up`, not --kind-keep) created the clusters


def state_dir(name: str, given: str | None = None) -> Path:
    if given:
        return Path(given).expanduser().resolve()
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "eastwest" / f"kind-{name}"


def kind_topology_problems(topology: Topology) -> list[str]:
    """What the kind road needs in topology.yaml beyond what every backend needs."""
    out = [f"cluster {c.name}: needs {field}" for c in topology.clusters
           for field, value in (("nodeSubnet", c.node_subnet), ("apiServerAddress", c.api_server_address)) if value is None]
    if topology.transit_dynamic_range is None:
        out.append("needs transitDynamicRange (where docker may allocate transit addresses)")
    return out


def check_name(name: str) -> str:
    if not name or len(name) > 40 or not all(ch.isalnum() or ch == "-" for ch in name) or not name[0].isalpha() or name != name.lower():
        raise ConfigError(f"--kind-name {name!r}: use lower-case letters, digits and '-', starting with a letter, at most 40 characters")
    return name


class KindRoad:
    """Bring-up, attach, status and removal of the kind clusters of one name."""

    def __init__(self, settings: Settings, *, name: str = DEFAULT_NAME, state: str | None = None, runner: Runner | None = None,
                 api_for: Callable[[str], ClusterApi] | None = None, progress: Progress | None = None):
        self.settings = settings
        self.topology = load_topology(settings.manifests / "topology.yaml")
        self.layout = Layout(check_name(name), state_dir(name, state))
        self.ctx = plan.KindContext(self.topology, settings.manifests, self.layout, settings.timeouts)
        self.runner = runner or Subprocess()
        self.progress = progress or Progress()
        self._apis: dict[str, ClusterApi] = {}
        self._api_for = api_for
        self._users: IO[str] | None = None

    # ---- what the run needs ---------------------------------------------------------------------

    def preflight(self) -> None:
        missing = kind_topology_problems(self.topology)
        if missing:
            raise ConfigError(f"{self.topology.source}: the kind backend {'; '.join(missing)}")
        found = tools.problems(self.runner)
        if found:
            raise BackendUnavailable("--mesh kind needs tools this machine lacks:\n  - " + "\n  - ".join(found) +
                                     "\nNothing was started. Without Docker, run the suites on the embedded lab: pytest suites/ --mesh lab")

    def plan_text(self) -> str:
        return plan.format_plan(self.ctx, plan.build(self.ctx))

    def api(self, role: str) -> ClusterApi:
        if role not in self._apis:
            self._apis[role] = self._api_for(role) if self._api_for else KubeApi(self.layout.kubeconfig, self.layout.context(role))
        return self._apis[role]

    def listed(self) -> set[str]:
        done = self.runner.run(Command(("kind", "get", "clusters"), "list kind clusters"))
        return set(done.stdout.split()) if done.returncode == 0 else set()

    def clusters(self, *, chaos_mesh: bool) -> dict[str, KubeCluster]:
        schemas = Schemas()
        return {role: KubeCluster(self.topology, role, self.api(role), self.settings.timeouts,
                                  schemas=schemas if schemas.available else None, chaos_mesh=chaos_mesh) for role in self.topology.names}

    # ---- lifecycle ----------------------------------------------------------------------------

    def _lock(self, name: str, mode: int) -> IO[str]:
        self.layout.state_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.layout.state_dir / name, "a+")
        fcntl.flock(handle, mode)
        return handle

    def up(self, *, owned_by_run: bool) -> bool:
        """Bring the clusters up (or finish bringing them up); returns whether they had to be created."""
        with self._lock("bringup.lock", fcntl.LOCK_EX):
            wanted = {self.layout.cluster(r) for r in self.topology.names}
            existed = wanted <= self.listed()
            if existed and self._ready():
                self.progress.say(f"kind: attached to {', '.join(sorted(wanted))} (ready)")
                return False
            BringUp(self.ctx, self.runner, self.api, progress=self.progress, schemas=_schemas()).all()
            if owned_by_run and not existed:
                (self.layout.state_dir / MARKER).write_text("created by a run; removed by the last run that leaves it\n")
            return not existed

    def _ready(self) -> bool:
        try:
            self.runner.run(Command(("kind", "export", "kubeconfig", "--name", self.layout.cluster(self.topology.names[0]),
                                     "--kubeconfig", str(self.layout.kubeconfig)), "kubeconfig"))
            for role in self.topology.names[1:]:
                self.runner.run(Command(("kind", "export", "kubeconfig", "--name", self.layout.cluster(role),
                                         "--kubeconfig", str(self.layout.kubeconfig)), "kubeconfig"))
            return not readiness.failing(readiness.checks(self.clusters(chaos_mesh=False)))
        except MeshError:
            return False

    def open(self, *, keep: bool) -> KubeMesh:
        self.up(owned_by_run=not keep)
        self._users = self._lock("users.lock", fcntl.LOCK_SH)
        chaos_mesh = all(self.api(r).serves("chaos-mesh.org/v1alpha1", "PodChaos") for r in self.topology.names)
        return KubeMesh("kind", f"kind-{self.layout.prefix}", self.topology, self.clusters(chaos_mesh=chaos_mesh),
                        self.settings.timeouts, on_close=self.release)

    def release(self) -> None:
        """Leave the clusters; the last run to leave clusters a run created removes them."""
        if self._users is None:
            return
        fcntl.flock(self._users, fcntl.LOCK_UN)
        self._users.close()
        self._users = None
        if not (self.layout.state_dir / MARKER).exists():
            return
        handle = open(self.layout.state_dir / "users.lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.progress.say("kind: other runs still use the clusters; the last one to leave removes them")
            return
        finally:
            handle.close()
        self.down()

    def down(self) -> None:
        """Remove this name's clusters, its labelled docker networks and its state folder; nothing else."""
        with self._lock("bringup.lock", fcntl.LOCK_EX):
            listed = self.listed()
            for role in self.topology.names:
                cluster = self.layout.cluster(role)
                if cluster in listed:
                    with self.progress.step(f"deleting kind cluster {cluster}"):
                        self.runner.run(Command(("kind", "delete", "cluster", "--name", cluster), f"delete {cluster}",
                                                timeout=self.settings.timeouts.bring_up))
            for network in [*(self.layout.network(r) for r in self.topology.names), self.layout.transit_network]:
                found = self.runner.run(Command(("docker", "network", "inspect", network), "inspect network", ok_codes=(0, 1)))
                if found.returncode == 0 and (json.loads(found.stdout)[0].get("Labels") or {}).get("io.eastwest.owner") == \
                        DOCKER_LABEL.split("=")[1]:
                    self.runner.run(Command(("docker", "network", "rm", network), f"remove docker network {network}"))
        shutil.rmtree(self.layout.state_dir, ignore_errors=True)

    def status(self) -> dict[str, Any]:
        listed = self.listed()
        out: dict[str, Any] = {"state": str(self.layout.state_dir),
                               "clusters": {self.layout.cluster(r): self.layout.cluster(r) in listed for r in self.topology.names}}
        if all(out["clusters"].values()):
            self._ready()
            out["not ready"] = readiness.failing(readiness.checks(self.clusters(chaos_mesh=False)))
        return out


def _schemas() -> Schemas | None:
    schemas = Schemas()
    return schemas if schemas.available else None
