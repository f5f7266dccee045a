"""nf_tables through pyroute2 (no ``nft`` binary): a table of base chains and rules, added and removed whole.

A fault is one table in each network namespace it touches, named after the fault, so removing
the fault is one ``delete table`` per namespace and two faults never share a rule. Rules are
lists of expressions built by the small functions below, the way ``nft`` compiles its syntax:

    ip daddr 10.10.0.0/16 drop     ->  ip_addr("daddr", net) + [verdict(DROP)]

Two pyroute2 (0.9) gaps are filled by hand: ``numgen`` attributes are ``NFTA_NG_*`` (its generic
builder would say ``NFTA_NUMGEN_*``, which the kernel refuses), and netdev chains need
``NFTA_HOOK_DEV`` (its ``chain()`` knows the ip hooks only).
"""

from __future__ import annotations

import errno
import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.nfnetlink.nftsocket import NFT_MSG_NEWCHAIN, nft_chain_msg
from pyroute2.nftables.expressions import genex
from pyroute2.nftables.main import NFTables

from eastwest.backends.lab.netns import NetNS

Expr = dict[str, Any]

FAMILIES = {"ip": 2, "netdev": 5}
HOOKS = {
    "ip": {"prerouting": 0, "input": 1, "forward": 2, "output": 3, "postrouting": 4},
    "netdev": {"ingress": 0, "egress": 1},
}
DROP, ACCEPT = 0, 1
_EQ, _NEQ, _LT = 0, 1, 2
_META_PROTOCOL, _META_PRIORITY, _META_MARK, _META_IIFNAME, _META_OIFNAME = 1, 2, 3, 6, 7
_NG_RANDOM = 1
_NFQ_FLAG_BYPASS = 0x01  # xt_NFQUEUE: accept the packet when no program listens on the queue (fail open)
_IFNAMSIZ = 16
RANDOM_MODULUS = 1_000_000  # numgen range: probabilities to a millionth (netem's own resolution is 1/2^32)


@dataclass(frozen=True)
class Chain:
    """A base chain: ``hook`` of its family, at ``priority``; netdev chains name their ``device``."""

    name: str
    hook: str
    priority: int = 0
    device: str | None = None


@dataclass(frozen=True)
class Table:
    """One fault's rules in one namespace: its chains and, per chain, rules of expressions."""

    family: str
    name: str
    chains: tuple[Chain, ...]
    rules: tuple[tuple[str, tuple[Expr, ...]], ...] = field(default=())


def _open(ns: NetNS, family: str) -> NFTables:
    # a netlink socket keeps the namespace it was made in
    with ns.entered():
        return NFTables(nfgen_family=FAMILIES[family])


def install(ns: NetNS, table: Table) -> None:
    """Create ``table`` with its chains and rules in ``ns``; on failure nothing of it stays."""
    nft = _open(ns, table.family)
    try:
        nft.table("add", name=table.name)
        try:
            for chain in table.chains:
                hook = [["NFTA_HOOK_HOOKNUM", HOOKS[table.family][chain.hook]], ["NFTA_HOOK_PRIORITY", chain.priority]]
                if chain.device:
                    hook.append(["NFTA_HOOK_DEV", chain.device])
                nft._command(nft_chain_msg, {"add": NFT_MSG_NEWCHAIN}, "add",
                             {"table": table.name, "name": chain.name, "type": "filter", "hook": {"attrs": hook}})
            for chain_name, exprs in table.rules:
                nft.rule("add", table=table.name, chain=chain_name, expressions=[list(exprs)])
        except Exception:
            nft.table("del", name=table.name)
            raise
    finally:
        nft.close()


def remove(ns: NetNS, family: str, name: str) -> None:
    """Delete a table (a namespace already gone, or a table already deleted, is fine)."""
    if ns.fd < 0:
        return
    nft = _open(ns, family)
    try:
        nft.table("del", name=name)
    except NetlinkError as exc:
        if exc.code != errno.ENOENT:
            raise
    finally:
        nft.close()


def table_names(ns: NetNS, family: str) -> list[str]:
    """The tables of a family in ``ns`` (self-tests check that a fault left nothing behind)."""
    nft = _open(ns, family)
    try:
        return [str(t.get_attr("NFTA_TABLE_NAME")) for t in nft.get_tables() if t["nfgen_family"] == FAMILIES[family]]
    finally:
        nft.close()


# ---- expressions ---------------------------------------------------------------------


def _data(value: bytes) -> dict[str, Any]:
    return {"attrs": [("NFTA_DATA_VALUE", value)]}


def _cmp(op: int, value: bytes) -> Expr:
    return genex("cmp", {"sreg": 1, "op": op, "data": _data(value)})


def _meta_load(key: int) -> Expr:
    return genex("meta", {"dreg": 1, "key": key})


def verdict(code: int) -> list[Expr]:
    return [genex("immediate", {"dreg": 0, "data": {"attrs": [("NFTA_DATA_VERDICT", {"attrs": [("NFTA_VERDICT_CODE", code)]})]}})]


def interface(direction: str, name: str, *, equal: bool = True) -> list[Expr]:
    """``meta iifname|oifname [!=] name`` (direction ``in`` or ``out``)."""
    key = _META_IIFNAME if direction == "in" else _META_OIFNAME
    return [_meta_load(key), _cmp(_EQ if equal else _NEQ, name.encode().ljust(_IFNAMSIZ, b"\0"))]


def ipv4() -> list[Expr]:
    """``meta protocol ip``: needed before reading IP headers in netdev chains (ARP passes untouched)."""
    return [_meta_load(_META_PROTOCOL), _cmp(_EQ, struct.pack("!H", 0x0800))]


def ip_addr(which: str, net: ipaddress.IPv4Network) -> list[Expr]:
    """``ip saddr|daddr <net>``: load the address, mask it to the prefix, compare."""
    out = [genex("payload", {"dreg": 1, "base": 1, "offset": 12 if which == "saddr" else 16, "len": 4})]
    if net.prefixlen < 32:
        out.append(genex("bitwise", {"sreg": 1, "dreg": 1, "len": 4, "mask": _data(net.netmask.packed), "xor": _data(b"\0" * 4)}))
    out.append(_cmp(_EQ, net.network_address.packed))
    return out


def random_below(probability: float) -> list[Expr]:
    """True for a share ``probability`` of packets: ``numgen random mod M < p*M`` (byte order fixed for ``cmp``)."""
    threshold = round(probability * RANDOM_MODULUS)
    return [
        {"attrs": [("NFTA_EXPR_NAME", "numgen"), ("NFTA_EXPR_DATA", {"attrs": [
            ("NFTA_NG_DREG", 1), ("NFTA_NG_MODULUS", RANDOM_MODULUS), ("NFTA_NG_TYPE", _NG_RANDOM)]})]},
        genex("byteorder", {"sreg": 1, "dreg": 1, "op": 1, "len": 4, "size": 4}),  # hton: cmp compares bytes
        _cmp(_LT, struct.pack(">I", threshold)),
    ]


def mark_is_not(value: int) -> list[Expr]:
    return [_meta_load(_META_MARK), _cmp(_NEQ, struct.pack("=I", value))]


def set_mark(value: int) -> list[Expr]:
    return [genex("immediate", {"dreg": 1, "data": _data(struct.pack("=I", value))}), genex("meta", {"sreg": 1, "key": _META_MARK})]


def set_priority(classid: int) -> list[Expr]:
    """``meta priority set`` : htb puts a packet whose priority names one of its classes in that class."""
    return [genex("immediate", {"dreg": 1, "data": _data(struct.pack("=I", classid))}), genex("meta", {"sreg": 1, "key": _META_PRIORITY})]


def dup_to(ifindex: int) -> list[Expr]:
    """``dup to <device>`` (netdev family): a copy of the packet leaves through the device."""
    return [genex("immediate", {"dreg": 2, "data": _data(struct.pack("=I", ifindex))}), genex("dup", {"sreg_dev": 2})]


def nfqueue(queue: int) -> list[Expr]:
    """xtables' NFQUEUE target (revision 3) through nft_compat, with the bypass flag.

    The kernel here lacks nft's own ``queue`` expression (CONFIG_NFT_QUEUE), but nft_compat
    runs the xtables target. ``struct xt_NFQ_info_v3 {u16 queuenum, queues_total, flags}``,
    padded to 8 bytes (XT_ALIGN). With bypass, a packet passes untouched while nothing reads
    the queue, so a delayer that dies fails open instead of cutting the pod off.
    """
    info = struct.pack("=HHH", queue, 1, _NFQ_FLAG_BYPASS) + b"\0\0"
    return [genex("target", {"name": "NFQUEUE", "rev": 3, "info": info})]
