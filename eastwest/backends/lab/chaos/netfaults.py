"""NetworkChaos in the lab: where each action's rules go, put in place and taken away as a whole.

Chaos Mesh (``controllers/chaosimpl/networkchaos``) acts in the pods' namespaces, on eth0:

- **partition**: iptables DROP in OUTPUT and INPUT (``partition/impl.go`` SetDrop). For the
  selected pods: ``to``/``both`` drop what they send to the target set (target pods' IPs plus
  ``externalTargets``), ``from``/``both`` what they receive from it; for the target pods the
  mirror image with the selected pods' IPs; an empty set means everything. The lab puts the
  same drops in the same hooks (nf_tables ``output``/``input``), on every interface but ``lo``.
- **delay, loss, duplicate, corrupt, bandwidth**: egress qdiscs (``trafficcontrol/impl.go``):
  on the selected pods for ``to``/``both``, towards the target set (or everything), and on the
  target pods for ``from``/``both``, towards the selected pods. The lab shapes the same packets:
  * delay, loss and corrupt act where the packets first arrive, in the namespace holding the
    pod's bridge port (``Leg.bridge_ns``, ip ``prerouting``, which sees bridged packets too
    through br_netfilter), matched on the pod's source address. A drop there is silent to the
    sender, like netem's; and a packet held for a delay there has left the sending socket, so
    TCP Small Queues does not throttle a bulk sender (held in the sender's own OUTPUT hook it
    would: 0.5 MB/s at 10 ms, against 200 MB/s here, chaos-failover.md §2.2). Delay is an
    NFQUEUE rule with a delayer process (``delayer.py``) per namespace.
  * **corrupt is a drop**: netem checksums the packet before flipping a bit, so the receiver
    discards it and TCP retransmits; bytes rewritten by nf_tables on a veth are delivered to
    the application as they are (checksum offload, CHECKSUM_PARTIAL: measured, 6011 of 20000
    corrupted UDP datagrams arrived). A random drop has netem-corrupt's observable effect.
  * duplicate acts in the pod, on each interface's egress (netdev family): a copy leaves with
    a mark, and the mark keeps the copy from being copied again when it passes the hook.
  * bandwidth is a tbf on each interface's egress in the pod (``qdisc.py``).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import select
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from eastwest.backends.lab.chaos import nft, qdisc
from eastwest.backends.lab.chaos.spec import Fault
from eastwest.backends.lab.netns import NetNS
from eastwest.backends.lab.network import Leg
from eastwest.support.errors import FaultUnsupported, LabError

log = logging.getLogger("eastwest.lab")
Net = ipaddress.IPv4Network
DUPLICATE_MARK = 0x65770D00  # "ew" + dup: a copy carries it so the egress hook lets it pass
ARRIVAL_PRIORITY = -300  # before conntrack (-200): a delayed or lost packet never reaches it early
DELAYER_READY_WITHIN = 10.0  # a Python process binding a netlink socket, on a loaded machine
BRIDGE_NETFILTER = "net/bridge/bridge-nf-call-iptables"
#: what each action needs of the kernel (a missing part answers ENOENT or EOPNOTSUPP)
KERNEL_NEEDS = {
    "partition": "NF_TABLES_IPV4", "loss": "NFT_NUMGEN", "corrupt": "NFT_NUMGEN",
    "duplicate": "NETFILTER_EGRESS, NF_TABLES_NETDEV, NFT_NUMGEN, NFT_DUP_NETDEV",
    "delay": "NFT_COMPAT, NETFILTER_XT_TARGET_NFQUEUE, NETFILTER_NETLINK_QUEUE", "bandwidth": "NET_SCH_TBF, NET_SCH_HTB",
}


@dataclass(frozen=True)
class Member:
    """A selected pod as network faults see it: its namespace and its interfaces."""

    ref: str
    ns: NetNS
    legs: tuple[Leg, ...]

    @property
    def nets(self) -> tuple[Net, ...]:
        return tuple(Net(f"{leg.address}/32") for leg in self.legs)


@dataclass(frozen=True)
class Egress:
    """What ``sender`` sends to ``to`` (None: to anywhere): the packets an egress qdisc of Chaos Mesh shapes."""

    sender: Member
    to: tuple[Net, ...] | None


def _union(members: list[Member], external: tuple[Net, ...]) -> tuple[Net, ...]:
    return tuple(n for m in members for n in m.nets) + external


def egress(fault: Fault, sources: list[Member], targets: list[Member]) -> list[Egress]:
    """trafficcontrol/impl.go Apply: the selected pods ``to``/``both``, the target pods ``from``/``both``."""
    flows = []
    if fault.direction in ("to", "both"):
        toward = _union(targets, fault.external)
        flows += [Egress(s, toward or None) for s in sources]
    if fault.direction in ("from", "both"):
        flows += [Egress(t, _union(sources, fault.external)) for t in targets]
    return flows


def by_sender(flows: list[Egress]) -> list[Egress]:
    """One flow per sender (a pod both selected and targeted sends to both sets; None, anywhere, wins)."""
    merged: dict[str, Egress] = {}
    for flow in flows:
        seen = merged.get(flow.sender.ref)
        if seen is None:
            merged[flow.sender.ref] = flow
        elif seen.to is not None:
            merged[flow.sender.ref] = Egress(flow.sender, None if flow.to is None else tuple(dict.fromkeys(seen.to + flow.to)))
    return list(merged.values())


def _drops(hook: str, field: str, nets: tuple[Net, ...] | None) -> list[tuple[str, tuple[nft.Expr, ...]]]:
    not_lo = nft.interface("out" if hook == "output" else "in", "lo", equal=False)
    if not nets:
        return [(hook, tuple(not_lo + nft.verdict(nft.DROP)))]
    return [(hook, tuple(not_lo + nft.ip_addr(field, n) + nft.verdict(nft.DROP))) for n in nets]


def partition(fault: Fault, sources: list[Member], targets: list[Member], name: str) -> list[tuple[NetNS, nft.Table]]:
    """partition/impl.go Apply, as one nf_tables table per pod namespace."""
    rules: dict[str, list[tuple[str, tuple[nft.Expr, ...]]]] = defaultdict(list)
    members = {m.ref: m for m in (*sources, *targets)}
    to_targets, to_sources = _union(targets, fault.external), _union(sources, fault.external)
    for s in sources:
        if fault.direction in ("to", "both"):
            rules[s.ref] += _drops("output", "daddr", to_targets)
        if fault.direction in ("from", "both"):
            rules[s.ref] += _drops("input", "saddr", to_targets)
    for t in targets:
        if fault.direction in ("from", "both"):
            rules[t.ref] += _drops("output", "daddr", to_sources)
        if fault.direction in ("to", "both"):
            rules[t.ref] += _drops("input", "saddr", to_sources)
    chains = (nft.Chain("input", "input"), nft.Chain("output", "output"))
    return [(members[ref].ns, nft.Table("ip", name, chains, tuple(r))) for ref, r in rules.items()]


def _check_bridge_netfilter(ns: NetNS, fault: Fault) -> None:
    """Packets bridged between pods of one node reach the ip hooks only through br_netfilter (on by default)."""
    try:
        with ns.entered(), open(f"/proc/sys/{BRIDGE_NETFILTER}") as f:
            on = f.read().strip() == "1"
    except OSError:
        on = False
    if not on:
        raise FaultUnsupported(f"{fault.ref}: {fault.action} acts where a pod's packets arrive, which for packets between pods "
                               f"of one node needs br_netfilter with {BRIDGE_NETFILTER.replace('/', '.')} = 1 (modprobe br_netfilter)")


class DelayerProcess:
    """A delayer (``delayer.py``) bound to one queue in one namespace."""

    def __init__(self, ns: NetNS, queue: int, latency: float, jitter: float, workdir: Path):
        self.queue = queue
        workdir.mkdir(parents=True, exist_ok=True)
        with open(workdir / f"delayer-{queue}.log", "ab") as errors:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "eastwest.backends.lab.chaos.delayer", "--queue", str(queue),
                 "--latency", repr(latency), "--jitter", repr(jitter)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors, preexec_fn=ns.enter_in_child, close_fds=True,
            )
        assert self.popen.stdout is not None
        ready, _, _ = select.select([self.popen.stdout], [], [], DELAYER_READY_WITHIN)
        line = self.popen.stdout.readline().decode(errors="replace").strip() if ready else ""
        self.popen.stdout.close()
        if line != "ready":
            self.stop()
            raise LabError(f"the delayer for queue {queue} did not start ({line or 'no answer'}; log: {workdir}/delayer-{queue}.log)")

    def stop(self) -> None:
        """Release what it holds and exit (it accepts every held packet on SIGTERM)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def _ifindex(ns: NetNS, device: str) -> int:
    with ns.entered(), IPRoute() as ip:
        return int(ip.link_lookup(ifname=device)[0])


class NetworkFault:
    """One NetworkChaos in place: its tables, qdiscs and delayers; ``apply`` then ``remove``."""

    def __init__(self, fault: Fault, sources: list[Member], targets: list[Member], name: str,
                 next_queue: Callable[[], int], workdir: Path):
        self.fault = fault
        self.sources = sources
        self.targets = targets
        self.name = name
        self.next_queue = next_queue
        self.workdir = workdir
        self.tables: list[tuple[NetNS, str]] = []  # (namespace, family) of each table named self.name
        self.limited: list[tuple[NetNS, str]] = []  # (namespace, device) with a root qdisc of ours
        self.delayers: list[DelayerProcess] = []

    def apply(self) -> None:
        """Put every rule, qdisc and delayer in place; on failure, remove what was done and raise."""
        started = time.monotonic()
        try:
            if self.fault.action == "partition":
                for ns, table in partition(self.fault, self.sources, self.targets, self.name):
                    self._install(ns, table)
            elif self.fault.action in ("delay", "loss", "corrupt"):
                self._at_arrival()
            elif self.fault.action == "duplicate":
                self._duplicate()
            else:
                self._bandwidth()
        except FaultUnsupported:
            self.remove()
            raise
        except NetlinkError as exc:
            self.remove()
            if exc.code in (errno.ENOENT, errno.EOPNOTSUPP):
                raise FaultUnsupported(f"{self.fault.ref}: this kernel lacks what {self.fault.action} needs "
                                       f"({KERNEL_NEEDS[self.fault.action]}): {exc}") from None
            raise LabError(f"{self.fault.ref}: the fault could not be put in place: {exc}") from exc
        except Exception as exc:
            problems = self.remove()
            raise LabError(f"{self.fault.ref}: the fault could not be put in place: {exc}"
                           + (f" (and clean-up: {'; '.join(problems)})" if problems else "")) from exc
        log.info("chaos: %s in place in %.1f ms", self.fault.ref, (time.monotonic() - started) * 1000)

    def _install(self, ns: NetNS, table: nft.Table) -> None:
        self.tables.append((ns, table.family))
        nft.install(ns, table)

    def _at_arrival(self) -> None:
        """delay, loss, corrupt: in the namespace each sender's interfaces are plugged into."""
        assert self.fault.netem is not None
        for flow in egress(self.fault, self.sources, self.targets):
            for leg in flow.sender.legs:
                _check_bridge_netfilter(leg.bridge_ns, self.fault)
        netem = self.fault.netem
        places: dict[int, tuple[NetNS, list[tuple[str, tuple[nft.Expr, ...]]]]] = {}
        for flow in egress(self.fault, self.sources, self.targets):
            for leg in flow.sender.legs:
                ns, rules = places.setdefault(id(leg.bridge_ns), (leg.bridge_ns, []))
                for source in flow.sender.nets:
                    for match in [[]] if flow.to is None else [nft.ip_addr("daddr", n) for n in flow.to]:
                        rules.append(("prerouting", tuple(nft.ip_addr("saddr", source) + match)))
        for ns, rules in places.values():
            if self.fault.action == "delay":
                queue = self.next_queue()
                self.delayers.append(DelayerProcess(ns, queue, netem.latency, netem.jitter, self.workdir))
                action = nft.nfqueue(queue)
            else:
                action = nft.random_below(netem.probability) + nft.verdict(nft.DROP)
            chain = nft.Chain("prerouting", "prerouting", ARRIVAL_PRIORITY)
            self._install(ns, nft.Table("ip", self.name, (chain,), tuple((c, m + tuple(action)) for c, m in rules)))

    def _duplicate(self) -> None:
        assert self.fault.netem is not None
        for flow in by_sender(egress(self.fault, self.sources, self.targets)):
            chains, rules = [], []
            for leg in flow.sender.legs:
                chain = f"egress-{leg.device}"
                chains.append(nft.Chain(chain, "egress", 0, leg.device))
                copy = (nft.random_below(self.fault.netem.probability) + nft.set_mark(DUPLICATE_MARK)
                        + nft.dup_to(_ifindex(flow.sender.ns, leg.device)))
                for match in [[]] if flow.to is None else [nft.ip_addr("daddr", n) for n in flow.to]:
                    rules.append((chain, tuple(nft.mark_is_not(DUPLICATE_MARK) + nft.ipv4() + match + copy)))
            self._install(flow.sender.ns, nft.Table("netdev", self.name, tuple(chains), tuple(rules)))

    def _bandwidth(self) -> None:
        assert self.fault.bandwidth is not None
        for flow in by_sender(egress(self.fault, self.sources, self.targets)):
            classify = []
            for leg in flow.sender.legs:
                self.limited.append((flow.sender.ns, leg.device))
                qdisc.limit_egress(flow.sender.ns, leg.device, self.fault.bandwidth, classified=flow.to is not None)
                for n in flow.to or ():
                    classify.append(("postrouting", tuple(nft.interface("out", leg.device) + nft.ip_addr("daddr", n)
                                                          + nft.set_priority(qdisc.TARGET_CLASS))))
            if classify:
                self._install(flow.sender.ns, nft.Table("ip", self.name, (nft.Chain("postrouting", "postrouting"),), tuple(classify)))

    def remove(self) -> list[str]:
        """Take everything away (rules first, then the delayers, which release what they hold); returns problems."""
        problems = []
        for ns, family in reversed(self.tables):
            try:
                nft.remove(ns, family, self.name)
            except Exception as exc:
                problems.append(f"table {family} {self.name} in {ns.name}: {exc}")
        self.tables.clear()
        for ns, device in reversed(self.limited):
            try:
                qdisc.unlimit(ns, device)
            except Exception as exc:
                problems.append(f"qdisc on {device} in {ns.name}: {exc}")
        self.limited.clear()
        for delayer in self.delayers:
            delayer.stop()
        self.delayers.clear()
        return problems
