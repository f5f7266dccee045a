"""Faults on Kubernetes: Chaos Mesh resources waited on by their conditions, HTTPChaos on sidecars as Istio's fault filter.

A stand-in API server plays Chaos Mesh's controller: it fills ``status.conditions`` and container
records the way ``controllers/common/condition/controller.go`` does, holds a deleted experiment
(finalizer) until it has recovered, and can report a failed injection or a selector that matched
nothing. The tests check what the kube cluster waits for and what it refuses.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from eastwest.backends.kube import chaos
from eastwest.backends.kube.api import Command as Argv
from eastwest.backends.kube.api import ExecResult, Objects
from eastwest.backends.kube.mesh import KubeCluster
from eastwest.settings import Timeouts
from eastwest.support.errors import FaultNotInjected, FaultUnsupported
from eastwest.support.manifest import Document
from eastwest.support.topology import load_topology
from tests.kube_fakes import FakeApi, World

TOPOLOGY = load_topology(Path(__file__).resolve().parents[1] / "manifests" / "topology.yaml")
SELECTOR = {"namespaces": ["echo"], "labelSelectors": {"app": "echo"}}
POD_KILL = Document({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "PodChaos", "metadata": {"name": "kill-echo", "namespace": "echo"},
                     "spec": {"action": "pod-kill", "mode": "all", "selector": SELECTOR}}, "chaos/pod-kill.yaml")
HTTP_ABORT = Document({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "HTTPChaos", "metadata": {"name": "abort-echo", "namespace": "echo"},
                       "spec": {"mode": "all", "selector": SELECTOR, "target": "Request", "port": 8080, "path": "*", "abort": True}},
                      "chaos/http-abort.yaml")


class ChaosMeshApi(FakeApi):
    """Chaos Mesh's controller, as far as a client sees it through GETs."""

    def __init__(self, world: World, *, outcome: str = "injected", sidecars: bool = False):
        super().__init__(world, "us")
        self.outcome, self.sidecars = outcome, sidecars
        self.polls = 0
        self.world.crds["us"] = {"chaos-mesh.org/v1alpha1 PodChaos"}
        self.filtered: set[str] = set()

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        found = super().get(api_version, kind, name, namespace)
        if found is None or not api_version.startswith("chaos-mesh.org"):
            return found
        self.polls += 1
        record: dict[str, Any] = {"id": "echo/echo-0", "phase": "Not Injected", "events": []}
        conditions = {"Selected": "True", "AllInjected": "False", "AllRecovered": "True", "Paused": "False"}
        if self.outcome == "injected" and self.polls >= 2:  # lands on the second look
            record["phase"] = "Injected"
            conditions.update(AllInjected="True", AllRecovered="False")
        elif self.outcome == "failed":
            record["events"] = [{"type": "Failed", "operation": "Apply", "message": "unable to set tcs for pod: Specified qdisc not found"}]
        elif self.outcome == "nothing":
            conditions.update(Selected="False", Paused="True")
        found["status"] = {"conditions": [{"type": t, "status": s} for t, s in conditions.items()],
                           "experiment": {"containerRecords": [record] if conditions["Selected"] == "True" else []}}
        return found

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        if not api_version.startswith("chaos-mesh.org"):
            return super().delete(api_version, kind, name, namespace)
        self.deleted_at = self.polls
        return True  # a finalizer holds it: gone two GETs later

    def list(self, api_version: str, kind: str, namespace: str | None = None, labels: str | None = None) -> Objects:
        if kind == "Pod" and namespace == "echo":
            containers = [{"name": "echo"}, *([{"name": "istio-proxy"}] if self.sidecars else [])]
            return [{"metadata": {"name": "echo-0", "namespace": "echo"}, "spec": {"containers": containers},
                     "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}]
        return super().list(api_version, kind, namespace, labels)

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        if body["kind"] == "EnvoyFilter":
            self.filtered.add("echo-0")
        return super().apply(body)

    def exec(self, namespace: str, pod: str, container: str, command: Argv, *, timeout: float) -> ExecResult:
        dump = '{"configs": [{"name": "envoy.filters.http.fault"}]}' if pod in self.filtered else '{"configs": []}'
        return ExecResult(dump, "", 0)


def gone_after_two_polls(api: ChaosMeshApi) -> None:
    def get(self: ChaosMeshApi, api_version: str, kind: str, name: str, namespace: str | None = None) -> Any:
        if getattr(self, "deleted_at", None) is not None and self.polls >= self.deleted_at + 2 and api_version.startswith("chaos-mesh"):
            return None
        return ChaosMeshApi.get(self, api_version, kind, name, namespace)

    api.get = get.__get__(api)  # type: ignore[method-assign]


def cluster(api: ChaosMeshApi) -> KubeCluster:
    return KubeCluster(TOPOLOGY, "us", api, Timeouts(apply=2, poll_interval=0.01), chaos_mesh=True)


def test_a_fault_returns_once_selected_and_all_injected_and_always_recovers() -> None:
    api = ChaosMeshApi(World(TOPOLOGY))
    gone_after_two_polls(api)
    with cluster(api).inject(POD_KILL) as status:
        assert status.selected and status.all_injected and status.records == ("echo/echo-0: Injected",)
        assert api.polls >= 2
        applied = api.world.objects[("PodChaos", "echo", "kill-echo", "us")]
        assert applied["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "eastwest"
    assert getattr(api, "deleted_at", None) is not None  # deleted, and waited until gone


def test_a_failed_record_event_fails_fast_and_still_recovers() -> None:
    api = ChaosMeshApi(World(TOPOLOGY), outcome="failed")
    gone_after_two_polls(api)
    with pytest.raises(FaultNotInjected, match="Specified qdisc not found"):
        with cluster(api).inject(POD_KILL):
            pass
    assert api.polls == 1 + 2 and api.deleted_at == 1  # failed on the first look; recovered anyway


def test_a_selector_that_matches_nothing_is_named() -> None:
    api = ChaosMeshApi(World(TOPOLOGY), outcome="nothing")
    gone_after_two_polls(api)
    with pytest.raises(FaultNotInjected, match="matched no pod"):
        with cluster(api).inject(POD_KILL):
            pass


def test_without_chaos_mesh_only_istio_faults_are_offered() -> None:
    api = ChaosMeshApi(World(TOPOLOGY))
    plain = KubeCluster(TOPOLOGY, "us", api, Timeouts(apply=2, poll_interval=0.01), chaos_mesh=False)
    assert plain.faults.supported == chaos.ISTIO_HTTP_FAULTS
    with pytest.raises(FaultUnsupported, match="PodChaos/pod-kill is not supported here .Chaos Mesh is not installed"):
        plain.faults.inject(POD_KILL)


def test_http_chaos_on_sidecar_pods_becomes_istio_fault_injection() -> None:
    api = ChaosMeshApi(World(TOPOLOGY), sidecars=True)
    with cluster(api).inject(HTTP_ABORT) as status:
        assert status.all_injected and "chaos-mesh#4389" in status.message
        envoy_filter = api.world.objects[("EnvoyFilter", "echo", "httpchaos-abort-echo", "us")]
        patch = envoy_filter["spec"]["configPatches"][0]
        assert patch["match"]["context"] == "SIDECAR_INBOUND" and patch["match"]["listener"]["filterChain"]["destinationPort"] == 8080
        assert patch["patch"]["value"]["typed_config"]["abort"]["http_status"] == chaos.ABORT_STATUS
        assert ("HTTPChaos", "echo", "abort-echo", "us") not in api.world.objects  # Chaos Mesh's resource is not created
        api.filtered.clear()  # the filter leaves the sidecars once the EnvoyFilter is deleted
    assert ("EnvoyFilter", "echo", "httpchaos-abort-echo", "us") not in api.world.objects


@pytest.mark.parametrize("field, value, named", [
    ("method", "GET", "method"), ("mode", "one", "mode 'one'"), ("path", "/api", "path '/api'"), ("target", "Response", "target"),
    ("duration", "30s", "duration"), ("replace", {"code": 500}, "replace"),
])
def test_what_istio_fault_injection_cannot_honour_is_refused(field: str, value: Any, named: str) -> None:
    body = copy.deepcopy(HTTP_ABORT.body)
    body["spec"][field] = value
    with pytest.raises(FaultUnsupported, match=f"cannot honour: .*{named}"):
        chaos.http_chaos_envoy_filter(body)


def test_fault_names() -> None:
    assert chaos.fault_name(POD_KILL.body) == "PodChaos/pod-kill"
    assert chaos.fault_name(HTTP_ABORT.body) == "HTTPChaos/abort"
    delay = copy.deepcopy(HTTP_ABORT.body)
    delay["spec"].pop("abort")
    delay["spec"]["delay"] = "2s"
    assert chaos.fault_name(delay) == "HTTPChaos/delay"
    assert chaos.http_chaos_envoy_filter(delay)["spec"]["configPatches"][0]["patch"]["value"]["typed_config"]["delay"]["fixed_delay"] == "2s"


def test_http_chaos_on_pods_without_a_sidecar_needs_chaos_mesh() -> None:
    api = ChaosMeshApi(World(TOPOLOGY), sidecars=False)
    plain = KubeCluster(TOPOLOGY, "us", api, Timeouts(apply=2, poll_interval=0.01), chaos_mesh=False)
    with pytest.raises(FaultUnsupported, match="HTTPChaos/abort is not supported here .Chaos Mesh is not installed"):
        plain.faults.inject(HTTP_ABORT)
    assert not api.world.objects
