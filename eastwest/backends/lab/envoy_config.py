"""Envoy resources as the lab writes them: type URLs, TLS and access-log builders, bootstrap.

Plain builders with no policy in them: the lab's istiod (``istiod/``) decides what each
proxy gets, ``proxies.py`` writes it to the proxy's files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from eastwest.backends.lab.schemas import parse_duration

OUTBOUND_PORT = 15001
ADMIN_PORT = 15000
GATEWAY_PORT = 15443
ISTIO_ALPNS = ["istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2"]
# What a sidecar client offers on the wire: istiod renders [istio-peer-exchange, istio] and its
# istio.alpn filter rewrites it per request to [istio-http/1.1, istio, http/1.1] for HTTP/1.1
# upstreams (istio/proxy alpn filter; istiod-golden notes 6.3): the lab writes the result directly.
CLIENT_ALPNS = ["istio-http/1.1", "istio", "http/1.1"]
# What an inbound mTLS chain negotiates (authn/utils/utils.go: util.ALPNHttp): never "istio",
# which would interfere with negotiating the application protocol.
SERVER_ALPNS = ["h2", "http/1.1"]
# istiod's server-side cipher list for TLS 1.2 (authn/utils/utils.go SupportedCiphers);
# TLS 1.3 suites are not configurable in BoringSSL.
SERVER_CIPHERS = [
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-GCM-SHA256",
]
DEFAULT_CONNECT_TIMEOUT = "10s"
ROOT_NAMESPACE = "istio-system"

T = "type.googleapis.com/"
HCM = T + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = T + "envoy.extensions.filters.http.router.v3.Router"
TCP_PROXY = T + "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
TLS_INSPECTOR = T + "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
DOWNSTREAM_TLS = T + "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UPSTREAM_TLS = T + "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
RAW_BUFFER = T + "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"
HTTP_OPTIONS = T + "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
PREVIOUS_HOSTS = T + "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
FILE_LOG = T + "envoy.extensions.access_loggers.file.v3.FileAccessLog"
LISTENER = T + "envoy.config.listener.v3.Listener"
CLUSTER = T + "envoy.config.cluster.v3.Cluster"
CLUSTER_LOAD_ASSIGNMENT = T + "envoy.config.endpoint.v3.ClusterLoadAssignment"

ACCESS_LOG_FORMAT = (
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(:AUTHORITY)%%REQ(:PATH)%\" %RESPONSE_CODE% %RESPONSE_FLAGS% "
    "%UPSTREAM_CLUSTER% %UPSTREAM_HOST% sni=%REQUESTED_SERVER_NAME% peer=%DOWNSTREAM_PEER_URI_SAN% "
    "%UPSTREAM_TRANSPORT_FAILURE_REASON%\n"
)


@dataclass
class ProxyConfig:
    """The resources of one proxy, and a version that changes whenever they do."""

    listeners: list[dict[str, Any]]
    clusters: list[dict[str, Any]]
    #: ClusterLoadAssignments of the EDS clusters, one EDS resource each
    endpoints: list[dict[str, Any]] = field(default_factory=list)

    def version(self) -> str:
        blob = json.dumps([self.listeners, self.clusters, self.endpoints], sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def eds_path(xds_dir: str, cluster: str) -> str:
    """The file an EDS cluster's endpoints are written to (one resource per file: Envoy's EDS takes one)."""
    return f"{xds_dir}/eds/{cluster.replace('|', '_').replace('/', '_')}.json"


def through_eds(clusters: list[dict[str, Any]], xds_dir: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Clusters with inline endpoints as istiod sends Kubernetes and static ServiceEntry hosts: ``type: EDS``,
    the endpoints a separate ClusterLoadAssignment (from a file here, over ADS from istiod). An endpoint
    update then leaves the cluster as it is: Envoy keeps its hosts' state (outlier ejections, pools)
    instead of replacing the whole cluster, as it does when a STATIC cluster's config changes."""
    out, endpoints = [], []
    for cluster in clusters:
        if cluster.get("type") != "STATIC" or "load_assignment" not in cluster:
            out.append(cluster)
            continue
        name = cluster["name"]
        eds = {k: v for k, v in cluster.items() if k not in ("type", "load_assignment")}
        eds["type"] = "EDS"
        eds["eds_cluster_config"] = {"service_name": name, "eds_config": {
            # istiod: initial_fetch_timeout 0s, so a cluster never waits for its endpoints to initialise
            "resource_api_version": "V3", "initial_fetch_timeout": "0s", "path_config_source": {"path": eds_path(xds_dir, name)}}}
        out.append(eds)
        endpoints.append({**cluster["load_assignment"], "cluster_name": name})
    return out, endpoints


@dataclass(frozen=True)
class CertPaths:
    """Where a proxy's certificate files are."""

    chain: str
    key: str
    root: str


def locality_dict(locality: str) -> dict[str, str]:
    parts = (locality.split("/") + ["", "", ""])[:3]
    return {k: v for k, v in zip(("region", "zone", "sub_zone"), parts, strict=True) if v}


def duration(text: str) -> str:
    return f"{parse_duration(text):.3f}s"


def common_tls(certs: CertPaths, sans: list[dict[str, Any]], alpn: list[str] | None,
               tls_params: dict[str, Any] | None = None) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "tls_certificates": [
            {"certificate_chain": {"filename": certs.chain}, "private_key": {"filename": certs.key}}
        ],
        "validation_context": {"trusted_ca": {"filename": certs.root}},
    }
    if sans:
        ctx["validation_context"]["match_typed_subject_alt_names"] = sans
    if alpn:
        ctx["alpn_protocols"] = alpn
    if tls_params:
        ctx["tls_params"] = tls_params
    return ctx


def upstream_mtls(certs: CertPaths, sni: str, sans: list[str]) -> dict[str, Any]:
    """Istio mTLS towards a mesh endpoint: the client's certificate, the mesh root, the server's
    SPIFFE IDs, TLS 1.2 to 1.3 (cluster_tls.go defaultUpstreamCommonTLSContext: without a
    maximum, Envoy's client stops at TLS 1.2)."""
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": UPSTREAM_TLS,
            "sni": sni,
            "common_tls_context": common_tls(
                certs, [{"san_type": "URI", "matcher": {"exact": s}} for s in sorted(set(sans))], CLIENT_ALPNS,
                {"tls_minimum_protocol_version": "TLSv1_2", "tls_maximum_protocol_version": "TLSv1_3"},
            ),
        },
    }


def downstream_mtls(certs: CertPaths, trust_domain: str) -> dict[str, Any]:
    """An inbound chain's Istio mTLS, as authn/utils BuildInboundTLS renders it: a client
    certificate is required, its chain must end at the mesh root and its SPIFFE ID must be in
    the trust domain (authn TrustDomainsForValidation -> SAN prefix ``spiffe://<td>/``);
    TLS 1.2 to 1.3 with istiod's cipher list; ALPN h2, http/1.1."""
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": DOWNSTREAM_TLS,
            "require_client_certificate": True,
            "common_tls_context": common_tls(
                certs, [{"san_type": "URI", "matcher": {"prefix": f"spiffe://{trust_domain}/"}}], SERVER_ALPNS,
                {"tls_minimum_protocol_version": "TLSv1_2", "tls_maximum_protocol_version": "TLSv1_3",
                 "cipher_suites": SERVER_CIPHERS},
            ),
        },
    }


def access_log(path: str) -> list[dict[str, Any]]:
    return [
        {
            "name": "envoy.access_loggers.file",
            "typed_config": {"@type": FILE_LOG, "path": path, "log_format": {"text_format_source": {"inline_string": ACCESS_LOG_FORMAT}}},
        }
    ]


def bootstrap(node_id: str, cluster: str, locality: str, xds_dir: str) -> dict[str, Any]:
    """An Envoy bootstrap that reads listeners and clusters from files the lab rewrites."""
    return {
        "node": {"id": node_id, "cluster": cluster, "locality": locality_dict(locality)},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": ADMIN_PORT}}},
        "dynamic_resources": {
            "cds_config": {"resource_api_version": "V3", "path_config_source": {"path": f"{xds_dir}/cds.json"}},
            "lds_config": {"resource_api_version": "V3", "path_config_source": {"path": f"{xds_dir}/lds.json"}},
        },
    }


def discovery_response(version: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"version_info": version, "resources": resources}
