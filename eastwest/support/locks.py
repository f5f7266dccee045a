"""Run-wide locks between processes that share one mesh (pytest-xdist workers, two pytest runs).

Tests that apply the same object must not run at once (one would delete it under the
other), and a test that breaks the mesh on purpose (a fault) must run alone. Locks are
``flock`` locks on files under the temporary directory, one folder per mesh identity, so
they are released by the kernel when a process dies. Several locks are always taken in
sorted order, so two tests never wait for each other.

Within one process a lock is counted, not taken twice: ``flock`` locks belong to an open
file, so a second open of the same lock file would wait for the process's own first one (a
test that runs alone holds the whole mesh exclusively, then applies manifests, which ask for
it shared). A process that holds a lock shared cannot take it exclusively without letting go.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

#: taken shared by every test that applies manifests, exclusively by a test that must run alone
WHOLE_MESH = "whole-mesh"


def _folder(identity: str) -> Path:
    path = Path(tempfile.gettempdir()) / f"eastwest-locks-{os.getuid()}" / re.sub(r"[^A-Za-z0-9_.-]", "_", identity)
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class _Held:
    fd: int
    mode: int
    count: int


_HELD: dict[Path, _Held] = {}  # this process's locks, by file
_GUARD = threading.Lock()


@contextlib.contextmanager
def held(identity: str, exclusive: Iterable[str] = (), shared: Iterable[str] = ()) -> Iterator[None]:
    """Hold the named locks of mesh ``identity`` for the block (exclusive wins where a name is in both)."""
    wanted = {name: fcntl.LOCK_SH for name in shared}
    wanted.update({name: fcntl.LOCK_EX for name in exclusive})
    folder = _folder(identity)
    taken: list[Path] = []
    try:
        for name in sorted(wanted):
            path = folder / re.sub(r"[^A-Za-z0-9_.-]", "_", name)
            _acquire(path, wanted[name], name)
            taken.append(path)
        yield
    finally:
        for path in reversed(taken):
            _release(path)


def _acquire(path: Path, mode: int, name: str) -> None:
    with _GUARD:
        mine = _HELD.get(path)
        if mine is not None:
            if mode == fcntl.LOCK_EX and mine.mode == fcntl.LOCK_SH:
                raise RuntimeError(f"lock {name!r} is held shared by this process and cannot become exclusive; "
                                   "take it exclusively first")
            mine.count += 1
            return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    with _GUARD:
        _HELD[path] = _Held(fd, mode, 1)


def _release(path: Path) -> None:
    with _GUARD:
        mine = _HELD[path]
        mine.count -= 1
        if mine.count:
            return
        del _HELD[path]
    fcntl.flock(mine.fd, fcntl.LOCK_UN)
    os.close(mine.fd)
