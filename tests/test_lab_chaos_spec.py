"""What the lab reads of a Chaos Mesh document, and what it refuses by name (no lab needed)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from eastwest.backends.lab.chaos import reading, spec
from eastwest.backends.lab.chaos.select import Candidate, count, select
from eastwest.support.errors import FaultUnsupported, ManifestError


def doc(kind: str, body: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": spec.API_VERSION, "kind": kind, "metadata": {"name": "f", "namespace": "echo", **meta},
            "spec": {"mode": "all", "selector": {"labelSelectors": {"app": "echo"}}, **body}}


def test_defaults_are_chaos_mesh_webhook_defaults() -> None:
    fault = reading.parse(doc("NetworkChaos", {"action": "partition", "target": {"mode": "one", "selector": {"labelSelectors": {"app": "x"}}}}), "t")
    assert fault.direction == "to"
    assert fault.pods.selector.namespaces == ("echo",), "an empty selector.namespaces is the experiment's own namespace"
    assert fault.target is not None and fault.target.selector.namespaces == ("echo",)
    assert fault.duration is None


@pytest.mark.parametrize("body, value", [
    ({"action": "loss", "loss": {"loss": "30", "correlation": "0"}}, ("probability", 0.3)),
    ({"action": "delay", "delay": {"latency": "100ms", "jitter": "10ms"}}, ("latency", 0.1)),
    ({"action": "bandwidth", "bandwidth": {"rate": "1mbps", "limit": 100, "buffer": 10}}, ("rate", 1_000_000)),
    ({"action": "bandwidth", "bandwidth": {"rate": "8mbit", "limit": 100, "buffer": 10}}, ("rate", 1_000_000)),
])
def test_parameters_keep_their_chaos_mesh_units(body: dict[str, Any], value: tuple[str, float]) -> None:
    fault = reading.parse(doc("NetworkChaos", body), "t")
    params = fault.netem if fault.netem is not None else fault.bandwidth
    assert getattr(params, value[0]) == pytest.approx(value[1])


def test_durations_are_go_durations() -> None:
    assert spec.go_duration("1m30s") == 90
    assert spec.go_duration("250ms") == 0.25
    with pytest.raises(ValueError):
        spec.go_duration("30 seconds")


@pytest.mark.parametrize("kind, body, named", [
    ("DNSChaos", {"action": "error"}, "DNSChaos is not supported by the lab: the lab has no DNS"),
    ("TimeChaos", {"timeOffset": "-1h"}, "TimeChaos is not supported by the lab"),
    ("StressChaos", {}, "StressChaos is not supported by the lab"),
    ("NetworkChaos", {"action": "delay", "delay": {"latency": "1s", "correlation": "25"}}, "spec.delay.correlation"),
    ("NetworkChaos", {"action": "delay", "delay": {"latency": "1s", "reorder": {"reorder": "1", "gap": 1}}}, "spec.delay.reorder"),
    ("NetworkChaos", {"action": "loss", "loss": {"loss": "1", "correlation": "50"}}, "spec.loss.correlation"),
    ("NetworkChaos", {"action": "netem", "delay": {"latency": "1s"}}, "spec.action netem"),
    ("NetworkChaos", {"action": "delay", "delay": {"latency": "1s"}, "loss": {"loss": "1"}}, "spec.loss"),
    ("NetworkChaos", {"action": "partition", "device": "eth1"}, "spec.device"),
    ("NetworkChaos", {"action": "partition", "externalTargets": ["eu.example.com"]}, "spec.externalTargets[0] 'eu.example.com'"),
    ("NetworkChaos", {"action": "bandwidth", "bandwidth": {"rate": "1mbps", "limit": 1, "buffer": 1, "peakrate": 2}}, "spec.bandwidth.peakrate"),
    ("NetworkChaos", {"action": "partition", "remoteCluster": "eu"}, "spec.remoteCluster"),
    ("PodChaos", {"action": "pod-kill", "duration": "10s"}, "spec.duration"),
    ("PodChaos", {"action": "pod-kill", "containerNames": ["echo"]}, "spec.containerNames"),
    ("PodChaos", {"action": "pod-failure", "gracePeriod": 5}, "spec.gracePeriod"),
    ("PodChaos", {"action": "pod-kill", "selector": {"nodes": ["us-node"]}}, "spec.selector.nodes"),
    ("PodChaos", {"action": "pod-kill", "selector": {"pods": {"echo": ["echo-us-0"]}, "labelSelectors": {"app": "echo"}}}, "spec.selector.pods"),
    ("PodChaos", {"action": "pod-kill", "selector": {"fieldSelectors": {"spec.nodeName": "x"}}}, "spec.selector.fieldSelectors.spec.nodeName"),
    ("PodChaos", {"action": "pod-kill", "mode": "one", "value": "1"}, "spec.value"),
    ("PodChaos", {"action": "pod-kill", "scheduler": {"cron": "@every 1m"}}, "spec.scheduler"),
    ("HTTPChaos", {"target": "Response", "port": 8080, "abort": True}, "spec.target Response"),
    ("HTTPChaos", {"target": "Request", "port": 8080, "replace": {"code": 500}}, "spec.replace"),
    ("HTTPChaos", {"target": "Request", "port": 8080, "abort": True, "delay": "1s"}, "spec.abort with spec.delay"),
    ("HTTPChaos", {"target": "Request", "port": 8080, "abort": True, "tls": {}}, "spec.tls"),
])
def test_what_the_lab_cannot_honour_is_refused_by_name(kind: str, body: dict[str, Any], named: str) -> None:
    with pytest.raises(FaultUnsupported) as refused:
        reading.parse(doc(kind, body), "chaos.yaml")
    assert named in str(refused.value), str(refused.value)
    assert "chaos.yaml" in str(refused.value), "the refusal names the document"


@pytest.mark.parametrize("kind, body, named", [
    ("NetworkChaos", {"action": "delay", "delay": {"latency": "1s"}, "direction": "from"}, "targets is empty"),
    ("NetworkChaos", {"action": "loss", "loss": {"loss": "101"}}, "between 0 and 100"),
    ("NetworkChaos", {"action": "delay"}, "needs its parameters in spec.delay"),
    ("NetworkChaos", {"action": "bandwidth", "bandwidth": {"rate": "fast", "limit": 1, "buffer": 1}}, "spec.bandwidth.rate"),
    ("PodChaos", {"action": "container-kill"}, "spec.containerNames"),
    ("PodChaos", {"action": "pod-kill", "mode": "fixed-percent", "value": "150"}, "out of range"),
    ("PodChaos", {"action": "pod-failure", "duration": "soon"}, "spec.duration"),
    ("HTTPChaos", {"target": "Request", "abort": True}, "spec.port"),
])
def test_invalid_values_are_refused_as_chaos_mesh_webhooks_refuse_them(kind: str, body: dict[str, Any], named: str) -> None:
    with pytest.raises(ManifestError) as refused:
        reading.parse(doc(kind, body), "chaos.yaml")
    assert named in str(refused.value), str(refused.value)


def pods(n: int) -> list[Candidate]:
    return [Candidate("echo", f"echo-{i}", f"10.0.0.{i}", "echo", {"app": "echo", "i": str(i)}) for i in range(n)]


@pytest.mark.parametrize("mode, value, available, expected", [
    ("one", "", 5, 1), ("all", "", 5, 5), ("fixed", "2", 5, 2), ("fixed", "9", 5, 5),
    ("fixed-percent", "50", 5, 3), ("fixed-percent", "10", 5, 1),  # ceil: at least one pod
])
def test_modes_take_as_many_pods_as_chaos_mesh(mode: str, value: str, available: int, expected: int) -> None:
    assert count(mode, value, available, random.Random(1)) == expected


def test_random_max_percent_takes_at_most_its_share() -> None:
    rng = random.Random(7)
    seen = {count("random-max-percent", "40", 10, rng) for _ in range(200)}
    assert seen == {0, 1, 2, 3, 4}, seen


def test_selectors_are_anded() -> None:
    fault = reading.parse(doc("PodChaos", {"action": "pod-kill", "selector": {
        "namespaces": ["echo"], "labelSelectors": {"app": "echo"},
        "expressionSelectors": [{"key": "i", "operator": "In", "values": ["1", "2", "3"]}],
        "fieldSelectors": {"status.podIP": "10.0.0.2"}}}), "t")
    assert [p.name for p in select(pods(5), fault.pods)] == ["echo-2"]
    named = reading.parse(doc("PodChaos", {"action": "pod-kill", "selector": {"pods": {"echo": ["echo-4", "echo-9"]}}}), "t")
    assert [p.name for p in select(pods(5), named.pods)] == ["echo-4"]
    elsewhere = reading.parse(doc("PodChaos", {"action": "pod-kill", "selector": {"namespaces": ["sleep"]}}), "t")
    assert select(pods(5), elsewhere.pods) == []
