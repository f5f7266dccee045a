"""The echo server every backend runs: one JSON object per request naming who served it.

Response body (``Content-Type: application/json``)::

    {
      "service": "echo",          # SERVICE_NAME, or the first part of POD_NAME
      "version": "v1",            # VERSION
      "cluster": "eu",            # CLUSTER
      "pod": "echo-eu-0",         # POD_NAME
      "namespace": "echo",        # POD_NAMESPACE
      "service_account": "echo",  # SERVICE_ACCOUNT
      "locality": "eu/eu-a",      # LOCALITY (region/zone)
      "ip": "10.20.0.11",         # POD_IP
      "method": "GET", "path": "/", "host": "echo.echo.svc.cluster.local",
      "remote_addr": "127.0.0.6",
      "headers": {"X-Forwarded-Client-Cert": "...", ...}   # request headers as received
    }

Fault knobs, as query parameters: ``status=<code>`` answers with that HTTP status,
``delay=<seconds>`` (at most 10) waits before answering. ``GET /healthz`` answers 200 ``ok``.

Run: ``python -m eastwest.apps.echo --port 8080 [--bind 0.0.0.0]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_DELAY_S = 10.0


def identity() -> dict[str, str]:
    """Who this server is, from its environment (set by the Deployment's env and downward API)."""
    pod = os.environ.get("POD_NAME", "")
    return {
        "service": os.environ.get("SERVICE_NAME", pod.split("-")[0] if pod else "echo"),
        "version": os.environ.get("VERSION", ""),
        "cluster": os.environ.get("CLUSTER", ""),
        "pod": pod,
        "namespace": os.environ.get("POD_NAMESPACE", ""),
        "service_account": os.environ.get("SERVICE_ACCOUNT", ""),
        "locality": os.environ.get("LOCALITY", ""),
        "ip": os.environ.get("POD_IP", ""),
    }


class EchoHandler(BaseHTTPRequestHandler):
    server_version = "eastwest-echo/0.1"
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body are written separately: without NODELAY, Nagle + delayed ACK add 40 ms
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # quiet: the harness records responses itself

    def _answer(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._send(200, b"ok\n", "text/plain")
            return
        query = parse_qs(url.query)
        status = 200
        try:
            if "delay" in query:
                time.sleep(min(float(query["delay"][0]), MAX_DELAY_S))
            if "status" in query:
                status = int(query["status"][0])
                if not 200 <= status <= 599:
                    raise ValueError(status)
        except ValueError:
            self._send(400, b"bad status or delay parameter\n", "text/plain")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        body = dict(self.server.identity)  # type: ignore[attr-defined]
        body.update(
            method=self.command,
            path=self.path,
            host=self.headers.get("Host", ""),
            remote_addr=self.client_address[0],
            headers={k: v for k, v in self.headers.items()},
        )
        self._send(status, json.dumps(body).encode() + b"\n", "application/json")

    def _send(self, status: int, payload: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer


def serve(bind: str, port: int) -> ThreadingHTTPServer:
    """Start serving in a background thread and return the server."""
    server = ThreadingHTTPServer((bind, port), EchoHandler)
    server.daemon_threads = True
    server.identity = identity()  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, name="echo", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="echo", description="eastwest echo server")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    parser.add_argument("--bind", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    args = parser.parse_args(argv)
    try:
        server = serve(args.bind, args.port)
    except OSError as exc:
        print(f"echo: cannot listen on {args.bind}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"echo: listening on {args.bind}:{args.port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
