"""Starting the lab supervisor in namespaces of its own, and talking to it.

The launcher binds an abstract Unix socket (``@eastwest-lab-<uid>-<name>``: no file, gone
with its last holder, and a second lab of the same name is refused by the kernel), then
starts ``unshare --pid --fork --kill-child --mount --net [--user --map-root-user]`` with the
supervisor under it and hands it the socket. For a test session the ``unshare`` process
gets PR_SET_PDEATHSIG=SIGKILL, so a ``kill -9`` of pytest kills it, which kills the
supervisor (``--kill-child``), which as PID 1 takes the whole lab with it.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from eastwest.backends.lab import protocol as rpc
from eastwest.backends.lab import wire
from eastwest.backends.lab.proxies import envoy_binary
from eastwest.support.errors import BackendUnavailable, ConfigError, LabError
from eastwest.support.waiting import WaitTimeout, wait_until

PR_SET_PDEATHSIG = 1


def socket_name(name: str) -> str:
    return f"\0eastwest-lab-{os.getuid()}-{name}"


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _new_session() -> None:
    os.setsid()


def connect(name: str, timeout: float | None = None) -> wire.Connection:
    """A connection to the running supervisor of lab ``name``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(socket_name(name))
    except (ConnectionRefusedError, FileNotFoundError):
        sock.close()
        raise ConfigError(f"no lab named {name!r} is running (start one with: eastwest lab up --name {name})") from None
    sock.settimeout(timeout)
    return wire.Connection(sock, name)


def name_taken(name: str) -> bool:
    """Whether a process still holds the lab's socket name (a supervisor, or its unshare parent)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.bind(socket_name(name))
        return False
    except OSError:
        return True
    finally:
        probe.close()


def wait_closed(conn: wire.Connection, within: float) -> None:
    """Wait until the supervisor has exited and its name is free, so the same name can start again.

    The supervisor's end of the connection closes when it exits; the name is free only once
    its ``unshare`` parent, which inherited the listening socket, has exited too.
    """
    deadline = time.monotonic() + within
    conn.sock.settimeout(within)
    try:
        while conn.sock.recv(4096):
            pass
    except OSError:
        pass
    try:
        wait_until(lambda: not name_taken(conn.name), within=deadline - time.monotonic(), interval=0.02,
                   what=f"lab {conn.name!r} releasing its name after shutdown")
    except WaitTimeout as exc:
        raise LabError(str(exc)) from None


def preflight(envoy: str | None = None) -> list[str]:
    """Check what the lab needs before starting anything; returns the unshare argv."""
    if shutil.which("unshare") is None:
        raise BackendUnavailable("the lab needs 'unshare' from util-linux (apt-get install util-linux)")
    envoy_binary(envoy)
    argv = ["unshare", "--pid", "--fork", "--kill-child", "--mount", "--mount-proc", "--net"]
    if os.geteuid() != 0:
        argv += ["--user", "--map-root-user"]
    return argv


def explain(stderr: str, unprivileged: bool | None = None) -> str:
    """Turn a failed supervisor's stderr into one line that says how to fix it."""
    unprivileged = os.geteuid() != 0 if unprivileged is None else unprivileged
    text = stderr.strip().splitlines()
    last = text[-1] if text else "no output"
    if "unshare failed: No space left on device" in stderr:
        return ("cannot create a user namespace: the limit is reached or zero "
                "(raise it with sysctl user.max_user_namespaces=10000, or run as root)")
    if "Operation not permitted" in stderr or "Permission denied" in stderr and "unshare" in stderr:
        if unprivileged:
            return ("cannot create namespaces as an unprivileged user: enable user namespaces "
                    "(sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces>0) or run as root")
        return "cannot create namespaces (are you in a container without CAP_SYS_ADMIN?): " + last
    return last.removeprefix("lab: ")


def launch(topology: Path, *, within: float, name: str | None = None, detach: bool = False,
           breaks: frozenset[str] = frozenset(), envoy: str | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    """Start a supervisor; returns its name once it answers. Raises a one-line error on failure."""
    argv = preflight(envoy)
    name = name or f"session-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(socket_name(name))
    except OSError:
        listener.close()
        raise ConfigError(f"a lab named {name!r} is already running (stop it with: eastwest lab down --name {name})") from None
    listener.listen(16)
    root = Path(__file__).resolve().parents[3]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH", "")])))
    cmd = [*argv, sys.executable, "-m", "eastwest.backends.lab.supervisor", "--fd", str(listener.fileno()),
           "--topology", str(topology.resolve())]
    for item in sorted(breaks):
        cmd += ["--break", item]
    if envoy:
        cmd += ["--envoy", envoy]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        pass_fds=(listener.fileno(),), preexec_fn=_new_session if detach else _die_with_parent, cwd=str(root),
    )
    listener.close()  # the supervisor holds it now
    deadline = time.monotonic() + within
    try:
        conn = connect(name, timeout=within)
    except ConfigError:
        proc.kill()
        raise
    try:
        while True:
            try:
                conn.request(rpc.Status())
                break
            except LabError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
    except LabError:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise LabError(f"the lab did not start: {explain(stderr)}") from None
    finally:
        conn.close()
    if proc.stderr:
        proc.stderr.close()
    return name, proc
