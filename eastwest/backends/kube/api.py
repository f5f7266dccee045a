"""A cluster's API server, as the kube backends use it: one official ``kubernetes`` ApiClient per cluster.

:class:`ClusterApi` is the narrow interface the backends talk to (server-side apply, get, list,
delete, exec, the pod proxy, discovery); :class:`KubeApi` implements it with the client's dynamic
client (every kind, CRDs included) and ``kubernetes.stream`` for exec. Self-tests pass a recording
stand-in. Objects are applied server-side with field manager ``eastwest`` and strict field
validation, so an unknown field is refused by the API server as kubectl's default would.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from eastwest.support.errors import MeshError

log = logging.getLogger("eastwest.kube")

FIELD_MANAGER = "eastwest"
#: a list of objects (named here: a method called ``list`` hides the builtin inside the classes below)
Objects = list[dict[str, Any]]
#: the argv of a command run in a container
Command = list[str]


class ApiError(MeshError):
    """The API server refused a request; the message names the object and the server's reason."""


@dataclass(frozen=True)
class ExecResult:
    """What a command run in a container printed, and its exit status (None: it did not end in time)."""

    stdout: str
    stderr: str
    returncode: int | None


class ClusterApi(Protocol):
    """What the kube backends ask of one cluster's API server."""

    def apply(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None: ...

    def list(self, api_version: str, kind: str, namespace: str | None = None, labels: str | None = None) -> Objects: ...

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool: ...

    def exec(self, namespace: str, pod: str, container: str, command: Command, *, timeout: float) -> ExecResult: ...

    def pod_proxy(self, namespace: str, pod: str, port: int, path: str) -> str: ...

    def serves(self, api_version: str, kind: str) -> bool: ...

    def logs(self, namespace: str, pod: str, container: str, lines: int) -> str: ...


def ref(body: dict[str, Any]) -> str:
    meta = body.get("metadata") or {}
    ns = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{body.get('kind')} {ns}{meta.get('name')}"


class KubeApi:
    """:class:`ClusterApi` over the official client, for one kubeconfig context."""

    def __init__(self, kubeconfig: Path | None, context: str, *, request_timeout: float = 30.0):
        from kubernetes import config
        from kubernetes.client import CoreV1Api
        from kubernetes.dynamic import DynamicClient

        self.context = context
        try:
            self.client = config.new_client_from_config(config_file=str(kubeconfig) if kubeconfig else None, context=context)
        except Exception as exc:  # noqa: BLE001 - the client raises ConfigException, ValueError, OSError
            raise ApiError(f"kube context {context!r}: cannot load it from {kubeconfig or 'the default kubeconfig'}: {exc}") from None
        self.request_timeout = request_timeout
        self.core = CoreV1Api(self.client)
        self._dynamic: Any = None
        self._dynamic_class = DynamicClient

    @property
    def dynamic(self) -> Any:
        if self._dynamic is None:  # discovery runs on first use, not on construction (the cluster may not be up yet)
            self._dynamic = self._dynamic_class(self.client)
        return self._dynamic

    def _resource(self, api_version: str, kind: str) -> Any:
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            return self.dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            self.dynamic.invalidate_cache()  # a CRD installed since discovery ran
            try:
                return self.dynamic.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError:
                raise ApiError(f"{self.context}: the API server serves no {kind} in {api_version} (is its CRD installed?)") from None

    def serves(self, api_version: str, kind: str) -> bool:
        try:
            self._resource(api_version, kind)
        except ApiError:
            return False
        return True

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.dynamic.exceptions import DynamicApiError

        try:
            return fn(*args, _request_timeout=self.request_timeout, **kwargs)
        except DynamicApiError as exc:
            if exc.status == 404:
                return None
            raise ApiError(f"{self.context}: {what}: {exc.status} {exc.reason}: {_server_message(exc.body)}") from None

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        meta = body["metadata"]
        resource = self._resource(body["apiVersion"], body["kind"])
        result = self._call(f"applying {ref(body)}", self.dynamic.server_side_apply, resource, body=body, name=meta["name"],
                            namespace=meta.get("namespace"), field_manager=FIELD_MANAGER, force_conflicts=True,
                            query_params=[("fieldValidation", "Strict")])
        if result is None:
            raise ApiError(f"{self.context}: applying {ref(body)}: 404 (is its namespace there?)")
        return dict(result.to_dict())

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        result = self._call(f"reading {kind} {name}", self._resource(api_version, kind).get, name=name, namespace=namespace)
        return None if result is None else dict(result.to_dict())

    def list(self, api_version: str, kind: str, namespace: str | None = None, labels: str | None = None) -> Objects:
        result = self._call(f"listing {kind}", self._resource(api_version, kind).get, namespace=namespace, label_selector=labels)
        return [] if result is None else [dict(item) for item in result.to_dict().get("items", [])]

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        resource = self._resource(api_version, kind)
        return self._call(f"deleting {kind} {name}", resource.delete, name=name, namespace=namespace) is not None

    def exec(self, namespace: str, pod: str, container: str, command: Command, *, timeout: float) -> ExecResult:
        from kubernetes.client.exceptions import ApiException
        from kubernetes.stream import stream

        try:
            ws = stream(self.core.connect_get_namespaced_pod_exec, pod, namespace, container=container, command=command,
                        stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
        except ApiException as exc:
            raise ApiError(f"{self.context}: exec in {namespace}/{pod} ({container}): {exc.status} {exc.reason}") from None
        out: list[str] = []
        err: list[str] = []
        deadline = time.monotonic() + timeout
        try:
            while ws.is_open() and time.monotonic() < deadline:
                ws.update(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
                out.append(ws.read_stdout())
                err.append(ws.read_stderr())
            code = ws.returncode if not ws.is_open() else None
        finally:
            ws.close()
        return ExecResult("".join(out), "".join(err), code)

    def pod_proxy(self, namespace: str, pod: str, port: int, path: str) -> str:
        from kubernetes.client.exceptions import ApiException

        try:
            return str(self.core.connect_get_namespaced_pod_proxy_with_path(f"{pod}:{port}", namespace, path.lstrip("/"),
                                                                              _request_timeout=self.request_timeout))
        except ApiException as exc:
            raise ApiError(f"{self.context}: GET {path} from {namespace}/{pod}:{port}: {exc.status} {exc.reason}") from None


    def logs(self, namespace: str, pod: str, container: str, lines: int) -> str:
        from kubernetes.client.exceptions import ApiException

        try:
            return str(self.core.read_namespaced_pod_log(pod, namespace, container=container, tail_lines=lines,
                                                         _request_timeout=self.request_timeout))
        except ApiException as exc:
            raise ApiError(f"{self.context}: logs of {namespace}/{pod} ({container}): {exc.status} {exc.reason}") from None


def _server_message(body: Any) -> str:
    import json

    try:
        return str(json.loads(body).get("message", body))
    except (TypeError, ValueError):
        return str(body)[:300]
