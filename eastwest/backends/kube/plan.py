"""The kind bring-up as an ordered plan: every step with its commands, its rendered objects and what it waits for.

``eastwest kind plan`` prints it on any machine (no Docker needed); the bring-up executes the
same :class:`Step` objects in the same order (``bringup.py``), so what is read is what runs.
Install phases 3-9 are ``install.PHASES``, the order every backend follows; the kind backend
adds its platform before them and Chaos Mesh and a readiness gate after them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from eastwest.backends.kube import images, pins, render
from eastwest.backends.kube.commands import Command
from eastwest.backends.kube.render import Layout
from eastwest.settings import Timeouts
from eastwest.support import install
from eastwest.support.topology import Topology


@dataclass(frozen=True)
class KindContext:
    """What a kind bring-up is made from: the topology, the manifests, the names, the time limits."""

    topology: Topology
    manifests: Path
    layout: Layout
    timeouts: Timeouts = field(default_factory=Timeouts)

    @property
    def roles(self) -> tuple[str, ...]:
        return self.topology.names


@dataclass(frozen=True)
class Step:
    """One step of the bring-up. ``cluster`` is None for host steps (docker networks, images)."""

    key: str
    title: str
    cluster: str | None = None
    commands: tuple[Command, ...] = ()
    #: objects applied through the API server, in order
    objects: tuple[dict[str, Any], ...] = ()
    #: files written before the commands run: (path, content)
    files: tuple[tuple[Path, str], ...] = ()
    #: what the step does beside its commands and objects, and the conditions it waits on
    notes: tuple[str, ...] = ()


def helm_env(layout: Layout) -> dict[str, str]:
    """Helm's folders inside the state folder: the user's repositories and cache stay untouched."""
    return {f"HELM_{k}_HOME": str(layout.state_dir / "helm" / k.lower()) for k in ("CACHE", "CONFIG", "DATA")}


def helm_install(ctx: KindContext, role: str, release: str, chart: str, *, repo: str, version: str, namespace: str,
                 values: Path | None, create_namespace: bool = False) -> Command:
    """``helm upgrade --install``: idempotent, pinned chart version, straight from the repository URL."""
    layout = ctx.layout
    argv = ["helm", "upgrade", "--install", release, chart, "--repo", repo, "--version", version, "--namespace", namespace,
            "--kubeconfig", str(layout.kubeconfig), "--kube-context", layout.context(role),
            "--wait", "--timeout", f"{int(ctx.timeouts.bring_up)}s"]
    if create_namespace:
        argv.append("--create-namespace")
    if values is not None:
        argv += ["--values", str(values)]
    return Command(tuple(argv), f"helm install {release} in {layout.cluster(role)}", timeout=ctx.timeouts.bring_up,
                   env=helm_env(layout))


def _values_file(ctx: KindContext, role: str, chart: str) -> tuple[Path, str]:
    values = render.helm_values(ctx.manifests, ctx.topology, role, chart)
    return ctx.layout.state_dir / "values" / f"{role}-{chart}.yaml", yaml.safe_dump(values, sort_keys=False)


def _host_steps(ctx: KindContext) -> list[Step]:
    layout, topo = ctx.layout, ctx.topology
    t = ctx.timeouts.bring_up
    networks = []
    for spec in topo.clusters:
        networks.append(Command(("docker", "network", "create", "--driver", "bridge", "--subnet", str(spec.node_subnet),
                                 "--label", render.DOCKER_LABEL, layout.network(spec.name)),
                                f"docker network for the nodes of {spec.name}"))
    dynamic = ["--ip-range", str(topo.transit_dynamic_range)] if topo.transit_dynamic_range else []
    networks.append(Command(("docker", "network", "create", "--driver", "bridge", "--subnet", str(topo.transit_subnet), *dynamic,
                             "--label", render.DOCKER_LABEL, layout.transit_network), "docker network standing for the internet"))
    steps = [Step("networks", "one docker network per cluster, and the transit network between them", commands=tuple(networks),
                  notes=("a network that exists with this subnet and label is kept; one that exists otherwise is refused by name",))]

    files, creates = [], []
    for role in ctx.roles:
        path = layout.state_dir / f"kind-{role}.yaml"
        files.append((path, yaml.safe_dump(render.kind_config(topo, role), sort_keys=False)))
        creates.append(Command(("kind", "create", "cluster", "--name", layout.cluster(role), "--config", str(path),
                                "--kubeconfig", str(layout.kubeconfig), "--wait", "120s"),
                               f"kind cluster {layout.cluster(role)}", timeout=t,
                               env={"KIND_EXPERIMENTAL_DOCKER_NETWORK": layout.network(role)}))
    exports = [Command(("kind", "export", "kubeconfig", "--name", layout.cluster(role), "--kubeconfig", str(layout.kubeconfig)),
                       f"kubeconfig of {layout.cluster(role)}") for role in ctx.roles]
    steps.append(Step("clusters", f"two kind clusters ({pins.KIND_VERSION}), created in parallel on their own networks",
                      commands=(*creates, *exports), files=tuple(files),
                      notes=("a cluster kind already lists is kept (its node network and image are checked)",
                             "nodes carry topology.kubernetes.io/region and /zone from the kind config")))

    transit = []
    for spec in topo.clusters:
        node = layout.node(spec.name)
        transit.append(Command(("docker", "network", "connect", "--ip", str(spec.api_server_address), layout.transit_network, node),
                               f"{node} on the transit network"))
        for other in topo.clusters:
            if other.name != spec.name:
                for cidr in (other.pod_subnet, other.service_subnet):
                    # a remote pod or service IP fails at once ("no route") instead of leaking to the host's default route
                    transit.append(Command(("docker", "exec", node, "ip", "route", "replace", "unreachable", str(cidr)),
                                           f"{node}: {other.name}'s CIDR {cidr} unreachable"))
    steps.append(Step("transit", "control planes on the transit network at their fixed addresses; other clusters' pod "
                      "and service CIDRs unreachable from each node", commands=tuple(transit),
                      notes=("connected only if not yet; then `docker exec <node> ip -4 route show default` must still leave "
                             "through the node's own network",)))

    wanted = images.node_images(render.workload_images(ctx.manifests, topo))
    image_cmds = [Command(("docker", "build", "--tag", pins.ECHO_IMAGE, "--label", render.DOCKER_LABEL, "-"),
                          "build the echo image", timeout=t, stdin=None, stdin_note="echo build context (echo.Dockerfile + eastwest/apps/)")]
    image_cmds += [Command(("docker", "pull", image), f"pull {image}", timeout=t) for image in wanted if not images.built_here(image)]
    image_cmds += [Command(("kind", "load", "docker-image", "--name", layout.cluster(role), *wanted), f"load images into {role}",
                           timeout=t) for role in ctx.roles]
    steps.append(Step("images", "echo built from this project, third-party images pulled once by the host, all loaded into "
                      "every node (nodes never pull)", commands=tuple(image_cmds),
                      notes=("a pull is skipped when `docker image inspect` finds the image; kind load skips an image a node has",)))
    return steps


def _cluster_steps(ctx: KindContext, role: str) -> list[Step]:
    layout = ctx.layout
    manifest = layout.state_dir / f"metallb-native-{pins.METALLB_VERSION}.yaml"
    steps = [Step("metallb", f"MetalLB {pins.METALLB_VERSION} (L2) with one pool holding exactly the gateway address", role,
                  commands=(Command(("kubectl", "--kubeconfig", str(layout.kubeconfig), "--context", layout.context(role), "apply",
                                     "--server-side", "--force-conflicts", "-f", str(manifest)), f"MetalLB in {role}",
                                    timeout=ctx.timeouts.bring_up),),
                  objects=tuple(render.metallb_objects(ctx.topology, role)),
                  notes=(f"fetch {pins.METALLB_MANIFEST_URL} once, refuse it unless sha256 = {pins.METALLB_MANIFEST_SHA256}",
                         "wait: metallb-system controller and speaker pods Ready; the pool is retried while MetalLB's webhook starts"))]
    return steps


def _phase_step(ctx: KindContext, role: str, phase: install.Phase) -> Step:
    topo = ctx.topology
    title = phase.summary
    if phase.name == "namespace":
        return Step(phase.name, title, role, objects=(*render.phase_objects(ctx.manifests, topo, role, phase.name),
                                                      render.cacerts_secret(None)),
                    notes=("one root for the mesh, one intermediate per cluster (eastwest/support/pki.py); an existing "
                           "cacerts is kept when both clusters have one from the same root",))
    if phase.release is not None:
        values = _values_file(ctx, role, phase.release.chart) if phase.release.chart != "base" else None
        cmd = helm_install(ctx, role, phase.release.release, phase.release.chart, repo=pins.ISTIO_CHARTS,
                           version=pins.ISTIO_VERSION, namespace="istio-system", values=values[0] if values else None)
        notes = {"istio-base": "wait: helm --wait",
                 "istiod": "wait: helm --wait (istiod Ready), then the injector's webhook answers",
                 "eastwest-gateway": f"wait: Service istio-system/istio-eastwestgateway has ingress IP "
                                     f"{topo.cluster(role).gateway_address} and port 15443"}[phase.name]
        return Step(phase.name, title, role, commands=(cmd,), files=(values,) if values else (), notes=(notes,))
    if phase.name == "remote-secrets":
        objects: list[dict[str, Any]] = [render.reader_token_secret()]
        for other in topo.clusters:
            if other.name != role:
                objects.append(render.remote_secret(other.name, f"https://{other.api_server_address}:6443", ca_crt=None, token=None))
        return Step(phase.name, title, role, objects=tuple(objects),
                    notes=("the reader token Secret is applied in every cluster first; its token and ca.crt, once the token "
                           "controller fills them, go into the other cluster's remote secret",
                           "server: the other control plane's transit address (never 127.0.0.1), tls-server-name: kubernetes"))
    notes = {"expose-services": "the Gateway CRD comes from istio-base",
             "workloads": "wait: every Deployment rolled out, every pod with an istio-proxy container"}.get(phase.name, "")
    return Step(phase.name, title, role, objects=tuple(render.phase_objects(ctx.manifests, topo, role, phase.name)),
                notes=(notes,) if notes else ())


def build(ctx: KindContext) -> list[Step]:
    """The whole bring-up, in order."""
    steps = _host_steps(ctx)
    for role in ctx.roles:
        steps += _cluster_steps(ctx, role)
    for phase in install.PHASES:
        steps += [_phase_step(ctx, role, phase) for role in ctx.roles]
    for role in ctx.roles:
        values = _values_file(ctx, role, "chaos-mesh")
        steps.append(Step("chaos-mesh", f"Chaos Mesh {pins.CHAOS_MESH_VERSION} with kind's containerd settings", role,
                          commands=(helm_install(ctx, role, "chaos-mesh", "chaos-mesh", repo=pins.CHAOS_MESH_CHARTS,
                                                 version=pins.CHAOS_MESH_VERSION, namespace="chaos-mesh", values=values[0],
                                                 create_namespace=True),),
                          files=(values,), notes=("wait: helm --wait (controller manager and chaos-daemon Ready)",)))
    steps.append(Step("readiness", "readiness gate before any suite runs", notes=(
        "each istiod's debug/clusterz lists the other cluster as synced",
        "each gateway Service has its topology address",
        "every pod of the workloads has an istio-proxy container",
        "the US client's sidecar has the EU gateway on 15443 among its endpoints for echo",
        "both clusters serve the same root (istio-ca-root-cert = cacerts root-cert.pem, equal in both)")))
    return steps


def format_plan(ctx: KindContext, steps: list[Step]) -> str:
    """The plan as text: numbered steps, each command as a shell line, each object and file as YAML."""
    state = str(ctx.layout.state_dir)
    lines = [f"# eastwest kind plan: clusters {', '.join(ctx.layout.cluster(r) for r in ctx.roles)}",
             f"# kind {pins.KIND_VERSION}, node image {pins.NODE_IMAGE}",
             f"# Istio {pins.ISTIO_VERSION} ({pins.ISTIO_HUB}), MetalLB {pins.METALLB_VERSION}, Chaos Mesh {pins.CHAOS_MESH_VERSION}, "
             f"Helm 3; every step is skipped where its result already exists",
             "# $STATE is the state folder (kubeconfig, kind configs, Helm values and folders)", ""]
    for n, step in enumerate(steps, 1):
        where = f" [{ctx.layout.cluster(step.cluster)}]" if step.cluster else ""
        lines.append(f"{n}. {step.key}{where}: {step.title}")
        for path, content in step.files:
            lines.append(f"   write {path}:")
            lines += [f"     {line}" for line in content.rstrip().splitlines()]
        lines += [f"   $ {cmd.shell()}" for cmd in step.commands]
        for body in step.objects:
            lines.append(f"   apply {body['kind']} {_name(body)}:")
            lines += [f"     {line}" for line in yaml.safe_dump(body, sort_keys=False).rstrip().splitlines()]
        lines += [f"   - {note}" for note in step.notes]
        lines.append("")
    return "\n".join(lines).replace(state, "$STATE") + "\n"


def _name(body: dict[str, Any]) -> str:
    meta = body.get("metadata") or {}
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else str(meta.get("name"))
