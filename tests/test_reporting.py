"""The Allure results a suite run writes: identity, titles, labels, steps, causes, and sizes.

One real run against a lab broken with split roots (``tests/conftest.py``): the mTLS tests
fail, the mesh-identity tests pass; the results folder is read back as Allure's own files.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from typing import Any

from eastwest.backends.lab.proxies import envoy_binary
from tests.signoff import ROOT, SuiteRun

MTLS = "Answers come from EU, and their XFCC names the US client's SPIFFE ID (By= the EU server's)."
UNTRUSTED = ("Servers in both clusters reject a certificate from an untrusted root, while the trusted client gets through."
             " (url: http://echo-eu-only.echo.svc.cluster.local/)")
IDENTITY = "Every cluster's control plane runs the same mesh ID and trust domain."


def labels(result: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for label in result["labels"]:
        out.setdefault(label["name"], []).append(label["value"])
    return out


def steps(item: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for step in item.get("steps", []):
        yield step
        yield from steps(step)


def attachments(item: dict[str, Any]) -> list[dict[str, Any]]:
    return list(item.get("attachments", [])) + [a for s in steps(item) for a in s.get("attachments", [])]


def text(run: SuiteRun, attachment: dict[str, Any]) -> str:
    return (run.results / attachment["source"]).read_text()


def test_the_run_states_its_identity_where_allure_2_and_3_read_it(failing_run: SuiteRun) -> None:
    env = dict(line.split("=", 1) for line in (failing_run.results / "environment.properties").read_text().splitlines())
    envoy = subprocess.run([envoy_binary(), "--version"], capture_output=True, text=True).stdout  # ask the binary itself
    release = re.search(r"/(\d+\.\d+\.\d+)/", envoy)
    assert release, f"envoy --version said {envoy!r}"
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert env["Backend"] == "lab"
    assert env["Control\\ plane"].startswith("eastwest lab control plane, the project's stand-in for istiod; mirrors Istio 1.30.3")
    assert env["Istio"].startswith("1.30.3 (behaviour mirrored")
    assert env["Envoy"].startswith(release.group(1) + " ("), (env["Envoy"], envoy)
    assert env["eastwest"].startswith(f"0.1.0 @ {commit[:12]}")
    assert env["Mesh"] == "training-mesh, trust domain corp.local"
    assert env["Clusters"] == "us (network us-net, region us/us-a); eu (network eu-net, region eu/eu-a)"
    assert env["Deliberate\\ breakage"] == "split-roots"
    assert env["Result"].startswith("failure\\: 2 of 4 tests failed"), env["Result"]
    executor = json.loads((failing_run.results / "executor.json").read_text())
    assert executor["reportName"] == "eastwest conformance on lab (istiod stand-in mirroring Istio 1.30.3)"
    categories = json.loads((failing_run.results / "categories.json").read_text())
    assert "Mesh conformance: Trust and mTLS" in [c["name"] for c in categories]


def test_titles_labels_and_parameters_read_as_a_person_would(failing_run: SuiteRun) -> None:
    results = failing_run.allure()
    assert {MTLS, UNTRUSTED, IDENTITY} <= set(results), list(results)
    untrusted = labels(results[UNTRUSTED])
    assert untrusted["epic"] == ["Trust and mTLS"] and untrusted["parentSuite"] == ["Trust and mTLS"]
    assert set(untrusted["feature"]) == {"multi-network", "mtls"}, "harness capabilities are no features"
    assert untrusted["tag"] == ["core"] and untrusted["severity"] == ["critical"]
    assert not {"host", "thread", "story", "package"} & set(untrusted)
    assert results[UNTRUSTED]["parameters"] == [{"name": "url", "value": "http://echo-eu-only.echo.svc.cluster.local/"}]
    assert labels(results[IDENTITY])["feature"] == ["multi-network"]


def test_a_failure_is_a_conformance_failure_whose_message_starts_with_the_sentence(failing_run: SuiteRun) -> None:
    failed = failing_run.allure()[MTLS]
    assert failed["status"] == "failed"
    message = failed["statusDetails"]["message"]
    assert message.startswith("US client reaching the EU-only echo over mTLS: not converged within 2s"), message[:200]
    assert "likely cause: the client sidecar could not chain the certificate presented at" in message
    assert failed["statusDetails"]["trace"].rstrip().endswith("eastwest category: conformance/security")


def test_each_phase_is_a_step_and_a_wait_keeps_its_first_and_last_attempt(failing_run: SuiteRun) -> None:
    failed = failing_run.allure()[MTLS]
    converge = [s for s in failed["steps"] if s["name"].startswith("Converge: ")]
    assert [s["name"] for s in converge] == ["Converge: US client reaching the EU-only echo over mTLS"]
    wait = converge[0]
    assert wait["status"] == "failed" and wait["statusDetails"]["message"].startswith("US client reaching the EU-only echo")
    table = next(a for a in wait["attachments"] if a["name"].endswith(" attempts"))
    attempts = int(table["name"].split()[0])
    assert attempts >= 3, table["name"]
    assert text(failing_run, table).splitlines()[2].startswith("#1-#"), "identical attempts fold into one line"
    shown = [s["name"] for s in wait["steps"]]
    assert shown[0].startswith(f"Attempt 1 of {attempts} (+0.00 s): not yet: expected every answer from echo-eu-only in eu on the first attempt")
    assert shown[1].startswith(f"Attempt {attempts} of {attempts} ")
    raw = [a for a in attachments(wait) if a["name"] == "raw responses"]
    assert len(raw) == 2, f"{attempts} attempts must attach 2 raw batches, not {len(raw)}"
    assert json.loads(text(failing_run, raw[0]))[0]["status"] == 503


def test_the_applied_manifests_are_attached_as_yaml_in_a_named_before(failing_run: SuiteRun) -> None:
    uuid = failing_run.allure()[MTLS]["uuid"]
    befores = [b for c in failing_run.containers() if uuid in c.get("children", []) for b in c.get("befores", [])]
    names = [b["name"] for b in befores]
    assert "Apply the test's manifests" in names and "Bring the mesh up" in names, names
    apply = next(b for b in befores if b["name"] == "Apply the test's manifests")
    step = apply["steps"][0]
    assert step["name"] == "Apply manifests suites/security/echo-in-eu-only.yaml to us, eu"
    yaml = next(a for a in step["attachments"] if a["name"] == "eu: applied manifests")
    assert yaml["type"] == "application/yaml" and "name: echo-eu-only" in text(failing_run, yaml)


def test_no_private_fixture_or_finalizer_noise(failing_run: SuiteRun) -> None:
    names = [e["name"] for c in failing_run.containers() for key in ("befores", "afters") for e in c.get(key, [])]
    assert names, "the titled fixtures are shown"
    assert all(" " in n and "<lambda>" not in n and not n.startswith("_") for n in names), names


def test_a_failure_summarises_each_proxys_config_beside_the_raw_dump(failing_run: SuiteRun) -> None:
    failed = failing_run.allure()[MTLS]
    state = {s["name"]: s for s in failed["steps"] if s["name"].startswith("Proxy state of ")}
    assert set(state) == {"Proxy state of us/sleep/sleep", "Proxy state of us/istio-system/istio-eastwestgateway",
                          "Proxy state of eu/istio-system/istio-eastwestgateway"}
    client = state["Proxy state of us/sleep/sleep"]
    summary = text(failing_run, next(a for a in client["attachments"] if a["name"].startswith("config summary")))
    assert "outbound|80||echo-eu-only.echo.svc.cluster.local" in summary
    assert ("endpoints labelled tlsMode=istio: mutual TLS (client certificate), SNI outbound_.80_._.echo-eu-only.echo.svc.cluster.local"
            in summary), summary[:2000]
    assert "trusted CA file " in summary and "accepted peer SANs spiffe://corp.local/ns/echo/sa/echo-eu-only" in summary
    assert re.search(r"172\.31\.255\.20:15443 locality=eu/eu-a priority=0 healthy=(True|False) weight=\d+", summary), summary
    dump = json.loads(text(failing_run, next(a for a in client["attachments"] if a["name"].startswith("config_dump"))))
    assert {c["@type"].rsplit(".", 1)[-1] for c in dump["configs"]} >= {"ClustersConfigDump", "ListenersConfigDump"}


def test_one_failing_test_weighs_under_a_megabyte(failing_run: SuiteRun) -> None:
    for name in (MTLS, UNTRUSTED):
        result = failing_run.allure()[name]
        files = [result["path"]] + [failing_run.results / a["source"] for a in attachments(result)]
        size = sum(f.stat().st_size for f in files)
        assert size < 1_000_000, f"{name}: {size} bytes in {len(files)} files"


def test_a_passing_test_shows_what_it_read_and_no_proxy_dump(failing_run: SuiteRun) -> None:
    passed = failing_run.allure()[IDENTITY]
    assert passed["status"] == "passed"
    assert [s["name"] for s in passed["steps"]] == ["Read mesh config in us", "Read mesh config in eu"]
    assert "mesh_id='training-mesh'" in text(failing_run, passed["steps"][0]["attachments"][0])


def test_a_mesh_that_never_came_up_is_broken_with_its_reason_never_skipped(broken_run: SuiteRun) -> None:
    assert broken_run.returncode == 3, broken_run.stdout[-3000:]
    assert "eastwest: broken: the lab mesh could not be brought up: " in broken_run.stdout
    results = broken_run.allure()
    assert results and {r["status"] for r in results.values()} == {"broken"}, [r["status"] for r in results.values()]
    for result in results.values():
        assert result["statusDetails"]["message"].startswith("the lab mesh could not be brought up: "), result["statusDetails"]
        assert result["statusDetails"]["trace"].rstrip().endswith("eastwest category: infrastructure/bring-up")
    errors = [json.loads(p.read_text()) for p in broken_run.results.glob("*-globals.json")]
    assert [e["message"] for g in errors for e in g["errors"]] == [broken_run.report["reason"]]
    env = (broken_run.results / "environment.properties").read_text()
    assert "Result=broken\\: the lab mesh could not be brought up" in env and "Envoy=unknown\\: the mesh never came up" in env
