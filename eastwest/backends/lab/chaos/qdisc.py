"""Bandwidth limits as Chaos Mesh sets them: a token bucket (tbf) on the pod's egress, through pyroute2.

Chaos Mesh runs ``tc qdisc add dev eth0 root tbf rate R burst B limit L`` in the pod
(``tc_server.go`` convertTbfToArgs). With a target it puts the tbf under a classful qdisc and
classifies the target's packets into it with iptables CLASSIFY; this kernel has no ``prio``
qdisc, so the lab uses htb as the classifier: one class that never limits, the tbf as its
leaf, and an nf_tables ``meta priority set`` rule (``TARGET_CLASS``) for the target's packets.
Packets of no class take htb's direct queue, unlimited.
"""

from __future__ import annotations

import errno

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from eastwest.backends.lab.chaos.spec import Bandwidth
from eastwest.backends.lab.netns import NetNS

ROOT = 0x10000  # 1:
TARGET_CLASS = 0x10001  # 1:1, what targeted packets' priority is set to
_LEAF = 0xA0000  # a:
_UNLIMITED = 100 * 10**9 // 8  # the classifier's own rate (100 Gbit/s): the tbf below it limits


def limit_egress(ns: NetNS, device: str, bandwidth: Bandwidth, *, classified: bool) -> None:
    """Limit what leaves ``device``: all of it, or (``classified``) packets whose priority is TARGET_CLASS."""
    tbf = {"rate": bandwidth.rate, "burst": bandwidth.buffer, "limit": bandwidth.limit}
    with ns.entered(), IPRoute() as ip:
        index = ip.link_lookup(ifname=device)[0]
        if not classified:
            ip.tc("add", "tbf", index, ROOT, **tbf)
            return
        ip.tc("add", "htb", index, ROOT)
        try:
            ip.tc("add-class", "htb", index, TARGET_CLASS, parent=ROOT, rate=_UNLIMITED, ceil=_UNLIMITED)
            ip.tc("add", "tbf", index, _LEAF, parent=TARGET_CLASS, **tbf)
        except Exception:
            ip.tc("del", index=index, handle=ROOT, parent=0xFFFFFFFF)
            raise


def unlimit(ns: NetNS, device: str) -> None:
    """Back to the device's default qdisc (gone namespaces and devices are fine)."""
    if ns.fd < 0:
        return
    with ns.entered(), IPRoute() as ip:
        found = ip.link_lookup(ifname=device)
        if not found:
            return
        try:
            ip.tc("del", index=found[0], handle=ROOT, parent=0xFFFFFFFF)
        except NetlinkError as exc:
            if exc.code not in (errno.ENOENT, errno.EINVAL):
                raise


def root_kind(ns: NetNS, device: str) -> str | None:
    """The kind of the device's root qdisc (``noqueue`` when none was set)."""
    with ns.entered(), IPRoute() as ip:
        index = ip.link_lookup(ifname=device)[0]
        for q in ip.get_qdiscs(index=index):
            if q["parent"] == 0xFFFFFFFF:
                return str(q.get_attr("TCA_KIND"))
    return None
