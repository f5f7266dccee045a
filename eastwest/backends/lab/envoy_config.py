"""Envoy resources as the lab writes them: type URLs, TLS and access-log builders, bootstrap.

Plain builders with no policy in them: the lab's istiod (``istiod/``) decides what each
proxy gets, ``proxies.py`` writes it to the proxy's files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from eastwest.backends.lab.schemas import parse_duration

OUTBOUND_PORT = 15001
ADMIN_PORT = 15000
GATEWAY_PORT = 15443
ISTIO_ALPNS = ["istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2"]
CLIENT_ALPNS = ["istio-http/1.1", "istio"]
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

    def version(self) -> str:
        blob = json.dumps([self.listeners, self.clusters], sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


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


def common_tls(certs: CertPaths, sans: list[dict[str, Any]], alpn: list[str] | None) -> dict[str, Any]:
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
    return ctx

def upstream_mtls(certs: CertPaths, sni: str, sans: list[str]) -> dict[str, Any]:
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": UPSTREAM_TLS,
            "sni": sni,
            "common_tls_context": common_tls(
                certs, [{"san_type": "URI", "matcher": {"exact": s}} for s in sorted(set(sans))], CLIENT_ALPNS
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
