"""The lab's Chaos Mesh controller: faults in place, their records and conditions, and ``duration``.

An injected fault is an :class:`Experiment`: the pods it selected (Chaos Mesh's records, one
per pod and selector: ``.`` for ``selector``, ``.Target`` for ``target``), how to undo it, and
a timer when it has a ``duration``. ``inject`` returns once every record is Injected
(``AllInjected``: rules in the kernel, processes dead, filters synced) and ``recover`` once
every record is Not Injected (``AllRecovered``), as deleting the object does. One-shot
actions (pod-kill, container-kill) have nothing to undo: recovering them only forgets them,
and the kubelet's answer to them (a replacement pod, a restarted container) runs on its own.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eastwest.backends.lab import protocol as rpc
from eastwest.backends.lab.chaos import httpfaults, podfaults, reading, spec
from eastwest.backends.lab.chaos.model import INJECTED, NOT_INJECTED, LabHost, Record
from eastwest.backends.lab.chaos.netfaults import Member, NetworkFault
from eastwest.backends.lab.chaos.select import Candidate, select
from eastwest.backends.lab.kubelet import ClusterRuntime, Pod
from eastwest.support.errors import FaultUnsupported, LabError, ManifestError
from eastwest.support.manifest import Document

log = logging.getLogger("eastwest.lab")
@dataclass
class Experiment:
    fault: spec.Fault
    cluster: str
    records: list[Record]
    undo: Callable[[], list[str]] | None = None  # None: one-shot, nothing to recover
    timer: threading.Timer | None = None
    messages: list[str] = field(default_factory=list)

    def status(self) -> rpc.ChaosStatus:
        phases = [r.phase for r in self.records]
        return rpc.ChaosStatus(
            self.fault.kind, self.fault.name, selected=bool(self.records),
            all_injected=bool(phases) and all(p == INJECTED for p in phases),
            all_recovered=all(p == NOT_INJECTED for p in phases),
            records=[rpc.ChaosRecord(r.id, r.phase, f"{'target' if r.selector_key == '.Target' else 'selector'}: {r.message}")
                     for r in self.records],
            message="; ".join(self.messages),
        )


def candidate(pod: Pod) -> Candidate:
    return Candidate(pod.namespace, pod.name, pod.net.ip, pod.service_account, dict(pod.labels), dict(pod.annotations))


class ChaosController:
    """Every fault of the lab, by (cluster, kind, name)."""

    def __init__(self, lab: LabHost, workdir: Path):
        self.lab = lab
        self.workdir = workdir
        self.experiments: dict[tuple[str, str, str], Experiment] = {}
        self.lock = threading.Lock()
        self.rng = random.Random()
        self._queues = itertools.count(100)  # nfqueue numbers, unique in the lab
        self.kubelet = podfaults.KubeletReactions(lab)

    # ---- the protocol's two operations -------------------------------------------------

    def inject(self, cluster: str, document: Document, within: float) -> rpc.ChaosStatus:
        fault = reading.parse(document.body, document.source)
        key = (cluster, fault.kind, fault.name)
        with self.lock:
            if key in self.experiments:
                raise ManifestError(f"{fault.ref}: already injected in {cluster}; a Chaos Mesh spec is immutable: recover it first")
            with self.lab.lock:
                rt = self.lab.clusters[cluster]
                pods = {f"{p.namespace}/{p.name}": p for p in rt.all_pods() if not p.deleted}
                chosen = [pods[c.ref] for c in select([candidate(p) for p in pods.values()], fault.pods, self.rng)]
                targets = [pods[c.ref] for c in select([candidate(p) for p in pods.values()], fault.target, self.rng)] if fault.target else []
            experiment = Experiment(fault, cluster, [])
            if not chosen:
                experiment.messages.append(f"no pod in {cluster} matches the selector (Chaos Mesh: cannot generate objects from empty list)")
            else:
                self._apply(experiment, rt, chosen, targets, within)
            self.experiments[key] = experiment
            if fault.duration is not None and experiment.undo is not None and experiment.status().all_injected:
                experiment.timer = threading.Timer(fault.duration, self._expire, (key,))
                experiment.timer.daemon = True
                experiment.timer.start()
            status = experiment.status()
        log.info("chaos: injected %s in %s: %s", fault.ref, cluster, status)
        return status

    def recover(self, cluster: str, kind: str, name: str, within: float) -> rpc.ChaosStatus:
        with self.lock:
            experiment = self.experiments.pop((cluster, kind, name), None)
            if experiment is None:
                return rpc.ChaosStatus(kind, name, False, False, True, message=f"no {kind} {name} in {cluster} (already recovered)")
            self._undo(experiment)
            status = experiment.status()
        log.info("chaos: recovered %s in %s: %s", experiment.fault.ref, cluster, status)
        if not status.all_recovered:
            raise LabError(f"{experiment.fault.ref}: not recovered: {status.message}")
        return status

    def shutdown(self) -> None:
        """Stop the kubelet's pending reactions, then remove every fault (the lab is going away)."""
        self.kubelet.shutdown()
        with self.lock:
            for experiment in self.experiments.values():
                try:
                    self._undo(experiment)
                except Exception:  # the rest still goes
                    log.exception("chaos: removing %s at shutdown failed", experiment.fault.ref)
            self.experiments.clear()

    # ---- inside ----------------------------------------------------------------------

    def _apply(self, experiment: Experiment, rt: ClusterRuntime, chosen: list[Pod], targets: list[Pod], within: float) -> None:
        fault = experiment.fault
        if fault.kind == "NetworkChaos":
            experiment.records = ([Record(f"{p.namespace}/{p.name}", ".") for p in chosen]
                                  + [Record(f"{p.namespace}/{p.name}", ".Target") for p in targets])
            self._check_bandwidth(experiment, chosen, targets)
            with self.lab.lock:
                members = {id(p): Member(f"{p.namespace}/{p.name}", p.net.ns, tuple(self.lab.network.legs(rt.name, p.net)))
                           for p in (*chosen, *targets)}
                net = NetworkFault(fault, [members[id(p)] for p in chosen], [members[id(p)] for p in targets],
                                   table_name(experiment.cluster, fault), lambda: next(self._queues), self.workdir)
                net.apply()
            experiment.undo = net.remove
            for record in experiment.records:
                record.phase, record.message = INJECTED, f"{fault.action} rules in place"
        elif fault.kind == "HTTPChaos":
            experiment.undo = httpfaults.inject(self.lab, rt, fault, chosen, experiment.records, within)
        else:
            experiment.undo = self.kubelet.inject(rt, fault, chosen, experiment.records, within)
            if not experiment.records:  # container-kill naming no container of the selected pods
                experiment.messages.append(f"no container named {', '.join(fault.containers)} in "
                                           f"{', '.join(f'{p.namespace}/{p.name}' for p in chosen)} (their containers: "
                                           f"{', '.join(sorted({c for p in chosen for c in p.containers}))})")

    def _check_bandwidth(self, experiment: Experiment, chosen: list[Pod], targets: list[Pod]) -> None:
        """A pod's interface takes one tbf: a second bandwidth fault on the same sender is refused by name."""
        if experiment.fault.action != "bandwidth":
            return

        def senders(fault: spec.Fault, sources: list[str], target_ids: list[str]) -> set[str]:
            return set(sources if fault.direction in ("to", "both") else []) | set(target_ids if fault.direction in ("from", "both") else [])

        mine = senders(experiment.fault, [f"{p.namespace}/{p.name}" for p in chosen], [f"{p.namespace}/{p.name}" for p in targets])
        for other in self.experiments.values():
            if other.cluster != experiment.cluster or other.fault.action != "bandwidth" or other.undo is None:
                continue
            theirs = senders(other.fault, [r.id for r in other.records if r.selector_key == "."],
                             [r.id for r in other.records if r.selector_key == ".Target"])
            if mine & theirs:
                raise FaultUnsupported(f"{experiment.fault.ref}: {', '.join(sorted(mine & theirs))} already has a bandwidth limit "
                                       f"({other.fault.ref}); the lab sets one tbf per interface, and does not merge them as Chaos Mesh does")

    def _undo(self, experiment: Experiment) -> None:
        if experiment.timer is not None:
            experiment.timer.cancel()
            experiment.timer = None
        with self.lab.lock:  # a pod's namespace must not go while its rules are removed
            problems = experiment.undo() if experiment.undo is not None else []
        experiment.undo = None
        experiment.messages += problems
        if not problems:
            for record in experiment.records:
                record.phase = NOT_INJECTED

    def _expire(self, key: tuple[str, str, str]) -> None:
        """``duration`` is over: recover, as Chaos Mesh does when desiredPhase turns Stop; the object stays."""
        with self.lock:
            experiment = self.experiments.get(key)
            if experiment is None or experiment.undo is None:
                return
            experiment.timer = None
            try:
                self._undo(experiment)
            except Exception as exc:  # a timer thread: report it in the status
                log.exception("chaos: recovering %s after its duration failed", experiment.fault.ref)
                experiment.messages.append(f"recovery after duration failed: {exc}")
        log.info("chaos: %s recovered after its duration", experiment.fault.ref)


def table_name(cluster: str, fault: spec.Fault) -> str:
    """The nf_tables table of a fault (nft names take 256 bytes; Kubernetes names 253 characters)."""
    return f"eastwest-{cluster}-{fault.kind.lower()}-{fault.namespace}-{fault.name}"[:250]
