"""Run-wide locks between processes that share one mesh (pytest-xdist workers, two pytest runs).

Tests that apply the same object must not run at once (one would delete it under the
other), and a test that breaks the mesh on purpose (a fault) must run alone. Locks are
``flock`` locks on files under the temporary directory, one folder per mesh identity, so
they are released by the kernel when a process dies. Several locks are always taken in
sorted order, so two tests never wait for each other.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

#: taken shared by every test that applies manifests, exclusively by a test that must run alone
WHOLE_MESH = "whole-mesh"


def _folder(identity: str) -> Path:
    path = Path(tempfile.gettempdir()) / f"eastwest-locks-{os.getuid()}" / re.sub(r"[^A-Za-z0-9_.-]", "_", identity)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def held(identity: str, exclusive: Iterable[str] = (), shared: Iterable[str] = ()) -> Iterator[None]:
    """Hold the named locks of mesh ``identity`` for the block (exclusive wins where a name is in both)."""
    wanted = {name: fcntl.LOCK_SH for name in shared}
    wanted.update({name: fcntl.LOCK_EX for name in exclusive})
    folder = _folder(identity)
    fds: list[int] = []
    try:
        for name in sorted(wanted):
            fd = os.open(folder / re.sub(r"[^A-Za-z0-9_.-]", "_", name), os.O_RDWR | os.O_CREAT, 0o600)
            fds.append(fd)
            fcntl.flock(fd, wanted[name])
        yield
    finally:
        for fd in reversed(fds):
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
