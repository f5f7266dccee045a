"""The lab's istiod measured against the real istiod: its configuration for every proxy of every
scenario compared with istiod's goldens (goldens/, from `make goldens`), field by field, with only
goldens/allowlist.yaml's differences accepted. No Go needed: the goldens are committed."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from eastwest.backends.lab.golden_compare import Difference, compare, load_allowlist, unexplained
from eastwest.backends.lab.istiod import outbound
from eastwest.backends.lab.world import SCENARIOS, build_world
from eastwest.backends.lab.world_json import dump_world
from eastwest.support import install
from tests.labs import MANIFESTS, running_lab

GOLDENS = Path(__file__).resolve().parents[1] / "goldens"
ALLOWLIST = GOLDENS / "allowlist.yaml"


@pytest.fixture(scope="module")
def differences() -> dict[str, list[Difference]]:
    return {scenario: compare(MANIFESTS, GOLDENS, scenario) for scenario in SCENARIOS}


def _lines(items: list[Any]) -> str:
    return "\n  ".join(str(i) for i in items)


def test_every_suite_manifest_is_in_a_golden_scenario() -> None:
    suites = MANIFESTS / install.SUITE_MANIFESTS
    files = {str(p.relative_to(suites)) for p in suites.rglob("*.yaml")}
    covered = {f for paths in SCENARIOS.values() for f in paths}
    assert files <= covered, f"suite manifests in no golden scenario (add them to world.SCENARIOS, then `make goldens`): {sorted(files - covered)}"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_committed_world_is_what_the_manifests_make(scenario: str) -> None:
    """The goldens were generated from today's manifests: world.json is rendered again and must be identical."""
    committed = (GOLDENS / scenario / "world.json").read_text()
    assert committed == dump_world(build_world(MANIFESTS, scenario)), (
        f"goldens/{scenario}/world.json is stale: manifests/ or the lab's world changed; run `make goldens` and commit"
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_lab_config_matches_istiod_except_what_the_allowlist_explains(scenario: str, differences: dict[str, list[Difference]]) -> None:
    left, _ = unexplained(differences[scenario], load_allowlist(ALLOWLIST))
    assert not left, f"the lab differs from istiod's goldens where goldens/allowlist.yaml does not say why ({len(left)}):\n  {_lines(left)}"


def test_every_allowlist_entry_still_explains_a_difference(differences: dict[str, list[Difference]]) -> None:
    every = [d for ds in differences.values() for d in ds]
    _, unused = unexplained(every, load_allowlist(ALLOWLIST))
    assert not unused, f"allowlist entries that explain no difference any more (remove them):\n  {_lines(unused)}"


def test_a_malformed_allowlist_entry_is_refused_by_number(tmp_path: Path) -> None:
    bad = tmp_path / "allowlist.yaml"
    bad.write_text('- {proxy: "*", resource: "*", field: "*", reason: "ok"}\n- {proxy: "*", resource: "*", field: "*"}\n')
    with pytest.raises(ValueError, match="entry 2 must have exactly proxy, resource, field and a non-empty reason"):
        load_allowlist(bad)


# ---- the comparison catches drifts ------------------------------------------------------------------


def _new_differences(scenario: str) -> list[Difference]:
    left, _ = unexplained(compare(MANIFESTS, GOLDENS, scenario), load_allowlist(ALLOWLIST))
    return left


def test_dropping_outlier_detection_is_named_by_proxy_resource_and_field(monkeypatch: pytest.MonkeyPatch) -> None:
    real = outbound.traffic_policy

    def without_outlier_detection(policy: dict[str, Any], plan: Any) -> dict[str, Any]:
        return real({k: v for k, v in policy.items() if k != "outlierDetection"}, plan)

    monkeypatch.setattr(outbound, "traffic_policy", without_outlier_detection)
    left = _new_differences("locality-failover")
    named = {(d.proxy, d.resource, d.field) for d in left}
    assert ("locality-failover/us-sleep-sleep", "CDS outbound|80||echo.echo.svc.cluster.local", "outlier_detection.consecutive_5xx") in named, \
        f"expected the dropped outlier detection to be named for us-sleep-sleep, observed:\n  {_lines(left)}"
    message = str(next(d for d in left if d.field == "outlier_detection.consecutive_5xx" and d.proxy.endswith("us-sleep-sleep")))
    assert message == ("locality-failover/us-sleep-sleep: CDS outbound|80||echo.echo.svc.cluster.local: "
                       "outlier_detection.consecutive_5xx: istiod 1, lab '<absent>'"), message


def test_a_changed_connect_timeout_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbound, "DEFAULT_CONNECT_TIMEOUT", "5s")
    left = _new_differences("base")
    assert Difference("base/eu-sleep-sleep", "CDS outbound|80||echo.echo.svc.cluster.local", "connect_timeout", 10.0, 5.0) in left, \
        f"expected eu-sleep-sleep's connect timeout to be named, observed:\n  {_lines(left)}"


def test_a_gateway_that_ignores_alpn_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """AUTO_PASSTHROUGH matches SNI *and* Istio's ALPNs: a gateway that forwards any TLS must be caught."""
    from eastwest.backends.lab.istiod import gateway

    monkeypatch.setattr(gateway, "ISTIO_ALPNS", [])
    left = _new_differences("base")
    resource = "LDS gateway:15443 plain-tls sni=outbound_.80_._.echo.echo.svc.cluster.local"
    assert Difference("base/us-istio-system-istio-eastwestgateway", resource, "chain", "none (connection closed)", "plaintext+tcp") in left, \
        f"expected the gateway's plain-TLS passthrough to be named, observed:\n  {_lines(left)}"


def _no_gateway_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    from eastwest.backends.lab.istiod import gateway

    monkeypatch.setattr(gateway, "traffic_policy", lambda policy, plan: outbound.traffic_policy({}, plan))


def _no_failover_weighting(monkeypatch: pytest.MonkeyPatch) -> None:
    from eastwest.backends.lab.istiod import endpoints

    real = endpoints.locality_plan
    monkeypatch.setattr(outbound, "locality_plan", lambda *a: dataclasses.replace(real(*a), locality_weighted=False))


def _envoy_circuit_breakers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbound, "UNLIMITED", 1024)


@pytest.mark.parametrize(("undo", "proxy", "resource", "field"), [
    (_no_gateway_policy, "locality-failover/eu-istio-system-istio-eastwestgateway", "CDS outbound_.80_._.echo.echo.svc.cluster.local",
     "connect_timeout"),
    (_no_failover_weighting, "locality-failover/eu-echo-echo", "CDS outbound|80||echo.echo.svc.cluster.local", "locality_weighted_lb"),
    (_envoy_circuit_breakers, "locality-failover/us-sleep-sleep", "CDS outbound|80||echo.echo.svc.cluster.local",
     "circuit_breakers.max_connections"),
], ids=["gateway-without-destination-rule", "failover-without-locality-weighting", "envoy-circuit-breakers"])
def test_a_fixed_drift_brought_back_is_named(undo: Any, proxy: str, resource: str, field: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The drifts this comparison found and the lab fixed stay fixed: undoing one fails, naming it."""
    undo(monkeypatch)
    left = _new_differences("locality-failover")
    assert any((d.proxy, d.resource, d.field) == (proxy, resource, field) for d in left), \
        f"expected {proxy}: {resource}: {field} to be named, observed:\n  {_lines(left)}"


# ---- the world is the lab's ---------------------------------------------------------------------------


def test_world_pods_are_the_pods_a_fresh_lab_runs() -> None:
    """world.py reproduces a real lab: the same pods, IPs, sidecars and gateway addresses, and the running US sleep
    proxy holds the endpoints the lab's istiod renders for the world."""
    from eastwest.backends.lab.istiod import ControlPlane

    scenario = "security"  # the scenario with the most pods
    world = build_world(MANIFESTS, scenario)
    us_sleep = next(p for p in world.proxies() if p.proxy_file == "us-sleep-sleep.json")
    config = world.lab_config(ControlPlane(world.cluster_states()), us_sleep)
    assignments = [c["load_assignment"] for c in config.clusters if c.get("load_assignment")] + config.endpoints
    rendered = {cla["cluster_name"]: sorted((e["endpoint"]["address"]["socket_address"]["address"],
                                             int(e["endpoint"]["address"]["socket_address"]["port_value"]),
                                             "/".join(filter(None, [g.get("locality", {}).get("region"), g.get("locality", {}).get("zone")])),
                                             int(g.get("priority", 0)))
                                            for g in cla["endpoints"] for e in g["lb_endpoints"])
                for cla in assignments if cla["cluster_name"].startswith("outbound|")}
    assert len(rendered) >= 3, f"expected the world's US sleep to have its outbound clusters, observed {sorted(rendered)}"
    with running_lab(*SCENARIOS[scenario]) as mesh:
        status = mesh.status()
        for name, wc in world.clusters.items():
            observed = sorted((p.namespace, p.name, p.ip, p.sidecar) for p in status.clusters[name].pods)
            expected = sorted((p.info.namespace, p.info.name, p.info.ip, p.info.sidecar) for p in wc.pods)
            assert observed == expected, f"{name}: expected the world's pods {expected}, observed the lab's {observed}"
            assert status.clusters[name].gateway_address == world.topology.cluster(name).gateway_address
        running = {upstream: sorted((e.address, e.port, e.locality, e.priority) for e in mesh.cluster("us").proxy_endpoints("sleep/sleep", upstream))
                   for upstream in rendered}
    assert running == rendered, f"expected the running US sleep proxy to hold the world's endpoints {rendered}, observed {running}"
