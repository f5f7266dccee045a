"""A running lab for self-tests: started, installed, and always torn down."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from eastwest.backends.lab.mesh import LabMesh
from eastwest.support import install

MANIFESTS = Path(__file__).resolve().parents[1] / "manifests"


@contextlib.contextmanager
def running_lab(*suite_manifests: str) -> Iterator[LabMesh]:
    """A lab with the base install plus ``suite_manifests`` (paths under manifests/suites/) in every cluster."""
    mesh = LabMesh(MANIFESTS)
    try:
        mesh.install()
        paths = [f"suites/{p}" for p in suite_manifests]
        for name in mesh.topology.names if paths else ():
            mesh.cluster(name).apply(install.documents(MANIFESTS, mesh.topology, name, paths))
        yield mesh
    finally:
        mesh.close()
