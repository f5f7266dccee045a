"""The lab leaves nothing behind: not after a clean stop, not after kill -9 of its owner."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from eastwest.backends.lab.launcher import explain
from eastwest.support import install
from tests.labs import MANIFESTS, running_lab

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="the lab needs unshare (util-linux)")

HOLDER = """
import sys, time
from pathlib import Path
from eastwest.backends.lab.mesh import LabMesh
mesh = LabMesh(Path(sys.argv[1]))
mesh.install()
print("READY", flush=True)
time.sleep(120)
"""


def _procs() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, comm) for every process on the machine."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            out[int(entry)] = (int(fields[1]), comm)
    return out


def _descendants(root: int) -> dict[int, str]:
    procs = _procs()
    found, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, comm) in procs.items():
            if ppid == parent and pid not in found:
                found[pid] = comm
                frontier.append(pid)
    return found


def _netns_of(pid: int | str) -> set[str]:
    """The network namespace a process is in, and those it holds open by fd."""
    seen = set()
    try:
        seen.add(os.readlink(f"/proc/{pid}/ns/net"))
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("net:["):
                seen.add(target)
    except OSError:
        pass
    return seen


def _started(pid: int | str) -> int:
    """When a process started, in clock ticks since boot (field 22 of /proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def _now_ticks() -> int:
    return int(float(Path("/proc/uptime").read_text().split()[0]) * os.sysconf("SC_CLK_TCK")) + 1


def _netns_in_use(started_before: int | None = None) -> set[str]:
    """Every network namespace a process is in or holds an fd to; with ``started_before``, only
    processes older than that (namespace ids are reused, so a newer lab's namespace may carry an old id)."""
    held: set[str] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if started_before is not None and _started(entry) >= started_before:
                continue
        except OSError:
            continue
        held |= _netns_of(entry)
    return held


def _mounts() -> set[str]:
    return {" ".join(line.split()[3:5]) for line in Path("/proc/self/mountinfo").read_text().splitlines()}


def test_kill_9_of_the_owner_leaves_no_process_namespace_or_mount() -> None:
    mounts_before = _mounts()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(ROOT / "manifests")], cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "READY"
        lab = _descendants(holder.pid)
        comms = sorted(lab.values())
        assert comms.count("envoy") >= 6, f"expected the lab's Envoy proxies under the session; found {comms}"
        assert any(c.startswith("python") for pid, c in lab.items() if pid != holder.pid), f"no echo process found: {comms}"
        lab_netns = set().union(*(_netns_of(pid) for pid in lab)) - _netns_of(holder.pid)
        assert len(lab_netns) >= 8, f"expected the lab's pod namespaces; found {lab_netns}"
    finally:
        killed_at = _now_ticks()
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = {pid: comm for pid, comm in lab.items() if pid in _procs()}
        if not alive:
            break
        time.sleep(0.1)
    assert not alive, f"lab processes outlived kill -9 of their owner: {alive}"
    leaked = lab_netns & _netns_in_use(started_before=killed_at)
    assert not leaked, f"network namespaces of the lab still exist: {leaked}"
    assert _mounts() <= mounts_before, f"new mounts after the lab: {_mounts() - mounts_before}"
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.strip()
    assert "eastwest" not in listed and "us" not in listed.split(), f"named namespaces left: {listed}"


#: every process a self-test's subprocess starts inherits this variable, so a leak check can
#: count only what that subprocess left behind, not another lab running on the same machine
RUN_TAG = "EASTWEST_SELFTEST_RUN"


def _tagged(tag: str) -> dict[int, str]:
    """Live processes (pid -> command) whose environment carries ``RUN_TAG=tag``."""
    needle = f"{RUN_TAG}={tag}".encode()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if needle in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                found[int(entry)] = Path(f"/proc/{entry}/comm").read_text().strip()
        except OSError:
            continue
    return found


def _leftovers(tag: str, within: float = 5.0) -> dict[int, str]:
    """What the tagged run left running (a lab's namespaces live only as long as its processes)."""
    deadline = time.monotonic() + within
    while (alive := _tagged(tag)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def _pytest(*args: str, tag: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **({RUN_TAG: tag} if tag else {}))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--mesh", "minikube"], "argument --mesh: invalid choice: 'minikube'"),
        (["--mesh", "existing"], "--mesh existing needs the kube context of every cluster"),
        (["--mesh-timeout", "convergance=5"], "expected NAME=SECONDS with NAME one of apply, convergence"),
        (["--sample-size", "0"], "must be at least 1"),
        (["--manifests", "/nonexistent"], "no topology.yaml there"),
        (["--lab-envoy", "/nonexistent/envoy"], "Envoy binary /nonexistent/envoy is missing or not executable"),
        (["--lab-name", "no-such-lab"], "no lab named 'no-such-lab' is running"),
    ],
    ids=["unknown-backend", "existing-without-contexts", "bad-timeout", "bad-sample-size", "no-manifests", "no-envoy", "no-lab"],
)
def test_bad_input_gets_one_clear_line_and_no_traceback(args: list[str], message: str) -> None:
    tag = uuid.uuid4().hex
    result = _pytest("suites/topology/test_mesh_identity.py", *args, tag=tag)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert message in output, output
    assert "Traceback" not in output, output
    assert not _leftovers(tag), f"a failed start left processes (and their namespaces) behind: {_leftovers(tag)}"


def test_the_leak_check_sees_what_a_run_leaves() -> None:
    """The check above can fail: a process a tagged run leaves behind is found, and only that one."""
    tag = uuid.uuid4().hex
    straggler = subprocess.Popen(["sleep", "30"], env=dict(os.environ, **{RUN_TAG: tag}))
    bystander = subprocess.Popen(["sleep", "30"], env=dict(os.environ, **{RUN_TAG: "someone-else"}))
    try:
        assert _tagged(tag) == {straggler.pid: "sleep"}
    finally:
        straggler.kill()
        bystander.kill()
        straggler.wait()
        bystander.wait()
    assert not _leftovers(tag)


def test_leak_checks_pass_while_another_lab_runs_beside() -> None:
    """Another lab creating and removing pods (namespaces, processes) on the same machine is not our leak."""
    stop = threading.Event()
    with running_lab() as other:
        us = other.cluster("us")
        docs = install.documents(MANIFESTS, other.topology, "us", ["suites/security/client-without-sidecar.yaml"])

        def churn() -> None:
            while not stop.is_set():
                us.apply(docs)
                us.delete(docs)

        worker = threading.Thread(target=churn, daemon=True)
        worker.start()
        try:
            tag = uuid.uuid4().hex
            result = _pytest("suites/topology/test_mesh_identity.py", "--lab-name", "no-such-lab", tag=tag)
            assert result.returncode != 0 and "no lab named" in result.stdout + result.stderr
            assert not _leftovers(tag)
        finally:
            stop.set()
            worker.join(30)


def test_invalid_topology_is_one_line(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "manifests", tmp_path / "m")
    topo = tmp_path / "m" / "topology.yaml"
    topo.write_text(topo.read_text().replace("podSubnet: 10.20.0.0/16", "podSubnet: 10.10.0.0/16"))
    result = _pytest("suites/topology/test_mesh_identity.py", "--manifests", str(tmp_path / "m"))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "subnets 10.10.0.0/16 and 10.10.0.0/16 overlap" in output, output
    assert "Traceback" not in output, output


def test_cli_down_of_a_missing_lab_is_one_line() -> None:
    result = subprocess.run([sys.executable, "-m", "eastwest.cli", "lab", "down", "--name", "nope"], cwd=ROOT,
                            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 2
    assert result.stderr.strip() == "eastwest: no lab named 'nope' is running (start one with: eastwest lab up --name nope)"


def test_cli_up_call_down(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    name = f"selftest-{os.getpid()}"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "eastwest.cli", "lab", *args, "--name", name], cwd=ROOT,
                              capture_output=True, text=True, env=env, timeout=60)

    up = cli("up")
    try:
        assert up.returncode == 0, up.stderr
        assert "up in" in up.stdout
        call = cli("call", "--from", "us/sleep/sleep", "http://echo.echo.svc.cluster.local/", "-n", "4")
        assert call.returncode == 0, call.stdout + call.stderr
        assert "cluster=us" in call.stdout and "cluster=eu" in call.stdout, call.stdout
    finally:
        down = cli("down")
    assert down.returncode == 0, down.stderr
    again = cli("status")
    assert again.returncode == 2 and "no lab named" in again.stderr


def test_cli_down_returns_only_when_the_same_name_can_start_again() -> None:
    """`lab down` followed at once by `lab up` of the same name works, every time."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    name = f"selftest-reuse-{os.getpid()}"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "eastwest.cli", "lab", *args, "--name", name], cwd=ROOT,
                              capture_output=True, text=True, env=env, timeout=60)

    for round_ in range(3):
        up = cli("up")
        down = cli("down")
        assert up.returncode == 0, f"round {round_}: {up.stdout}{up.stderr}"
        assert down.returncode == 0, f"round {round_}: {down.stdout}{down.stderr}"


def test_unshare_failures_are_explained_in_one_line() -> None:
    """Real unshare errors, produced in a user namespace whose limit is zero, become one actionable line."""
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "sh", "-c",
         "echo 0 > /proc/sys/user/max_user_namespaces && unshare --user --map-root-user --net true"],
        capture_output=True, text=True,
    )
    if probe.returncode == 0 or "unshare failed" not in probe.stderr:
        pytest.skip(f"cannot produce a user-namespace failure here: {probe.stderr.strip() or 'it succeeded'}")
    line = explain(probe.stderr, unprivileged=True)
    assert "\n" not in line and "user.max_user_namespaces" in line, line
    denied = "unshare: unshare failed: Operation not permitted\n"
    assert "enable user namespaces" in explain(denied, unprivileged=True)
    assert "CAP_SYS_ADMIN" in explain(denied, unprivileged=False)
