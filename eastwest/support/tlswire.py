"""What crossed the wire: TCP streams out of a pcap capture, and what each says of TLS.

A capture (pcap, Ethernet or Linux cooked frames) is cut into TCP streams by address and
port; each direction is put back in sequence order. Each stream is then read as TLS records:
the ClientHello gives the SNI, the ALPN offered and the versions offered (``supported_versions``),
the ServerHello the version negotiated (its ``supported_versions`` in TLS 1.3, its
``legacy_version`` before). Bytes that are not TLS records are counted as plaintext, and
every payload is searched for HTTP/1 request or status lines and for SPIFFE IDs in clear
(TLS 1.2 sends both peers' certificates unencrypted; TLS 1.3 encrypts them).

Only the standard library: the formats read here are small and fixed (RFC 8446 4.1.2-4.1.3,
RFC 6066 3, RFC 7301 3.1, the pcap file format).
"""

from __future__ import annotations

import ipaddress
import re
import struct
from dataclasses import dataclass, field

LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113
TLS_VERSIONS = {0x0301: "TLSv1.0", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}
#: Istio's in-mesh ALPN values (listener.go allIstioMtlsALPNs): a sidecar offers at least one
ISTIO_ALPNS = frozenset({"istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2"})
HTTP_LINE = re.compile(rb"(?:^|\r\n)(?:(?:GET|POST|PUT|DELETE|HEAD|OPTIONS|PATCH|CONNECT) \S+ HTTP/1\.[01]\r\n|HTTP/1\.[01] \d{3} )")
SPIFFE = re.compile(rb"spiffe://[A-Za-z0-9._~%/-]+")
_EXT_SNI, _EXT_ALPN, _EXT_VERSIONS = 0, 16, 43


@dataclass(frozen=True)
class Segment:
    time: float
    src: str
    dst: str
    sport: int
    dport: int
    seq: int
    flags: int
    payload: bytes

    @property
    def syn(self) -> bool:
        return bool(self.flags & 0x02)

    @property
    def ack(self) -> bool:
        return bool(self.flags & 0x10)


def read_pcap(data: bytes) -> tuple[list[Segment], int]:
    """The TCP/IPv4 segments of a pcap file, and how many frames were something else."""
    if len(data) < 24:
        raise ValueError(f"not a pcap file: {len(data)} bytes")
    magic = data[:4]
    endian = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}.get(magic)
    if endian is None:
        raise ValueError(f"not a pcap file (magic {magic.hex()})")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype not in (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL):
        raise ValueError(f"pcap link type {linktype} is not Ethernet (1) or Linux cooked (113)")
    segments, other, pos = [], 0, 24
    while pos + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[pos:pos + 16])
        frame = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        segment = _tcp(frame, linktype, sec + frac / (1e9 if nano else 1e6))
        if segment is None:
            other += 1
        else:
            segments.append(segment)
    return segments, other


def _tcp(frame: bytes, linktype: int, time: float) -> Segment | None:
    if linktype == LINKTYPE_ETHERNET:
        if len(frame) < 14:
            return None
        ethertype, ip = struct.unpack("!H", frame[12:14])[0], frame[14:]
        if ethertype == 0x8100 and len(frame) >= 18:  # one VLAN tag
            ethertype, ip = struct.unpack("!H", frame[16:18])[0], frame[18:]
    else:
        if len(frame) < 16:
            return None
        ethertype, ip = struct.unpack("!H", frame[14:16])[0], frame[16:]
    if ethertype != 0x0800 or len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
        return None
    ihl = (ip[0] & 0x0F) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    tcp = ip[ihl:total]
    if len(tcp) < 20:
        return None
    sport, dport, seq = struct.unpack("!HHI", tcp[:8])
    offset = (tcp[12] >> 4) * 4
    return Segment(time, str(ipaddress.IPv4Address(ip[12:16])), str(ipaddress.IPv4Address(ip[16:20])), sport, dport, seq,
                   tcp[13], tcp[offset:])


def _reassemble(segments: list[Segment]) -> bytes:
    """One direction's bytes in sequence order; retransmissions and overlaps are kept once."""
    syn = next((s for s in segments if s.syn), None)
    data = [s for s in segments if s.payload]
    if not data:
        return b""
    base = (syn.seq + 1) if syn else min(s.seq for s in data)
    out = bytearray()
    for s in sorted(data, key=lambda s: (s.seq - base) % 2**32):
        start = (s.seq - base) % 2**32
        if start > len(out):  # a gap: bytes the capture missed
            out += b"\0" * (start - len(out))
        out[start:start + len(s.payload)] = s.payload
    return bytes(out)


@dataclass(frozen=True)
class Hello:
    """What one side said in its hello."""

    sni: str | None = None
    alpn: tuple[str, ...] = ()
    versions: tuple[str, ...] = ()  # client: offered; server: the one selected
    legacy_version: str | None = None


def _extensions(body: bytes) -> dict[int, bytes]:
    out, pos = {}, 2
    end = 2 + struct.unpack("!H", body[:2])[0] if len(body) >= 2 else 0
    while pos + 4 <= min(end, len(body)):
        kind, length = struct.unpack("!HH", body[pos:pos + 4])
        out[kind] = body[pos + 4:pos + 4 + length]
        pos += 4 + length
    return out


def parse_client_hello(msg: bytes) -> Hello:
    """A ClientHello handshake body (after the 4-byte handshake header)."""
    legacy = struct.unpack("!H", msg[:2])[0]
    pos = 2 + 32
    pos += 1 + msg[pos]  # session id
    pos += 2 + struct.unpack("!H", msg[pos:pos + 2])[0]  # cipher suites
    pos += 1 + msg[pos]  # compression methods
    ext = _extensions(msg[pos:])
    sni = None
    if _EXT_SNI in ext and len(ext[_EXT_SNI]) >= 5:
        name_len = struct.unpack("!H", ext[_EXT_SNI][3:5])[0]
        sni = ext[_EXT_SNI][5:5 + name_len].decode("ascii", "replace")
    alpn: list[str] = []
    if _EXT_ALPN in ext:
        raw, p = ext[_EXT_ALPN][2:], 0
        while p < len(raw):
            alpn.append(raw[p + 1:p + 1 + raw[p]].decode("ascii", "replace"))
            p += 1 + raw[p]
    versions: list[str] = []
    if _EXT_VERSIONS in ext:
        raw = ext[_EXT_VERSIONS][1:]
        versions = [TLS_VERSIONS.get(v, f"0x{v:04x}") for (v,) in struct.iter_unpack("!H", raw[:len(raw) // 2 * 2])
                    if v & 0x0F0F != 0x0A0A]  # GREASE values
    return Hello(sni, tuple(alpn), tuple(versions), TLS_VERSIONS.get(legacy, f"0x{legacy:04x}"))


def parse_server_hello(msg: bytes) -> Hello:
    """A ServerHello handshake body: the version is ``supported_versions`` if present, else ``legacy_version``."""
    legacy = struct.unpack("!H", msg[:2])[0]
    pos = 2 + 32
    pos += 1 + msg[pos]
    pos += 2 + 1  # cipher suite, compression method
    ext = _extensions(msg[pos:]) if len(msg) > pos else {}
    chosen = struct.unpack("!H", ext[_EXT_VERSIONS][:2])[0] if len(ext.get(_EXT_VERSIONS, b"")) >= 2 else legacy
    return Hello(versions=(TLS_VERSIONS.get(chosen, f"0x{chosen:04x}"),), legacy_version=TLS_VERSIONS.get(legacy))


def tls_records(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """Split bytes into TLS records (content type, fragment); also how many bytes at the end are not records."""
    records, pos = [], 0
    while pos + 5 <= len(data):
        ctype, major, length = data[pos], data[pos + 1], struct.unpack("!H", data[pos + 3:pos + 5])[0]
        if ctype not in (20, 21, 22, 23) or major != 3 or length > 2**14 + 256:
            break
        if pos + 5 + length > len(data):  # the capture ended inside a record
            records.append((ctype, data[pos + 5:]))
            return records, 0
        records.append((ctype, data[pos + 5:pos + 5 + length]))
        pos += 5 + length
    return records, len(data) - pos


def first_handshake(records: list[tuple[int, bytes]], msg_type: int) -> bytes | None:
    """The body of the first handshake message of ``msg_type`` in the plaintext handshake records."""
    buf = b"".join(frag for ctype, frag in records if ctype == 22)
    pos = 0
    while pos + 4 <= len(buf):
        kind, length = buf[pos], int.from_bytes(buf[pos + 1:pos + 4], "big")
        if kind == msg_type:
            return buf[pos + 4:pos + 4 + length]
        pos += 4 + length
    return None


@dataclass(frozen=True)
class Stream:
    """One TCP connection seen on the wire, as the test judges it."""

    client: str  # "ip:port" of the side that opened it (or sent first, if the capture missed the SYN)
    server: str
    complete: bool  # the capture saw it open (its SYN)
    bytes_up: int
    bytes_down: int
    tls: bool | None  # both directions are TLS records from their first byte (None: joined mid-stream, unknown)
    client_hello: Hello | None
    server_hello: Hello | None
    plaintext_bytes: int  # bytes that are not TLS records
    http_lines: tuple[str, ...]  # HTTP/1 request or status lines found in clear
    identities_in_clear: tuple[str, ...]  # SPIFFE IDs readable on the wire

    @property
    def empty(self) -> bool:
        """No payload either way (a probe that only connected, or a refused connection)."""
        return self.bytes_up == 0 and self.bytes_down == 0

    @property
    def version(self) -> str | None:
        return self.server_hello.versions[0] if self.server_hello and self.server_hello.versions else None

    def summary(self) -> str:
        head = f"{self.client} -> {self.server} ({'opened in capture' if self.complete else 'joined mid-stream'}; " \
               f"{self.bytes_up} B up, {self.bytes_down} B down)"
        if self.empty:
            return f"{head}: no payload"
        if self.tls is None:
            return f"{head}: record boundaries unknown; HTTP in clear: {list(self.http_lines) or '-'}; " \
                   f"identities in clear: {list(self.identities_in_clear) or 'none'}"
        if not self.tls:
            return f"{head}: NOT TLS; {self.plaintext_bytes} plaintext bytes; HTTP in clear: {list(self.http_lines) or '-'}"
        ch, sh = self.client_hello, self.server_hello
        parts = [f"SNI {ch.sni}" if ch else "no ClientHello seen", f"ALPN offered {list(ch.alpn)}" if ch else "",
                 f"versions offered {list(ch.versions) or [ch.legacy_version]}" if ch else "",
                 f"negotiated {self.version}" if sh else "no ServerHello seen",
                 f"identities in clear: {list(self.identities_in_clear) or 'none'}",
                 f"plaintext bytes: {self.plaintext_bytes}"]
        return f"{head}: TLS; " + "; ".join(p for p in parts if p)


@dataclass(frozen=True)
class WireReport:
    """Every TCP stream of a capture, judged."""

    streams: tuple[Stream, ...]
    frames: int
    other_frames: int  # not TCP/IPv4 (ARP, ...)
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        lines = [f"{self.frames} frames captured ({self.other_frames} not TCP/IPv4), {len(self.streams)} TCP streams"]
        lines += [f"- {s.summary()}" for s in self.streams]
        return "\n".join(lines + list(self.notes))


def _judge(client: tuple[str, int], server: tuple[str, int], up: list[Segment], down: list[Segment]) -> Stream:
    complete = any(s.syn and not s.ack for s in up)
    data_up, data_down = _reassemble(up), _reassemble(down)
    rec_up, rest_up = tls_records(data_up)
    rec_down, rest_down = tls_records(data_down)
    tls_up = (bool(rec_up) and rest_up == 0) or not data_up
    tls_down = (bool(rec_down) and rest_down == 0) or not data_down
    tls: bool | None
    if complete:
        tls = tls_up and tls_down
        plaintext = (rest_up if rec_up else len(data_up)) + (rest_down if rec_down else len(data_down))
    else:  # joined mid-stream: record boundaries are unknown unless the bytes happen to start on one
        tls = True if tls_up and tls_down else None
        plaintext = 0
    ch = sh = None
    if complete and rec_up:
        body = first_handshake(rec_up, 1)
        ch = parse_client_hello(body) if body else None
        body = first_handshake(rec_down, 2)
        sh = parse_server_hello(body) if body else None
    payloads = b"".join(s.payload for s in up + down)
    http = {m.group(0).strip(b"\r\n ").decode("latin-1") for text in (data_up, data_down, payloads) for m in HTTP_LINE.finditer(text)}
    ids = {_identity(payloads, m) for m in SPIFFE.finditer(payloads)}
    return Stream(f"{client[0]}:{client[1]}", f"{server[0]}:{server[1]}", complete, len(data_up), len(data_down), tls, ch, sh,
                  plaintext, tuple(sorted(http)), tuple(sorted(ids)))


def _identity(data: bytes, match: re.Match[bytes]) -> str:
    """A SPIFFE ID found in clear; in a certificate's SAN (DER: tag 0x86, one length byte) exactly as long as
    its encoding says, since the bytes that follow may be URI characters too."""
    start = match.start()
    if start >= 2 and data[start - 2] == 0x86 and data[start - 1] < 0x80:
        return data[start:start + data[start - 1]].decode("latin-1")
    return match.group(0).decode("latin-1")


def analyse(pcap: bytes) -> WireReport:
    """Cut a capture into TCP streams and judge each."""
    segments, other = read_pcap(pcap)
    flows: dict[frozenset[tuple[str, int]], list[Segment]] = {}
    for s in segments:
        flows.setdefault(frozenset({(s.src, s.sport), (s.dst, s.dport)}), []).append(s)
    streams = []
    for flow in flows.values():
        opener = next((s for s in flow if s.syn and not s.ack), None) or next((s for s in flow if s.payload), flow[0])
        client, server = (opener.src, opener.sport), (opener.dst, opener.dport)
        up = [s for s in flow if (s.src, s.sport) == client]
        down = [s for s in flow if (s.src, s.sport) == server]
        streams.append(_judge(client, server, up, down))
    streams.sort(key=lambda s: (s.server, s.client))
    return WireReport(tuple(streams), len(segments) + other, other)
