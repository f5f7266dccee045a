"""Typed responses from the echo server, and X-Forwarded-Client-Cert parsing.

The echo server (``fixtures/apps/echo.py``) answers every request with one JSON object::

    {"service": "echo", "version": "v1", "cluster": "eu", "pod": "echo-eu-0",
     "namespace": "echo", "service_account": "echo", "locality": "eu/eu-a",
     "ip": "10.20.0.11", "method": "GET", "path": "/", "host": "echo.echo.svc.cluster.local",
     "headers": {"X-Forwarded-Client-Cert": "By=spiffe://...;Hash=...;URI=spiffe://..."}}

Every backend runs the same server, so an ``EchoResponse`` reads the same everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eastwest.support.spiffe import SpiffeId

XFCC_HEADER = "x-forwarded-client-cert"


@dataclass(frozen=True)
class XfccElement:
    """One element of an XFCC header: the certificate details one proxy added."""

    by: str | None = None
    hash: str | None = None
    uri: str | None = None
    subject: str | None = None
    dns: tuple[str, ...] = ()


def parse_xfcc(value: str) -> list[XfccElement]:
    """Parse an ``X-Forwarded-Client-Cert`` value into its elements, oldest first.

    Elements are separated by ``,``, pairs by ``;``; a value in double quotes may contain
    both separators and escaped quotes (Envoy quotes Subject this way).
    Raises ValueError on an unterminated quote or a pair without ``=``.
    """
    elements: list[XfccElement] = []
    pairs: list[tuple[str, str]] = []
    key: list[str] = []
    val: list[str] = []
    in_key, quoted, i = True, False, 0

    def end_pair() -> None:
        k = "".join(key).strip()
        if not k and not val:
            return
        if in_key:
            raise ValueError(f"XFCC pair without '=': {k!r} in {value!r}")
        pairs.append((k, "".join(val)))

    def end_element() -> None:
        if not pairs:
            return
        fields: dict[str, Any] = {"dns": []}
        for k, v in pairs:
            lk = k.lower()
            if lk == "dns":
                fields["dns"].append(v)
            elif lk in ("by", "hash", "uri", "subject"):
                fields[lk] = v
        fields["dns"] = tuple(fields["dns"])
        elements.append(XfccElement(**fields))
        pairs.clear()

    while i < len(value):
        ch = value[i]
        if quoted:
            if ch == "\\" and i + 1 < len(value):
                val.append(value[i + 1])
                i += 1
            elif ch == '"':
                quoted = False
            else:
                val.append(ch)
        elif in_key:
            if ch == "=":
                in_key = False
            elif ch in ";,":
                end_pair()
                key.clear()
                if ch == ",":
                    end_element()
            else:
                key.append(ch)
        else:
            if ch == '"' and not val:
                quoted = True
            elif ch in ";,":
                end_pair()
                key.clear()
                val.clear()
                in_key = True
                if ch == ",":
                    end_element()
            else:
                val.append(ch)
        i += 1
    if quoted:
        raise ValueError(f"unterminated quote in XFCC: {value!r}")
    end_pair()
    end_element()
    return elements


def last_xfcc_element(value: str) -> XfccElement | None:
    """The last element of an XFCC value: the one the server's own sidecar added.

    With ``APPEND_FORWARD`` (istiod's inbound setting) the server's sidecar keeps what the
    connection brought and appends one element for the peer it authenticated, so only the
    last element is the sidecar's word; everything before it may have been written by the
    client. It is found scanning from the end, because the client controls the beginning:
    an unbalanced quote it plants would make a left-to-right reading swallow the sidecar's
    element into a value of its own. The sidecar's element is well formed, so reading it
    backwards is exact. None when the value is empty or the last element is malformed.
    """
    quoted = False
    start = 0
    for i in range(len(value) - 1, -1, -1):
        ch = value[i]
        if ch == '"' and (i == 0 or value[i - 1] != "\\"):
            quoted = not quoted
        elif ch == "," and not quoted:
            start = i + 1
            break
    try:
        elements = parse_xfcc(value[start:])
    except ValueError:
        return None
    return elements[-1] if len(elements) == 1 else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for k, v in headers.items():
        if k.lower() == name:
            return v
    return None


@dataclass(frozen=True)
class EchoResponse:
    """What one request from a client workload produced.

    ``status`` is None when no HTTP response came back at all (connection refused, reset,
    time-out); ``error`` then says why. Fields read from the echo body are None when the
    answer did not come from the echo server (for example a proxy's 503).
    """

    status: int | None
    latency_s: float
    error: str | None = None
    cluster: str | None = None
    #: the service the echo server runs as (its SERVICE_NAME): who actually answered
    service: str | None = None
    pod: str | None = None
    namespace: str | None = None
    locality: str | None = None
    service_account: str | None = None
    request_headers: Mapping[str, str] = field(default_factory=dict)
    response_headers: Mapping[str, str] = field(default_factory=dict)
    body: str = ""
    url: str = ""

    @classmethod
    def from_http(
        cls, *, url: str, status: int, headers: Mapping[str, str], body: str, latency_s: float
    ) -> EchoResponse:
        """Type an HTTP answer; a non-echo body (a proxy error page) leaves echo fields None."""
        data: dict[str, Any] = {}
        if body.lstrip().startswith("{"):
            try:
                data = json.loads(body)
            except ValueError:
                data = {}
        return cls(
            status=status,
            latency_s=latency_s,
            cluster=data.get("cluster"),
            service=data.get("service"),
            pod=data.get("pod"),
            namespace=data.get("namespace"),
            locality=data.get("locality"),
            service_account=data.get("service_account"),
            request_headers=dict(data.get("headers") or {}),
            response_headers=dict(headers),
            body=body,
            url=url,
        )

    @classmethod
    def from_raw_http(cls, *, url: str, data: bytes, latency_s: float) -> EchoResponse:
        """Type an HTTP/1.1 answer read off a raw connection (status line, headers, body)."""
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            return cls.failed(url=url, error=f"no HTTP answer: {data[:80]!r}", latency_s=latency_s)
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        return cls.from_http(url=url, status=int(parts[1]), headers=headers, body=body.decode(errors="replace"), latency_s=latency_s)

    @classmethod
    def failed(cls, *, url: str, error: str, latency_s: float) -> EchoResponse:
        """A request that got no HTTP response."""
        return cls(status=None, latency_s=latency_s, error=error, url=url)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def xfcc_header(self) -> str | None:
        """The raw X-Forwarded-Client-Cert the app received, if any."""
        return _header(self.request_headers, XFCC_HEADER)

    @property
    def xfcc(self) -> list[XfccElement]:
        """The XFCC elements the echo server received (empty when the hop was not mTLS)."""
        value = _header(self.request_headers, XFCC_HEADER)
        return parse_xfcc(value) if value else []

    @property
    def sidecar_xfcc(self) -> XfccElement | None:
        """The XFCC element the server's sidecar added (the last one), if any: see :func:`last_xfcc_element`."""
        value = _header(self.request_headers, XFCC_HEADER)
        return last_xfcc_element(value) if value else None

    @property
    def peer_identity(self) -> SpiffeId | None:
        """The client's SPIFFE ID as the server's sidecar authenticated it: ``URI=`` of the last XFCC
        element, and only of that one (earlier elements may be the client's own words). None when the
        last element names no proxy (``By=``) or no URI: the sidecar vouched for no peer."""
        element = self.sidecar_xfcc
        if element is None or not element.by or not element.uri:
            return None
        try:
            return SpiffeId.parse(element.uri)
        except ValueError:
            return None

    @property
    def server_identity(self) -> SpiffeId | None:
        """The identity of the proxy that terminated mTLS: ``By=`` of the last XFCC element, if any."""
        element = self.sidecar_xfcc
        if element is None or not element.by:
            return None
        try:
            return SpiffeId.parse(element.by)
        except ValueError:
            return None

    @property
    def response_flags(self) -> str | None:
        """Envoy response flags of the client proxy (``UF``, ``NR``...), where the backend reports them."""
        return _header(self.response_headers, "x-eastwest-response-flags")

    @property
    def upstream_attempts(self) -> int | None:
        """How many upstream attempts the client proxy made (Envoy's ``%UPSTREAM_REQUEST_ATTEMPT_COUNT%``);
        more than one means earlier attempts failed and were retried, maybe on another endpoint."""
        value = _header(self.response_headers, "x-eastwest-upstream-attempts")
        return int(value) if value and value.isdigit() else None

    @property
    def retried(self) -> bool:
        return (self.upstream_attempts or 1) > 1

    @property
    def upstream_host(self) -> str | None:
        """The address the client proxy last sent this request to (``%UPSTREAM_HOST%``)."""
        value = _header(self.response_headers, "x-eastwest-upstream-host")
        return None if value in (None, "-") else value

    @property
    def upstream_failure(self) -> str | None:
        """Why the client proxy's last upstream connection failed (``%UPSTREAM_TRANSPORT_FAILURE_REASON%``;
        in a header Envoy writes its spaces as underscores)."""
        value = _header(self.response_headers, "x-eastwest-upstream-failure")
        return None if value in (None, "-", "") else value

    def summary(self) -> str:
        """One line for logs and failure messages."""
        if self.status is None:
            return f"{self.url} -> no response ({self.error}) in {self.latency_s * 1000:.0f} ms"
        where = f"cluster={self.cluster} pod={self.pod} locality={self.locality}" if self.cluster else "not echo"
        peer = self.peer_identity
        flags = f" flags={self.response_flags}" if self.response_flags not in (None, "-") else ""
        if self.retried:
            flags += f" attempts={self.upstream_attempts}"
        if self.service and self.cluster:
            where = f"service={self.service} " + where
        return (
            f"{self.url} -> {self.status} {where} peer={peer or '-'}{flags} "
            f"in {self.latency_s * 1000:.0f} ms"
        )

    def raw(self) -> str:
        """The full evidence: status, headers and body as received."""
        if self.status is None:
            return self.summary()
        head = "\n".join(f"{k}: {v}" for k, v in self.response_headers.items())
        return f"HTTP {self.status} from {self.url}\n{head}\n\n{self.body.strip()}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view for reports."""
        return {
            "url": self.url,
            "status": self.status,
            "error": self.error,
            "latency_ms": round(self.latency_s * 1000, 2),
            "cluster": self.cluster,
            "service": self.service,
            "pod": self.pod,
            "upstream_attempts": self.upstream_attempts,
            "locality": self.locality,
            "peer_identity": str(self.peer_identity) if self.peer_identity else None,
            "response_flags": self.response_flags,
            "body": self.body,
        }


def as_dicts(responses: list[EchoResponse]) -> list[dict[str, Any]]:
    """Serialize a batch of responses."""
    return [r.to_dict() for r in responses]
