"""Executing the kind plan: every step idempotent, each bounded by what is left of ``bring_up``.

:class:`BringUp` walks the steps of ``plan.build`` in order and runs each with its commands
(through a :class:`~eastwest.backends.kube.commands.Runner`) and objects (through a
:class:`~eastwest.backends.kube.api.ClusterApi` per cluster); a step whose result already
exists is kept, one that exists in a form this project would not have made is refused by name.
Self-tests drive it with recording stand-ins for both.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import ipaddress
import json
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from eastwest.backends.kube import images, pins, readiness, render
from eastwest.backends.kube.api import ApiError, ClusterApi, ref
from eastwest.backends.kube.commands import Command, Completed, Progress, Runner, check
from eastwest.backends.kube.mesh import KubeCluster, has_sidecar
from eastwest.backends.kube.plan import KindContext, Step, build
from eastwest.schemas import Schemas, SchemaUnavailable
from eastwest.support import pki
from eastwest.support.errors import ConfigError, ManifestError, MeshError
from eastwest.support.waiting import wait_until

Fetch = Callable[[str], bytes]


def fetch_url(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as answer:  # noqa: S310 - a pinned https URL, checked by digest
        return bytes(answer.read())


class BringUp:
    """Runs the plan against docker, kind, helm and the API servers."""

    def __init__(self, ctx: KindContext, runner: Runner, api_for: Callable[[str], ClusterApi], *, progress: Progress | None = None,
                 schemas: Schemas | None = None, fetch: Fetch = fetch_url, cas: Callable[[list[str]], dict[str, pki.Authority]] = pki.mesh_cas):
        self.ctx, self.runner, self.api_for = ctx, runner, api_for
        self.progress = progress or Progress()
        self.schemas = schemas
        self.fetch, self.cas = fetch, cas
        self.deadline = time.monotonic() + ctx.timeouts.bring_up
        self._cacerts: dict[str, dict[str, bytes] | None] | None = None

    # ---- plumbing ------------------------------------------------------------------------------

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise MeshError(f"kind bring-up: the bring_up time limit ({self.ctx.timeouts.bring_up:g}s) ran out; "
                            "raise it with --mesh-timeout bring_up=SECONDS")
        return left

    def run(self, cmd: Command, *, stdin: bytes | None = None) -> Completed:
        bounded = dataclasses.replace(cmd, timeout=min(cmd.timeout, self.remaining()), stdin=stdin if stdin is not None else cmd.stdin)
        return check(bounded, self.runner.run(bounded))

    def probe(self, *argv: str) -> Completed:
        """A read-only command whose exit status is the answer (``docker network inspect`` of a missing network is 1)."""
        return self.runner.run(Command(tuple(argv), f"check: {' '.join(argv[:3])}", timeout=min(60.0, self.remaining()), ok_codes=(0, 1)))

    def wait(self, check_: Callable[[], Any], what: str) -> Any:
        return wait_until(check_, within=self.remaining(), interval=max(1.0, self.ctx.timeouts.poll_interval), what=what)

    def apply(self, role: str, body: dict[str, Any], source: str = "kind plan") -> None:
        if self.schemas is not None:
            try:
                problems = self.schemas.errors(body)
            except SchemaUnavailable:
                problems = []
            if problems:
                raise ManifestError(f"{ref(body)} ({source}) would be rejected: {'; '.join(problems)}")
        self.api_for(role).apply(body)

    def write(self, files: tuple[tuple[Path, str], ...]) -> None:
        for path, content in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)

    # ---- the steps -----------------------------------------------------------------------------

    def all(self, steps: list[Step] | None = None) -> None:
        for step in steps if steps is not None else build(self.ctx):
            where = f" [{self.ctx.layout.cluster(step.cluster)}]" if step.cluster else ""
            with self.progress.step(f"{step.key}{where}"):
                self.write(step.files)
                getattr(self, "step_" + step.key.replace("-", "_"))(step)

    def step_networks(self, step: Step) -> None:
        for cmd in step.commands:
            name, subnet = cmd.argv[-1], cmd.argv[cmd.argv.index("--subnet") + 1]
            found = self.probe("docker", "network", "inspect", name)
            if found.returncode == 0:
                info = json.loads(found.stdout)[0]
                subnets = [c.get("Subnet") for c in (info.get("IPAM") or {}).get("Config") or []]
                owned = (info.get("Labels") or {}).get(render.DOCKER_LABEL.split("=")[0]) == render.DOCKER_LABEL.split("=")[1]
                if subnet not in subnets or not owned:
                    raise ConfigError(f"docker network {name} exists with subnets {subnets}{'' if owned else ', not made by eastwest'}; "
                                      f"expected {subnet}: remove it (docker network rm {name}) or pick another --kind-name")
                continue
            self.run(cmd)

    def step_clusters(self, step: Step) -> None:
        listed = set(self.run(Command(("kind", "get", "clusters"), "list kind clusters")).stdout.split())
        creates = [c for c in step.commands if c.argv[:3] == ("kind", "create", "cluster")]
        todo = [c for c in creates if c.argv[c.argv.index("--name") + 1] not in listed]
        for cmd in creates:
            if cmd not in todo:
                self._check_node_network(cmd.argv[cmd.argv.index("--name") + 1], cmd.env["KIND_EXPERIMENTAL_DOCKER_NETWORK"])
        with ThreadPoolExecutor(max_workers=max(1, len(todo))) as pool:  # Istio's CI creates its clusters in parallel too
            for future in [pool.submit(self.run, cmd) for cmd in todo]:
                future.result()
        for cmd in step.commands:
            if cmd not in creates:
                self.run(cmd)

    def _check_node_network(self, cluster: str, network: str) -> None:
        node = f"{cluster}-control-plane"
        found = self.probe("docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}", node)
        if found.returncode != 0 or network not in json.loads(found.stdout or "{}"):
            raise ConfigError(f"kind cluster {cluster} exists but its node is not on docker network {network}: "
                              f"it was not made by this project's plan; remove it (kind delete cluster --name {cluster})")

    def step_transit(self, step: Step) -> None:
        transit = self.ctx.layout.transit_network
        for cmd in step.commands:
            if cmd.argv[:3] == ("docker", "network", "connect"):
                node, ip = cmd.argv[-1], cmd.argv[cmd.argv.index("--ip") + 1]
                nets = json.loads(self.probe("docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}", node).stdout or "{}")
                current = ((nets.get(transit) or {}).get("IPAMConfig") or {}).get("IPv4Address") or (nets.get(transit) or {}).get("IPAddress")
                if transit in nets and current != ip:
                    raise ConfigError(f"{node} is on {transit} at {current}, expected {ip}: eastwest kind down, then up again")
                if transit not in nets:
                    self.run(cmd)
            else:
                self.run(cmd)
        for spec in self.ctx.topology.clusters:
            node = self.ctx.layout.node(spec.name)
            route = self.run(Command(("docker", "exec", node, "ip", "-4", "route", "show", "default"), f"{node} default route")).stdout
            via = route.split("via ")[1].split()[0] if "via " in route else ""
            if not via or spec.node_subnet is None or ipaddress.IPv4Address(via) not in spec.node_subnet:
                raise MeshError(f"{node}: the default route ({route.strip() or 'none'}) no longer leaves through its own network "
                                f"{spec.node_subnet} after joining {transit} (docker picks the gateway by network name)")

    def step_images(self, step: Step) -> None:
        for cmd in step.commands:
            if cmd.argv[:2] == ("docker", "build"):
                self.run(cmd, stdin=images.echo_context())
            elif cmd.argv[:2] == ("docker", "pull"):
                if self.probe("docker", "image", "inspect", cmd.argv[-1]).returncode != 0:
                    self.run(cmd)
            else:
                self.run(cmd)

    def step_metallb(self, step: Step) -> None:
        role = str(step.cluster)
        manifest = self.ctx.layout.state_dir / f"metallb-native-{pins.METALLB_VERSION}.yaml"
        if not manifest.is_file() or hashlib.sha256(manifest.read_bytes()).hexdigest() != pins.METALLB_MANIFEST_SHA256:
            data = self.fetch(pins.METALLB_MANIFEST_URL)
            digest = hashlib.sha256(data).hexdigest()
            if digest != pins.METALLB_MANIFEST_SHA256:
                raise MeshError(f"{pins.METALLB_MANIFEST_URL}: sha256 {digest}, expected {pins.METALLB_MANIFEST_SHA256}; not applied")
            manifest.parent.mkdir(parents=True, exist_ok=True)
            manifest.write_bytes(data)
        for cmd in step.commands:
            self.run(cmd)
        api = self.api_for(role)
        self.wait(lambda: _deployment_available(api, "metallb-system", "controller") and _daemonset_ready(api, "metallb-system", "speaker"),
                  f"{role}: MetalLB controller and speaker ready")
        for body in step.objects:  # MetalLB's validating webhook refuses pools until its controller serves it
            self.wait(functools.partial(_applied, functools.partial(self.apply, role, body)),
                      f"{role}: {ref(body)} accepted by MetalLB's webhook")

    def step_namespace(self, step: Step) -> None:
        role = str(step.cluster)
        for body in step.objects:
            if body["kind"] == "Secret" and body["metadata"]["name"] == "cacerts":
                files = self.cacerts()[role]
                if files is not None:
                    self.apply(role, render.cacerts_secret(files))
            else:
                self.apply(role, body)

    def cacerts(self) -> dict[str, dict[str, bytes] | None]:
        """Per cluster, the cacerts files to create, or None to keep the one there (same root everywhere)."""
        if self._cacerts is None:
            roles = list(self.ctx.roles)
            roots = {}
            for role in roles:
                secret = self.api_for(role).get("v1", "Secret", "cacerts", "istio-system")
                roots[role] = (secret.get("data") or {}).get("root-cert.pem") if secret else None
            if all(roots.values()) and len(set(roots.values())) == 1:
                self._cacerts = {role: None for role in roles}
            elif any(roots.values()):
                raise ConfigError("cacerts exists in " + ", ".join(r for r in roles if roots[r]) + " but not from one root in every "
                                  "cluster; istiod cannot be re-rooted in place: eastwest kind down, then up again")
            else:
                self._cacerts = {role: ca.cacerts() for role, ca in self.cas(roles).items()}
        return self._cacerts

    def _helm(self, step: Step) -> None:
        for cmd in step.commands:
            self.run(cmd)

    step_istio_base = step_istiod = step_chaos_mesh = _helm

    def step_eastwest_gateway(self, step: Step) -> None:
        self._helm(step)
        role = str(step.cluster)
        want = self.ctx.topology.cluster(role).gateway_address
        cluster = self.cluster(role)
        self.wait(lambda: cluster.gateway_address() == want, f"{role}: east-west gateway Service with address {want} on 15443")

    def step_expose_services(self, step: Step) -> None:
        for body in step.objects:
            self.apply(str(step.cluster), body)

    def step_remote_secrets(self, step: Step) -> None:
        role = str(step.cluster)
        self.apply(role, render.reader_token_secret())
        for other in self.ctx.topology.clusters:
            if other.name == role:
                continue
            token, ca = self.reader_token(other.name)
            self.apply(role, render.remote_secret(other.name, f"https://{other.api_server_address}:6443", ca_crt=ca, token=token))

    def reader_token(self, role: str) -> tuple[str, bytes]:
        """The reader service account's token and the API server's CA, once the token controller filled the Secret."""
        api = self.api_for(role)
        self.apply(role, render.reader_token_secret())

        def filled() -> dict[str, Any] | None:
            data = (api.get("v1", "Secret", render.READER_TOKEN_SECRET, "istio-system") or {}).get("data") or {}
            return data if data.get("token") and data.get("ca.crt") else None

        data = self.wait(filled, f"{role}: token of {render.READER_SERVICE_ACCOUNT}")
        return base64.b64decode(data["token"]).decode(), base64.b64decode(data["ca.crt"])

    def step_workloads(self, step: Step) -> None:
        role = str(step.cluster)
        cluster = self.cluster(role)
        for body in step.objects:
            self.apply(role, body)
        for body in step.objects:
            if body["kind"] == "Deployment":
                workload = f"{body['metadata']['namespace']}/{body['metadata']['name']}"
                self.wait(functools.partial(cluster.rolled_out, _workload(body)), f"{role}: {workload} rolled out")
        for body in step.objects:
            if body["kind"] == "Deployment":
                missing = [p["metadata"]["name"] for p in cluster.pods(_workload(body), ready_only=False) if not has_sidecar(p)]
                if missing:
                    raise MeshError(f"{role}: pods {missing} have no istio-proxy container: the injector did not run "
                                    "(namespace label istio-injection=enabled, istiod's webhook up?)")

    def step_readiness(self, step: Step) -> None:
        readiness.gate({role: self.cluster(role) for role in self.ctx.roles}, within=self.remaining(),
                       interval=max(1.0, self.ctx.timeouts.poll_interval))

    def cluster(self, role: str) -> KubeCluster:
        return KubeCluster(self.ctx.topology, role, self.api_for(role), self.ctx.timeouts)


def _workload(body: dict[str, Any]) -> Any:
    from eastwest.mesh import Workload

    return Workload(body["metadata"]["namespace"], body["metadata"]["name"])


def _applied(action: Callable[[], None]) -> bool:
    try:
        action()
    except ApiError:
        return False
    return True


def _deployment_available(api: ClusterApi, namespace: str, name: str) -> bool:
    d = api.get("apps/v1", "Deployment", name, namespace) or {}
    return bool((d.get("status") or {}).get("availableReplicas"))


def _daemonset_ready(api: ClusterApi, namespace: str, name: str) -> bool:
    status = (api.get("apps/v1", "DaemonSet", name, namespace) or {}).get("status") or {}
    return bool(status.get("desiredNumberScheduled")) and status.get("numberReady") == status.get("desiredNumberScheduled")
