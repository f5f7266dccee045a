"""Deliberate breakages of the lab (``--lab-break NAME``): each models a real Istio misconfiguration
or bug, so a self-test or ``make mutants`` can prove the suites catch it and name its cause.

A breakage is an install-time property of the lab; runtime faults (Chaos Mesh's vocabulary)
are a different thing and live elsewhere. Most are applied to what the lab's istiod renders
(:func:`apply`), the way the misconfigured istiod, EnvoyFilter or bootstrap would render it;
``split-roots`` is applied where the certificates are made, ``admin-on-all-addresses`` to
the bootstrap (:func:`bootstrap`); a few act inside the lab's istiod or network, where the
``if NAME in breaks`` names them. Breakages a manifest can express are manifest patches instead
(``tools/mutant_catalogue.py``). Adding one is one :class:`Break` entry in ``CATALOGUE`` plus the
place it acts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eastwest.backends.lab.envoy_config import (
    ADMIN_PORT,
    HCM,
    LISTENER,
    ROUTER,
    ProxyConfig,
    access_log,
)

#: the extra plaintext port of the ``gateway-plaintext-port`` breakage
PLAINTEXT_GATEWAY_PORT = 8080

@dataclass(frozen=True)
class Break:
    """One switch: its name, the area it breaks, and the real-world mistake it models."""

    name: str
    area: str  # trust, routing, gateway, locality, failover, exposure, discovery
    models: str


CATALOGUE: tuple[Break, ...] = (
    Break('split-roots', 'trust',
          'every cluster gets a root CA of its own: the classic multi-cluster install without a shared root'),
    Break('one-way-tls', 'trust',
          'inbound TLS neither asks for nor checks a client certificate (require_client_certificate: false and no validation context, what a SIMPLE-TLS server or a hand-written EnvoyFilter renders)'),
    Break('server-skips-trust-domain', 'trust',
          'inbound mTLS accepts any SPIFFE ID the root signed: istiod run with PILOT_SKIP_VALIDATE_TRUST_DOMAIN=true renders no SAN match'),
    Break('client-skips-san-check', 'trust',
          "client sidecars check the server's chain but not its SPIFFE ID (the upstream context has no match_typed_subject_alt_names)"),
    Break('client-skips-server-verification', 'trust',
          'client sidecars accept any server certificate (no validation context, what DestinationRule tls.insecureSkipVerify does)'),
    Break('xfcc-forwarded', 'exposure',
          "sidecars forward the client's X-Forwarded-Client-Cert untouched (proxyConfig.proxyHeaders.forwardedClientCert: ALWAYS_FORWARD_ONLY)"),
    Break('gateway-plaintext-port', 'exposure',
          "the east-west gateway also serves the mesh's HTTP services in plaintext on 8080 (an ingress Gateway whose selector matches the east-west gateway)"),
    Break('admin-on-all-addresses', 'exposure',
          "every proxy's admin API listens on all addresses instead of 127.0.0.1 (a custom bootstrap with admin address 0.0.0.0)"),
    Break('tls12-max', 'trust',
          "client sidecars negotiate at most TLS 1.2: the upstream context has no tls_params, so Envoy's client default (TLS 1.2) applies, as before istiod set TLSv1_3 as the maximum"),
    Break("foreign-trust-domain-workloads", "trust",
          "the last cluster's workloads carry certificates of trust domain <cluster>.local while its istiod reports "
          "corp.local (a CA or cert-manager issuer configured apart from meshConfig.trustDomain)"),
    Break("untrusted-client-accepted", "trust",
          "server sidecars require a client certificate but accept one from any root (trust_chain_verification "
          "ACCEPT_UNTRUSTED: a hand-written EnvoyFilter or custom CA setup that skips chain verification)"),
    Break("gateway-one-service", "gateway",
          "the east-west gateway sends every SNI to the same service (a hand-written EnvoyFilter or a tcp route "
          "on 15443 instead of AUTO_PASSTHROUGH's per-SNI clusters)"),
    Break("gateway-ignores-network-view", "gateway",
          "the east-west gateway load-balances over endpoints of every network, not only its own "
          "(ISTIO_META_REQUESTED_NETWORK_VIEW missing: a gateway installed without networkGateway)"),
    Break("gateway-plaintext-passthrough", "exposure",
          "the east-west gateway forwards connections that match no SNI chain to a service, plaintext included "
          "(a catch-all TCP server on 15443 next to AUTO_PASSTHROUGH)"),
    Break("pod-networks-flat", "exposure",
          "the nodes route each other's pod CIDRs: the networks are flat while Istio is told they are two "
          "(kind clusters on one docker network with routes between them, as Istio's CI does for one network id)"),
    Break("split-horizon-off", "discovery",
          "istiod hands clients the remote pod IPs instead of the remote gateway (the cluster's network unknown to "
          "istiod: no global.network / namespace label; pitfall 4 of istio-multinetwork.md)"),
    Break("remote-secret-missing", "discovery",
          "no cluster's istiod sees the other cluster's endpoints (remote secrets not created, or pointing at "
          "127.0.0.1; istio/istio#31081)"),
    Break("proxy-locality-unset", "locality",
          "proxies run without a locality (nodes lack topology.kubernetes.io/region and zone labels): istiod "
          "applies no locality load balancing"),
)

#: name -> what it models (the ``--lab-break`` choices)
BREAKS: dict[str, str] = {b.name: b.models for b in CATALOGUE}


def _tls_contexts(config: ProxyConfig, type_suffix: str) -> list[dict[str, Any]]:
    """Every TLS context of ``type_suffix`` (``UpstreamTlsContext``/``DownstreamTlsContext``) in the config."""
    sockets: list[dict[str, Any]] = []
    for cluster in config.clusters:
        if "transport_socket" in cluster:
            sockets.append(cluster["transport_socket"])
        sockets += [m["transport_socket"] for m in cluster.get("transport_socket_matches", [])]
    for listener in config.listeners:
        sockets += [c["transport_socket"] for c in listener.get("filter_chains", []) if "transport_socket" in c]
    return [s["typed_config"] for s in sockets if s.get("typed_config", {}).get("@type", "").endswith(type_suffix)]


def _hcms(config: ProxyConfig, stat_prefix: str) -> list[dict[str, Any]]:
    return [f["typed_config"] for listener in config.listeners for chain in listener.get("filter_chains", [])
            for f in chain.get("filters", []) if f["typed_config"].get("@type") == HCM
            and f["typed_config"].get("stat_prefix", "").startswith(stat_prefix)]


def _plaintext_listener(config: ProxyConfig) -> dict[str, Any]:
    """An HTTP listener routing every mesh host the gateway knows to its SNI cluster, in plaintext."""
    vhosts = []
    for cluster in config.clusters:
        name = cluster["name"]  # outbound_.<port>_._.<host>, or the status port's "agent"
        if not name.startswith("outbound_."):
            continue
        port, _, host = name.removeprefix("outbound_.").partition("_._.")
        vhosts.append({"name": name, "domains": [host, f"{host}:{port}"],
                       "routes": [{"match": {"prefix": "/"}, "route": {"cluster": name}}]})
    return {
        "@type": LISTENER,
        "enable_reuse_port": False,
        "name": f"0.0.0.0_{PLAINTEXT_GATEWAY_PORT}",
        "address": {"socket_address": {"address": "0.0.0.0", "port_value": PLAINTEXT_GATEWAY_PORT}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
            "@type": HCM, "stat_prefix": "plaintext_gateway", "access_log": access_log("/dev/stdout"),
            # as istiod's routes: the clusters may still be in flight when the listener lands
            "route_config": {"name": "plaintext", "validate_clusters": False, "virtual_hosts": vhosts},
            "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}]}}]}],
    }


def apply(config: ProxyConfig, breaks: frozenset[str], *, gateway: bool) -> ProxyConfig:
    """The configuration a proxy gets when the lab is broken in the ``breaks`` ways (changed in place)."""
    if "one-way-tls" in breaks:
        for ctx in _tls_contexts(config, "DownstreamTlsContext"):
            # Envoy still demands a certificate while a trusted CA is configured (SSL_VERIFY_FAIL_IF_NO_PEER_CERT
            # comes with the CA, not only with require_client_certificate): one-way TLS drops both
            ctx["require_client_certificate"] = False
            ctx["common_tls_context"].pop("validation_context", None)
    if "untrusted-client-accepted" in breaks:
        for ctx in _tls_contexts(config, "DownstreamTlsContext"):
            ctx["common_tls_context"]["validation_context"]["trust_chain_verification"] = "ACCEPT_UNTRUSTED"
    if "server-skips-trust-domain" in breaks:
        for ctx in _tls_contexts(config, "DownstreamTlsContext"):
            ctx["common_tls_context"]["validation_context"].pop("match_typed_subject_alt_names", None)
    if "client-skips-san-check" in breaks:
        for ctx in _tls_contexts(config, "UpstreamTlsContext"):
            ctx["common_tls_context"]["validation_context"].pop("match_typed_subject_alt_names", None)
    if "client-skips-server-verification" in breaks:
        for ctx in _tls_contexts(config, "UpstreamTlsContext"):
            ctx["common_tls_context"].pop("validation_context", None)
    if "tls12-max" in breaks:
        for ctx in _tls_contexts(config, "UpstreamTlsContext"):
            ctx["common_tls_context"].pop("tls_params", None)
    if "xfcc-forwarded" in breaks:
        for hcm in _hcms(config, "inbound_"):
            hcm["forward_client_cert_details"] = "ALWAYS_FORWARD_ONLY"
            hcm.pop("set_current_client_cert_details", None)
    if "gateway-plaintext-port" in breaks and gateway:
        config.listeners.append(_plaintext_listener(config))
    return config


def bootstrap(config: dict[str, Any], breaks: frozenset[str]) -> dict[str, Any]:
    """A proxy's bootstrap when the lab is broken in the ``breaks`` ways."""
    if "admin-on-all-addresses" in breaks:
        config["admin"]["address"]["socket_address"] = {"address": "0.0.0.0", "port_value": ADMIN_PORT}
    return config
