"""netem's delay without netem: packets queued by nf_tables (NFQUEUE) are released after latency ± jitter.

This kernel has no ``sch_netem`` and no qdisc that holds a packet for a fixed time, so a delay
is a userspace hold: a rule sends the packets to an nfnetlink_queue and this process, bound to
that queue, gives each one its ACCEPT verdict when it is due. Jitter is netem's default
distribution, uniform in [latency - jitter, latency + jitter]; as in netem without ``rate``,
packets with jitter may overtake each other. Only packet metadata crosses to userspace
(``NFQNL_COPY_META``), and GSO packets are queued whole (``NFQA_CFG_F_GSO``), so a bulk
transfer costs one verdict per super-packet.

Fail-open everywhere: the queue accepts packets it has no room for (``NFQA_CFG_F_FAIL_OPEN``)
and the rule's bypass flag passes packets while nothing is bound, so a slow or dead delayer
degrades to "less delay", never to a cut link. On SIGTERM everything still held is released.

Run as ``python -m eastwest.backends.lab.chaos.delayer --queue N --latency S [--jitter S]``
inside the namespace of the queue; it prints ``ready`` once bound.
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG, NFQNL_MSG_VERDICT_BATCH = 0, 1, 2, 3
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 3, 4, 5
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NFQA_CFG_F_FAIL_OPEN, NFQA_CFG_F_GSO = 0x1, 0x4
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
SOL_NETLINK, NETLINK_NO_ENOBUFS = 270, 5
SO_RCVBUFFORCE = 33
QUEUE_MAXLEN = 65536
RECV_BUFFER = 16 << 20


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


class QueueSocket:
    """One nfnetlink_queue, bound: reads queued packet ids, sends verdicts."""

    def __init__(self, queue: int):
        self.queue = queue
        self.seq = 0
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECV_BUFFER)
        except PermissionError:  # without CAP_NET_ADMIN: as much as net.core.rmem_max allows
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
        self.sock.bind((0, 0))
        self._config(_attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, socket.AF_INET)))
        flags = NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO
        self._config(_attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META))
                     + _attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", QUEUE_MAXLEN))
                     + _attr(NFQA_CFG_FLAGS, struct.pack("!I", flags)) + _attr(NFQA_CFG_MASK, struct.pack("!I", flags)))
        self.sock.setblocking(False)

    def _message(self, kind: int, payload: bytes, flags: int = NLM_F_REQUEST) -> bytes:
        self.seq += 1
        header = struct.pack("=IHHII", 20 + len(payload), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, self.seq, 0)
        return header + struct.pack("!BBH", socket.AF_UNSPEC, 0, self.queue) + payload

    def _config(self, payload: bytes) -> None:
        self.sock.send(self._message(NFQNL_MSG_CONFIG, payload, NLM_F_REQUEST | NLM_F_ACK))
        reply = self.sock.recv(65536)
        if struct.unpack_from("=H", reply, 4)[0] == NLMSG_ERROR:
            err = -struct.unpack_from("=i", reply, 16)[0]
            if err:
                raise OSError(err, f"nfqueue {self.queue} configuration: {os.strerror(err)}")

    def fileno(self) -> int:
        return self.sock.fileno()

    def packet_ids(self) -> list[int]:
        """Every packet queued since the last call (non-blocking)."""
        ids: list[int] = []
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except BlockingIOError:
                return ids
            offset = 0
            while offset + 20 <= len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if length < 16:
                    break
                if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                    at = offset + 20
                    while at + 4 <= offset + length:
                        alen, atype = struct.unpack_from("=HH", data, at)
                        if atype & 0x7FFF == NFQA_PACKET_HDR:
                            ids.append(struct.unpack_from("!I", data, at + 4)[0])
                            break
                        at += max(4, (alen + 3) & ~3)
                offset += (length + 3) & ~3

    def accept(self, packet_id: int, *, up_to: bool = False) -> None:
        """ACCEPT one packet, or (``up_to``) every queued packet with an id up to this one."""
        kind = NFQNL_MSG_VERDICT_BATCH if up_to else NFQNL_MSG_VERDICT
        self.sock.send(self._message(kind, _attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet_id))))


class Delayer:
    """Holds packets in a heap of release times; one loop reads, releases, sleeps until the next is due."""

    def __init__(self, queue: QueueSocket, latency: float, jitter: float, rng: random.Random | None = None):
        self.queue = queue
        self.latency = latency
        self.jitter = jitter
        self.rng = rng or random.Random()
        self.held: list[tuple[float, int]] = []

    def hold_for(self) -> float:
        if not self.jitter:
            return self.latency
        return max(0.0, self.latency + self.rng.uniform(-self.jitter, self.jitter))

    def release_due(self, now: float) -> None:
        last = None
        while self.held and self.held[0][0] <= now:
            _, packet_id = heapq.heappop(self.held)
            if self.jitter:
                self.queue.accept(packet_id)
            else:  # a fixed delay releases in arrival (= id) order: one batch verdict
                last = packet_id if last is None else max(last, packet_id)
        if last is not None:
            self.queue.accept(last, up_to=True)

    def release_all(self) -> None:
        while self.held:
            self.queue.accept(heapq.heappop(self.held)[1])

    def run(self, wakeup: int) -> None:
        """Serve until a byte arrives on ``wakeup`` (the signal pipe), then release everything held."""
        while True:
            now = time.monotonic()
            self.release_due(now)
            timeout = max(0.0, self.held[0][0] - time.monotonic()) if self.held else None
            ready, _, _ = select.select([self.queue.fileno(), wakeup], [], [], timeout)
            if wakeup in ready:
                break
            if self.queue.fileno() in ready:
                arrival = time.monotonic()
                for packet_id in self.queue.packet_ids():
                    heapq.heappush(self.held, (arrival + self.hold_for(), packet_id))
        for packet_id in self.queue.packet_ids():  # queued since the last read: no reason to hold them now
            self.queue.accept(packet_id)
        self.release_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eastwest-lab-delayer")
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--latency", type=float, required=True, help="seconds")
    parser.add_argument("--jitter", type=float, default=0.0, help="seconds")
    args = parser.parse_args(argv)
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end)
    signal.signal(signal.SIGTERM, lambda *_: None)  # the wakeup fd carries it to the loop
    signal.signal(signal.SIGINT, lambda *_: None)
    try:
        queue = QueueSocket(args.queue)
    except OSError as exc:
        print(f"error: {exc}", flush=True)
        return 1
    print("ready", flush=True)
    Delayer(queue, args.latency, args.jitter).run(read_end)
    return 0


if __name__ == "__main__":
    sys.exit(main())
