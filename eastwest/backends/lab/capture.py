"""A packet capture of the transit network: what crosses the "internet" between the clusters.

The supervisor owns the ``transit`` bridge in its own network namespace. A packet socket
bound to the bridge sees a frame that is forwarded between two ports only when the bridge
is promiscuous (``br_handle_frame_finish`` then passes every frame up, as ``tcpdump -i br0``
relies on), so the capture asks for promiscuous mode on its socket: the kernel drops it
when the socket closes. Frames are kept in memory, bounded in bytes and time, and handed
back in pcap format (what ``tcpdump -w`` writes), so any backend's capture reads the same.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

from eastwest.backends.lab.netns import NetNS

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
LINKTYPE_ETHERNET = 1
SNAPLEN = 65535
MAX_BYTES = 32 * 1024 * 1024  # far above a test's few hundred kilobytes; keeps a runaway capture bounded


class PacketCapture:
    """Every frame on one interface of a namespace, from start() until stop() or ``limit`` seconds."""

    def __init__(self, ns: NetNS, ifname: str, limit: float):
        self.ifname = ifname
        self.limit = limit
        self.frames: list[tuple[float, bytes, int]] = []  # (time, captured bytes, original length)
        self.size = 0
        self.truncated = False
        self._stop = threading.Event()
        with ns.entered():
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((ifname, 0))
        ifindex = self._ifindex(ns, ifname)
        # struct packet_mreq { int mr_ifindex; unsigned short mr_type, mr_alen; unsigned char mr_address[8]; }
        self.sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b""))
        self.sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._run, name=f"capture-{ifname}", daemon=True)
        self._thread.start()

    @staticmethod
    def _ifindex(ns: NetNS, ifname: str) -> int:
        with ns.entered():  # interface indexes are per namespace
            return socket.if_nametoindex(ifname)

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                frame = self.sock.recv(SNAPLEN)
            except TimeoutError:
                continue
            except OSError:
                return
            if self.size + len(frame) > MAX_BYTES:
                self.truncated = True
                return
            self.frames.append((time.time(), frame, len(frame)))
            self.size += len(frame)

    def stop(self) -> bytes:
        """Stop capturing; the frames as a pcap file."""
        self._stop.set()
        self._thread.join()
        self.sock.close()
        return to_pcap(self.frames)


def to_pcap(frames: list[tuple[float, bytes, int]]) -> bytes:
    """Frames as a classic pcap file (microsecond timestamps, Ethernet)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)]
    for ts, data, length in frames:
        sec = int(ts)
        out.append(struct.pack("<IIII", sec, int((ts - sec) * 1_000_000), len(data), length))
        out.append(data)
    return b"".join(out)
