"""The lab's istiod: the objects of every cluster in, Envoy listeners and clusters out.

Parts: ``registry.py`` (services, endpoints, policy lookups), ``endpoints.py`` (split-horizon
EDS, locality), ``outbound.py``, ``inbound.py`` and ``gateway.py`` (what each proxy gets).

It programs each proxy the way istiod would for a multi-primary, multi-network mesh:

- a sidecar's outbound clusters are named ``outbound|<port>||<host>``; endpoints on the
  proxy's own network are pod IPs, endpoints on another network are replaced by that
  network's east-west gateway at 15443, one per locality, weighted by endpoint count
  (split-horizon EDS); mTLS towards them uses SNI ``outbound_.<port>_._.<host>``;
- DestinationRules (of the proxy's own cluster only, as in multi-primary) set TLS mode and
  SNI, load-balancer policy, locality priorities or weights, outlier detection and the
  connection pool;
- a sidecar's inbound listener terminates mTLS with the mesh root, checks the peer's trust
  domain and hands the app an ``X-Forwarded-Client-Cert``; PeerAuthentication decides
  whether plaintext is accepted too;
- an east-west gateway selected by an AUTO_PASSTHROUGH Gateway gets one filter chain per
  service port, matched on SNI and Istio's ALPNs, proxied as TCP without terminating TLS.

Deviation from istiod, by design: sidecar clients use their proxy as an explicit HTTP
proxy on 127.0.0.1:15001 (the lab has no iptables capture), and every endpoint is
reported healthy unless outlier detection ejects it.
"""

from __future__ import annotations

from eastwest.backends.lab.envoy_config import CertPaths, ProxyConfig, through_eds
from eastwest.backends.lab.istiod.gateway import EastWestGateway
from eastwest.backends.lab.istiod.inbound import Inbound
from eastwest.backends.lab.istiod.outbound import Outbound
from eastwest.backends.lab.istiod.registry import ClusterState, GatewayInfo, PodInfo, Registry, svc_host

__all__ = ["MIRRORS_ISTIO", "ClusterState", "ControlPlane", "GatewayInfo", "PodInfo", "svc_host"]

#: The Istio release whose istiod behaviour this stand-in mirrors (names, SNI, split horizon, locality
#: priorities, inbound mTLS as istiod 1.30.3 programs them); reports name it as mirrored, never as installed.
MIRRORS_ISTIO = "1.30.3"


class ControlPlane:
    """Computes every proxy's configuration from the state of all clusters (one push)."""

    def __init__(self, clusters: dict[str, ClusterState], breaks: frozenset[str] = frozenset()):
        self.registry = Registry(clusters, breaks)
        self._outbound = Outbound(self.registry)
        self._inbound = Inbound(self.registry)
        self._gateway = EastWestGateway(self.registry)

    def gateway(self, name: str) -> ProxyConfig:
        """The east-west gateway of cluster ``name``."""
        return self._gateway.build(name)

    def sidecar(self, cluster: str, pod: PodInfo, certs: CertPaths, logdir: str) -> ProxyConfig:
        """The sidecar of ``pod`` in ``cluster``: outbound to every mesh host, inbound on its pod IP."""
        state = self.registry.clusters[cluster]
        outbound_listener, outbound_clusters = self._outbound.build(state, pod, certs, logdir)
        inbound_listeners, inbound_clusters = self._inbound.build(state, pod, certs, logdir)
        outbound_clusters, endpoints = through_eds(outbound_clusters, logdir)  # as istiod sends them
        return ProxyConfig([outbound_listener, *inbound_listeners], outbound_clusters + inbound_clusters, endpoints)
