"""PodChaos in the lab, and the kubelet's and ReplicaSet's answer to it.

- **pod-kill** (``podkill/impl.go``: the pod is deleted with ``gracePeriod``): the pod leaves its
  ReplicaSet at once and is no longer an endpoint (a Terminating pod is not Ready); its
  processes get SIGKILL (gracePeriod 0) or SIGTERM and SIGKILL after the grace period, then
  its namespace goes. After ``REPLACEMENT_DELAY`` the ReplicaSet's replacement starts: a new
  name, a new IP, published only once ready (sidecar synced, app healthy). An east-west
  gateway's namespace stays until its replacement takes the external address, so that address
  refuses connections meanwhile, as kube-proxy rejects a Service without endpoints.
- **pod-failure** (``podfailure/impl.go``: every image becomes the pause image for
  ``duration``): the processes die, the namespace and IP stay; the pod turns NotReady when the
  kubelet notices (``NOT_READY_LAG``) and its endpoint goes; on recovery the processes start
  again and the endpoint returns once the pod is ready.
- **container-kill** (the container runtime's SIGKILL): the container dies; the kubelet notices
  after ``RESTART_BACKOFF``, the pod turns NotReady and the container restarts (a first restart
  is not in CrashLoopBackOff); the pod is published again once ready.

AllInjected means "deleted / killed", as in Chaos Mesh: the replacement and the restarts come
after, on their own; ``PodStatus.ready`` shows when.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from eastwest.backends.lab.chaos.model import INJECTED, LabHost, Record
from eastwest.backends.lab.chaos.spec import Fault
from eastwest.backends.lab.kubelet import ClusterRuntime, Kubelet, Pod
from eastwest.support.errors import FaultUnsupported

log = logging.getLogger("eastwest.lab")

#: from deletion to the replacement's containers starting: ReplicaSet controller, scheduler and pod
#: sandbox, with images already present (about a second on kind [inferred]); the lab's own start follows
REPLACEMENT_DELAY = 1.0
#: the kubelet sees a container die at its next PLEG relist (every 1 s, pkg/kubelet/kubelet.go
#: plegRelistPeriod); until then the pod still reports Ready and stays an endpoint
NOT_READY_LAG = 1.0
#: a killed container is restarted when the kubelet notices; a first restart is not in CrashLoopBackOff
#: (the 10 s back-off starts with the second, kuberuntime_manager.go doBackOff) [inferred]
RESTART_BACKOFF = 1.0
#: a restarted or replacement pod becoming ready (the same bound as Timeouts.apply's default)
START_WITHIN = 30.0


class KubeletReactions:
    """PodChaos actions and what the kubelet and ReplicaSet do after them, on timers."""

    def __init__(self, lab: LabHost):
        self.lab = lab
        self.timers: set[threading.Timer] = set()
        self.stopping = threading.Event()
        self._lock = threading.Lock()

    def later(self, delay: float, what: str, fn: Callable[..., None], *args: Any) -> threading.Timer:
        def run() -> None:
            with self._lock:
                self.timers.discard(timer)
            if self.stopping.is_set():
                return
            try:
                fn(*args)
            except Exception:  # a timer thread: the supervisor log keeps it
                log.exception("kubelet: %s failed", what)

        timer = threading.Timer(delay, run)
        timer.daemon = True
        with self._lock:
            self.timers.add(timer)
        timer.start()
        return timer

    def shutdown(self) -> None:
        self.stopping.set()
        with self._lock:
            for timer in self.timers:
                timer.cancel()
            self.timers.clear()

    def inject(self, rt: ClusterRuntime, fault: Fault, pods: list[Pod], records: list[Record],
               within: float) -> Callable[[], list[str]] | None:
        if fault.action == "pod-kill":
            for pod in pods:
                self._delete(rt, pod, fault.grace_period)
                records.append(Record(f"{pod.namespace}/{pod.name}", ".", INJECTED, f"deleted (grace period {fault.grace_period} s)"))
            self.lab.publish(within)
            replace_after = max([REPLACEMENT_DELAY] + [fault.grace_period for p in pods if p.gateway])
            self.later(replace_after, "replacing deleted pods", self.lab.reconcile, START_WITHIN)
            return None
        if fault.action == "container-kill":
            chosen = {id(p): [c for c in fault.containers if c in p.containers] for p in pods}
            for pod in pods:
                for name in chosen[id(pod)]:
                    if pod.process(name) is None:
                        raise FaultUnsupported(f"{fault.ref}: container {name} of {pod.namespace}/{pod.name} runs no process "
                                               f"in the lab (the lab sends a client container's requests itself)")
            for pod in pods:
                with self.lab.lock:
                    Kubelet.kill(pod, chosen[id(pod)])
                for name in chosen[id(pod)]:
                    records.append(Record(f"{pod.namespace}/{pod.name}/{name}", ".", INJECTED, "killed (SIGKILL)"))
                if chosen[id(pod)]:
                    self.later(RESTART_BACKOFF, f"restarting {pod.ref} {chosen[id(pod)]}", self._restart, pod, chosen[id(pod)])
            return None
        # pod-failure
        withdrawals = []
        for pod in pods:
            with self.lab.lock:
                Kubelet.kill(pod, pod.containers)
            records.append(Record(f"{pod.namespace}/{pod.name}", ".", INJECTED, "containers stopped (pause image)"))
            withdrawals.append(self.later(NOT_READY_LAG, f"{pod.ref} not ready", self._not_ready, pod))

        def undo() -> list[str]:
            for timer in withdrawals:
                timer.cancel()
            for pod in pods:
                if pod.deleted:
                    continue
                names = sorted(pod.down)
                with self.lab.lock:
                    Kubelet.restart(pod, names, self.lab.envoy)
                self.later(0, f"{pod.ref} ready again", self._ready_again, pod, names)
            return []

        return undo

    # ---- the kubelet's side ------------------------------------------------------------

    def _delete(self, rt: ClusterRuntime, pod: Pod, grace: int) -> None:
        sig = signal.SIGKILL if grace == 0 else signal.SIGTERM
        with self.lab.lock:
            if pod is rt.gateway:
                pod.deleted, pod.ready = True, False
            else:
                slot = next(k for k, p in rt.pods.items() if p is pod)
                self.lab.kubelet.evict(rt, slot)
            Kubelet.kill(pod, pod.containers, sig)
        if grace:
            self.later(grace, f"{pod.ref} grace period over", self._finish, rt, pod)
        else:
            self._finish(rt, pod)

    def _finish(self, rt: ClusterRuntime, pod: Pod) -> None:
        """SIGKILL what is left; a pod's namespace goes (a gateway's waits for its replacement)."""
        with self.lab.lock:
            Kubelet.kill(pod, pod.containers)
            if pod is not rt.gateway:
                self.lab.network.remove_pod(rt.name, pod.net)

    def _not_ready(self, pod: Pod) -> None:
        with self.lab.lock:
            if pod.deleted or not pod.down or not pod.ready:
                return
            pod.ready = False
            self.lab.publish(START_WITHIN)

    def _restart(self, pod: Pod, names: list[str]) -> None:
        with self.lab.lock:
            if pod.deleted:
                return
            if pod.ready:
                pod.ready = False
                self.lab.publish(START_WITHIN)
            Kubelet.restart(pod, names, self.lab.envoy)
        self._ready_again(pod, names)

    def _ready_again(self, pod: Pod, names: list[str]) -> None:
        Kubelet.wait_started(pod, names, START_WITHIN)
        with self.lab.lock:
            if pod.deleted or pod.down or pod.ready:
                return
            pod.ready = True
            self.lab.publish(START_WITHIN)
        log.info("kubelet: %s ready again after %s restarted", pod.ref, ", ".join(names))
