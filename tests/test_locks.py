"""Self-tests of eastwest/support/locks.py: run-wide locks between processes, counted within one."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import pytest

from eastwest.support import locks

PROBE = textwrap.dedent("""
    import fcntl, os, sys
    from eastwest.support import locks
    fd = os.open(locks._folder(sys.argv[1]) / sys.argv[2], os.O_RDWR | os.O_CREAT, 0o600)
    mode = fcntl.LOCK_EX if sys.argv[3] == "exclusive" else fcntl.LOCK_SH
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        print("busy")
    else:
        print("free")
""")


def other_process_can_take(identity: str, name: str, mode: str) -> bool:
    out = subprocess.run([sys.executable, "-c", PROBE, identity, name, mode], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip() == "free"


def test_an_exclusive_lock_keeps_other_processes_out_and_takes_nested_shared_requests() -> None:
    identity = f"selftest-{uuid.uuid4().hex[:8]}"
    with locks.held(identity, exclusive=[locks.WHOLE_MESH]):
        assert not other_process_can_take(identity, locks.WHOLE_MESH, "shared")
        # a test running alone applies manifests, which ask for the whole mesh shared: no self-deadlock
        with locks.held(identity, shared=[locks.WHOLE_MESH], exclusive=["us.DestinationRule.echo.x"]):
            assert not other_process_can_take(identity, "us.DestinationRule.echo.x", "shared")
        assert not other_process_can_take(identity, locks.WHOLE_MESH, "shared")  # still held by the outer block
    assert other_process_can_take(identity, locks.WHOLE_MESH, "exclusive")


def test_shared_holders_coexist_and_exclude_an_exclusive_one() -> None:
    identity = f"selftest-{uuid.uuid4().hex[:8]}"
    with locks.held(identity, shared=[locks.WHOLE_MESH]):
        assert other_process_can_take(identity, locks.WHOLE_MESH, "shared")
        assert not other_process_can_take(identity, locks.WHOLE_MESH, "exclusive")
        with pytest.raises(RuntimeError, match="held shared by this process and cannot become exclusive"):
            with locks.held(identity, exclusive=[locks.WHOLE_MESH]):
                pass
        assert not other_process_can_take(identity, locks.WHOLE_MESH, "exclusive")  # the failed upgrade kept the shared hold
    assert other_process_can_take(identity, locks.WHOLE_MESH, "exclusive")
