"""The lab protocol on the socket: JSON lines, the codec, dispatch by name, the client connection.

A request goes over the socket as ``{"op": ..., "args": {...}}`` and comes back as
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": ..., "type": ...}``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import socket
import threading
import types
import typing
from typing import Any, TypeVar, Union

from eastwest.backends.lab.protocol import REQUESTS, Request
from eastwest.support.errors import (
    BackendUnavailable,
    ConfigError,
    FaultNotInjected,
    FaultUnsupported,
    LabError,
    ManifestError,
    MeshError,
)

R = TypeVar("R")
log = logging.getLogger("eastwest.lab")
ERRORS: dict[str, type[MeshError]] = {
    cls.__name__: cls for cls in (ConfigError, ManifestError, BackendUnavailable, LabError, FaultUnsupported, FaultNotInjected)
}


# ---- codec -----------------------------------------------------------------------------


def to_wire(value: Any) -> Any:
    """Dataclasses, lists, dicts and bytes (base64) to JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_wire(v) for k, v in value.items()}
    return value


def from_wire(tp: Any, value: Any) -> Any:
    """The inverse of :func:`to_wire` for the type ``tp``."""
    origin = typing.get_origin(tp)
    if tp is Any or tp is None or tp is type(None):
        return value
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else from_wire(args[0], value)
    if origin is list:
        (item,) = typing.get_args(tp)
        return [from_wire(item, v) for v in value]
    if origin is dict:
        _, item = typing.get_args(tp)
        return {k: from_wire(item, v) for k, v in value.items()}
    if tp is bytes:
        return base64.b64decode(value)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        cls: Any = tp
        return cls(**{f.name: from_wire(hints[f.name], value[f.name]) for f in dataclasses.fields(tp) if f.name in value})
    if tp is float and isinstance(value, int):
        return float(value)
    return value


def encode_request(request: Request[Any]) -> bytes:
    return json.dumps({"op": request.op, "args": to_wire(request)}).encode() + b"\n"


def decode_request(line: bytes) -> Request[Any]:
    data = json.loads(line)
    cls = REQUESTS.get(str(data.get("op")))
    if cls is None:
        raise ConfigError(f"unknown lab operation {data.get('op')!r}; known: {', '.join(REQUESTS)}")
    result: Request[Any] = from_wire(cls, data.get("args") or {})
    return result


def handle(handler: object, line: bytes) -> bytes:
    """Decode one request line, run ``handler.rpc_<op>(request)``, encode the reply line.

    Errors of eastwest's own become ``{"ok": false}`` replies that name their type; the
    connection stays usable.
    """
    try:
        request = decode_request(line)
        result = getattr(handler, f"rpc_{request.op}")(request)
        reply: dict[str, Any] = {"ok": True, "result": to_wire(result)}
    except MeshError as exc:
        reply = {"ok": False, "error": str(exc), "type": type(exc).__name__}
    except Exception as exc:  # a bug in the lab: report it, keep serving
        log.exception("request failed")
        reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "type": "LabError"}
    return json.dumps(reply).encode() + b"\n"


class Connection:
    """The client end: one request at a time over a connected socket."""

    def __init__(self, sock: socket.socket, name: str):
        self.name = name
        self.sock = sock
        self.file = sock.makefile("rwb")
        self.lock = threading.Lock()

    def request(self, request: Request[R]) -> R:
        with self.lock:
            try:
                self.file.write(encode_request(request))
                self.file.flush()
                line = self.file.readline()
            except OSError as exc:
                raise LabError(f"lab {self.name!r} connection lost during {request.op}: {exc}") from None
        if not line:
            raise LabError(f"lab {self.name!r} closed the connection during {request.op} (did the supervisor die?)")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise ERRORS.get(reply.get("type", ""), LabError)(reply.get("error", "unknown error"))
        result: R = from_wire(request.Reply, reply.get("result"))
        return result

    def close(self) -> None:
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass
