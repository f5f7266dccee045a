"""The lab's istiod measured against the real one: xDS reduced to the facts that decide behaviour, and their diff.

:func:`facts` turns one proxy's configuration, either istiod's golden (``goldens/<scenario>/*.json``,
written by ``tools/istiod-golden``) or what the lab's ``ControlPlane`` renders for the same world,
into ``{resource: {field: value}}``; ``golden_compare.py`` diffs the two and applies the allowlist.

Resources and fields:

- ``CDS <cluster>``: type, connect timeout, LB policy, outlier detection, panic threshold,
  locality-weighted LB, circuit breakers, upstream HTTP protocol, and per TLS transport socket
  (``tls`` or ``tls[<match name>]``) SNI, SAN matchers, trust, client certificate, TLS versions,
  ciphers and ALPN;
- ``EDS <cluster>``: one field per endpoint address, valued priority, locality, weights, tlsMode
  and health (split horizon: which address stands for which locality, and how heavily);
- ``RDS <vhost>``: the outbound virtual host's domains and its route (cluster, timeout, retries);
- ``LDS <listener class> <client>``: what a typical client's connection meets (see ``CLIENTS``):
  the filter chain Envoy selects for it (by port, SNI, transport protocol and ALPN, as Envoy's
  filter chain matcher does) and what that chain does: TLS termination and its validation,
  HTTP or TCP, XFCC handling, the cluster it goes to. ``none`` means the connection is closed.

Normalisation (both sides go through it; anything not named here is compared):

1. **Istio-only extensions** are never read: filters named ``istio.*`` (metadata exchange, stats,
   ``istio.alpn``), TypedStruct configs, stats prefixes, access logs, metadata. The one effect of
   ``istio.alpn`` on the wire is kept: it rewrites an HTTP cluster's upstream ALPN per request
   (``istio-http/1.1, istio, http/1.1`` for HTTP/1.1), so the effective list is compared.
2. **Agent plumbing**: certificates from SDS (istiod) or files (lab) are both "the workload
   certificate" and "the mesh root"; config by ADS or files; the bootstrap's own resources
   (``BOOTSTRAP_ONLY``) and istiod's catch-alls for traffic the lab does not capture
   (``ISTIOD_CAPTURE_ONLY``) are dropped.
3. **Listener structure**: istiod captures with iptables (``virtualOutbound`` 15001 and per-port
   outbound listeners, ``virtualInbound`` 15006), the lab's clients use their proxy as an explicit
   HTTP proxy and its inbound listeners sit on the pod IP; so outbound listeners (istiod's
   ``<ip>_<port>``, the lab's ``outbound_*``) are compared through their routes (RDS), inbound
   ones through the client simulation; domains that are a Service's cluster IP (which the lab
   has none of) are dropped, and a domain's ``:<port>`` suffix for the vhost's own port too
   (istiod sets ``ignore_port_in_host_matching``, the lab lists both forms).
4. **Where endpoints live**: EDS (istiod) or a cluster's inline ``load_assignment`` (lab) are
   read alike; the cluster type is still compared. Inbound clusters' type and address (istiod:
   ORIGINAL_DST to the pod IP, lab: the app on 127.0.0.1) are the lab's stand-in for iptables.
5. **Envoy defaults** fill absent fields on both sides (an unset panic threshold is 50 %, unset
   circuit breakers are 1024/1024/1024/3, an upstream TLS context without parameters negotiates
   TLS 1.2 only, endpoint health UNKNOWN is healthy...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from eastwest.backends.lab.schemas import parse_duration

Facts = dict[str, dict[str, Any]]

#: resources only Istio's bootstrap (not istiod) holds; the lab serves its equivalents with its xDS
BOOTSTRAP_ONLY = ("0.0.0.0_15021", "agent", "prometheus_stats", "sds-grpc", "xds-grpc", "agent_admin")
#: istiod's resources for traffic the lab does not capture (no iptables): dropped before comparing
ISTIOD_CAPTURE_ONLY = ("BlackHoleCluster", "PassthroughCluster", "InboundPassthroughCluster", "InboundPassthroughClusterIpv4",
                       "InboundPassthroughClusterIpv6", "virtualOutbound", "virtualInbound")

ENVOY_OUTLIER_DEFAULTS = {
    "consecutive_5xx": 5, "enforcing_consecutive_5xx": 100, "consecutive_gateway_failure": 5,
    "enforcing_consecutive_gateway_failure": 0, "interval": 10.0, "base_ejection_time": 30.0,
    "max_ejection_percent": 10, "enforcing_success_rate": 100,
}
ENVOY_CIRCUIT_BREAKER_DEFAULTS = {"max_connections": 1024, "max_pending_requests": 1024, "max_requests": 1024, "max_retries": 3}


@dataclass(frozen=True)
class Client:
    """A typical connection, as Envoy's listener filters would see it."""

    name: str
    transport: str  # tls | raw_buffer
    alpn: tuple[str, ...] = ()


#: the connections whose fate at an inbound port or the gateway's 15443 is compared
CLIENTS = (
    Client("istio-mtls", "tls", ("istio-http/1.1", "istio", "http/1.1")),
    Client("plain-tls", "tls", ("h2", "http/1.1")),
    Client("plaintext-http", "raw_buffer", ("http/1.1",)),
    Client("plaintext-tcp", "raw_buffer"),
)


def _typed(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("typed_config") or {}


def _seconds(value: Any) -> float | None:
    return None if value is None else round(parse_duration(str(value)), 3)


def _num(value: Any, default: Any = None) -> Any:
    if isinstance(value, dict):  # a wrapper that is present: {"value": n}, or {} when n is 0 (proto3 JSON omits zero)
        value = value.get("value", 0)
    if value is None:
        return default
    return float(value) if isinstance(value, float) or "." in str(value) else int(value)


# ---- TLS ---------------------------------------------------------------------------------------


def _sans(validation: dict[str, Any]) -> list[str]:
    """``match_subject_alt_names`` (istiod) and ``match_typed_subject_alt_names`` (lab) alike."""
    out = []
    for m in validation.get("match_subject_alt_names") or []:
        out += [f"{k}:{v}" for k, v in m.items() if k in ("exact", "prefix", "suffix", "contains")]
    for m in validation.get("match_typed_subject_alt_names") or []:
        out += [f"{k}:{v}" for k, v in (m.get("matcher") or {}).items() if k in ("exact", "prefix", "suffix", "contains")]
    return sorted(out)


def _validation(ctx: dict[str, Any]) -> dict[str, Any]:
    common = ctx.get("common_tls_context") or {}
    combined = common.get("combined_validation_context") or {}
    return combined.get("default_validation_context") or common.get("validation_context") or {}


def _tls_facts(ctx: dict[str, Any], upstream: bool, alpn_override: list[str] | None) -> dict[str, Any]:
    common = ctx.get("common_tls_context") or {}
    params = common.get("tls_params") or {}
    has_root = bool(common.get("combined_validation_context") or common.get("validation_context")
                    or common.get("validation_context_sds_secret_config"))
    has_cert = bool(common.get("tls_certificate_sds_secret_configs") or common.get("tls_certificates"))
    alpn = list(common.get("alpn_protocols") or [])
    if upstream and alpn_override is not None and alpn[-1:] == ["istio"]:
        alpn = alpn_override
    out: dict[str, Any] = {
        "trust": "mesh root" if has_root else "none",
        "certificate": "workload" if has_cert else "none",
        "san": _sans(_validation(ctx)),
        "tls_min": params.get("tls_minimum_protocol_version", "TLSv1_2"),
        # Envoy's defaults: a client stops at TLS 1.2, a server goes up to TLS 1.3
        "tls_max": params.get("tls_maximum_protocol_version", "TLSv1_2" if upstream else "TLSv1_3"),
        "ciphers": params.get("cipher_suites") or "envoy default",
        "alpn": alpn,
    }
    if upstream:
        out["sni"] = ctx.get("sni", "")
    else:
        out["require_client_certificate"] = bool(_num(ctx.get("require_client_certificate"), False))
    return out


# ---- CDS / EDS -------------------------------------------------------------------------------


def _cluster_facts(c: dict[str, Any], alpn_override: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    inbound = c["name"].startswith("inbound|")
    if not inbound:  # normalisation 4: an inbound cluster's type is the lab's stand-in for iptables
        out["type"] = c.get("type", "EDS" if c.get("eds_cluster_config") else "STATIC")
        out["lb_policy"] = c.get("lb_policy", "ROUND_ROBIN")
    out["connect_timeout"] = _seconds(c.get("connect_timeout", "5s"))
    od = c.get("outlier_detection")
    if od is None:
        out["outlier_detection"] = "none"
    else:
        for k, default in ENVOY_OUTLIER_DEFAULTS.items():
            v = od.get(k)
            out[f"outlier_detection.{k}"] = _seconds(v) if k in ("interval", "base_ejection_time") and v is not None else _num(v, default)
    common_lb = c.get("common_lb_config") or {}
    out["healthy_panic_threshold"] = float(_num(common_lb.get("healthy_panic_threshold"), 50.0))
    out["locality_weighted_lb"] = "locality_weighted_lb_config" in common_lb
    thresholds: dict[str, Any] = next((t for t in (c.get("circuit_breakers") or {}).get("thresholds") or [] if t.get("priority", "DEFAULT") == "DEFAULT"), {})
    for k, default in ENVOY_CIRCUIT_BREAKER_DEFAULTS.items():
        out[f"circuit_breakers.{k}"] = _num(thresholds.get(k), default)
    opts = ((c.get("typed_extension_protocol_options") or {}).get("envoy.extensions.upstreams.http.v3.HttpProtocolOptions")) or {}
    explicit = opts.get("explicit_http_config") or {}
    out["upstream_protocol"] = ("h2" if "http2_protocol_options" in explicit else "downstream" if "use_downstream_protocol_config" in opts
                                else "http/1.1")
    out["max_requests_per_connection"] = _num((opts.get("common_http_protocol_options") or {}).get("max_requests_per_connection"), "unlimited")
    if inbound:
        return out
    sockets = [(f"tls[{m['name']}]", m.get("transport_socket") or {}) for m in c.get("transport_socket_matches") or []]
    if c.get("transport_socket"):
        sockets.append(("tls", c["transport_socket"]))
    out["transport"] = [label for label, _ in sockets] or "plaintext"
    for label, sock in sockets:
        if sock.get("name") == "envoy.transport_sockets.tls":
            for k, v in _tls_facts(_typed(sock), True, alpn_override).items():
                out[f"{label}.{k}"] = v
        else:
            out[f"{label}"] = "plaintext"
    return out


def _endpoint_facts(cla: dict[str, Any], weighted: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for group in cla.get("endpoints") or []:
        loc = group.get("locality") or {}
        locality = "/".join(x for x in (loc.get("region"), loc.get("zone"), loc.get("sub_zone")) if x) or "-"
        lw = _num(group.get("load_balancing_weight"), "unset") if weighted else "ignored"
        for lb in group.get("lb_endpoints") or []:
            addr = lb["endpoint"]["address"]["socket_address"]
            meta = ((lb.get("metadata") or {}).get("filter_metadata") or {}).get("envoy.transport_socket_match") or {}
            health = lb.get("health_status", "UNKNOWN")
            out[f"endpoint {addr['address']}:{addr['port_value']}"] = (
                f"priority={_num(group.get('priority'), 0)} locality={locality} locality_weight={lw} "
                f"weight={_num(lb.get('load_balancing_weight'), 1)} tlsMode={meta.get('tlsMode', '-')} "
                f"health={'healthy' if health in ('UNKNOWN', 'HEALTHY') else health.lower()}"
            )
    return out or {"endpoints": "none"}


# ---- LDS: what a client's connection meets -------------------------------------------------------

HCM_NAME = "envoy.filters.network.http_connection_manager"
TCP_PROXY_NAME = "envoy.filters.network.tcp_proxy"


def _chain_matches(chain: dict[str, Any], level: str, value: Any) -> bool | None:
    """True/False if the chain names ``level`` (matching ``value`` or not), None if it leaves it open."""
    match = chain.get("filter_chain_match") or {}
    want = match.get(level)
    if want in (None, [], ""):
        return None
    if level == "destination_port":
        return int(_num(want)) == value
    if level == "server_names":
        return any(value == n or (n.startswith("*") and value.endswith(n[1:])) for n in want) if value else False
    if level == "application_protocols":
        return any(a in want for a in value)
    return bool(want == value)


def _inspects(listener_filter: dict[str, Any], port: int) -> bool:
    """A listener filter runs unless its ``filter_disabled`` matches the destination port (istiod turns
    the HTTP inspector off on ports whose protocol it knows)."""
    disabled = listener_filter.get("filter_disabled") or {}
    rules = (disabled.get("or_match") or {}).get("rules") or ([disabled] if disabled else [])
    for rule in rules:
        r = rule.get("destination_port_range") or {}
        if r and int(r.get("start", 0)) <= port < int(r.get("end", 0)):
            return False
    return True


def select_chain(listener: dict[str, Any], port: int, client: Client, sni: str = "") -> dict[str, Any] | None:
    """The filter chain Envoy picks for ``client`` (filter_chain_match: the most specific match wins, level by level)."""
    inspectors = {f.get("name") for f in listener.get("listener_filters") or [] if _inspects(f, port)}
    tls_seen = "envoy.filters.listener.tls_inspector" in inspectors
    transport = client.transport if tls_seen else "raw_buffer"
    sniffed = tls_seen if transport == "tls" else "envoy.filters.listener.http_inspector" in inspectors
    alpn = client.alpn if sniffed else ()
    candidates = list(listener.get("filter_chains") or [])
    for level, value in (("destination_port", port), ("server_names", sni if transport == "tls" else ""),
                         ("transport_protocol", transport), ("application_protocols", alpn)):
        specific = [c for c in candidates if _chain_matches(c, level, value)]
        candidates = specific or [c for c in candidates if _chain_matches(c, level, value) is None]
    return candidates[0] if candidates else listener.get("default_filter_chain")


def _route_facts(route: dict[str, Any]) -> dict[str, Any]:
    action = route.get("route") or {}
    retry = action.get("retry_policy") or {}
    return {
        "route.match": route.get("match"),
        "route.cluster": action.get("cluster") or sorted(c["name"] for c in (action.get("weighted_clusters") or {}).get("clusters") or []),
        "route.timeout": _seconds(action.get("timeout", "15s")),
        "route.retry_on": sorted(str(retry.get("retry_on", "")).split(",")) if retry else "none",
        "route.num_retries": _num(retry.get("num_retries"), 1) if retry else "none",
        "route.retry_host_predicate": sorted(p["name"] for p in retry.get("retry_host_predicate") or []),
        "route.host_selection_retry_max_attempts": _num(retry.get("host_selection_retry_max_attempts"), 1) if retry else "none",
        "route.retriable_status_codes": sorted(retry.get("retriable_status_codes") or []),
    }


def _chain_facts(chain: dict[str, Any] | None, routes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if chain is None:
        return {"chain": "none (connection closed)"}
    sock = chain.get("transport_socket") or {}
    tls = sock.get("name") == "envoy.transport_sockets.tls"
    kinds = [{HCM_NAME: "http", TCP_PROXY_NAME: "tcp"}[f["name"]] for f in chain.get("filters") or [] if f.get("name") in (HCM_NAME, TCP_PROXY_NAME)]
    out: dict[str, Any] = {"chain": "+".join(["tls" if tls else "plaintext", *kinds])}
    if tls:
        out.update({f"tls.{k}": v for k, v in _tls_facts(_typed(sock), False, None).items()})
    else:
        out["tls"] = "not terminated"
    mtls = tls and out["tls.require_client_certificate"]
    for f in chain.get("filters") or []:
        cfg = _typed(f)
        if f.get("name") == HCM_NAME:
            out["filter"] = "http"
            fcc = cfg.get("forward_client_cert_details", "SANITIZE")
            # Envoy strips XFCC on a connection without a verified client certificate unless ALWAYS_FORWARD_ONLY
            # (conn_manager_utility mutateXfccRequestHeader), so only mTLS chains' XFCC settings act
            out["xfcc"] = fcc if mtls or fcc == "ALWAYS_FORWARD_ONLY" else "SANITIZE"
            current = cfg.get("set_current_client_cert_details") or {}
            out["xfcc_set"] = sorted(k for k, v in current.items() if v) if mtls and fcc in ("APPEND_FORWARD", "SANITIZE_SET") else []
            rc = cfg.get("route_config") or routes.get((cfg.get("rds") or {}).get("route_config_name", ""), {})
            vhost = next((v for v in rc.get("virtual_hosts") or [] if "*" in v.get("domains", [])), None)
            out.update(_route_facts((vhost or {}).get("routes", [{}])[0]) if vhost else {"route": "none"})
        elif f.get("name") == TCP_PROXY_NAME:
            out["filter"] = "tcp"
            out["cluster"] = cfg.get("cluster") or sorted(c["name"] for c in (cfg.get("weighted_clusters") or {}).get("clusters") or [])
    return out


# ---- one proxy -------------------------------------------------------------------------------------


def lab_xds(listeners: list[dict[str, Any]], clusters: list[dict[str, Any]], endpoints: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The lab's ProxyConfig in the golden's shape: its route configs are inline, its endpoints EDS or inline."""
    return {"cds": clusters, "lds": listeners, "rds": [], "eds": endpoints}


def _alpn_override(xds: dict[str, list[dict[str, Any]]]) -> list[str] | None:
    """What ``istio.alpn`` sets as ALPN for HTTP/1.1 upstreams, if the proxy's HCMs carry it."""
    for listener in xds["lds"]:
        for chain in listener.get("filter_chains") or []:
            for f in chain.get("filters") or []:
                for hf in _typed(f).get("http_filters") or []:
                    if hf.get("name") == "istio.alpn":
                        for o in _typed(hf).get("alpn_override") or []:
                            if o.get("upstream_protocol") == "HTTP11":
                                return list(o.get("alpn_override") or [])
    return None


def facts(xds: dict[str, list[dict[str, Any]]], *, router: bool, cluster_ips: set[str]) -> Facts:
    """Reduce one proxy's xDS (istiod's golden, or :func:`lab_xds`) to the facts compared (module docstring)."""
    dropped = set(BOOTSTRAP_ONLY) | set(ISTIOD_CAPTURE_ONLY)
    out: Facts = {}
    routes = {r["name"]: r for r in xds["rds"]}
    outbound_vhosts: dict[str, dict[str, Any]] = {}
    for rc in xds["rds"]:
        if not rc["name"].startswith("inbound|"):
            outbound_vhosts.update({v["name"]: v for v in rc.get("virtual_hosts") or []})
    inbound: dict[int, dict[str, Any]] = {}  # port -> the listener an inbound connection to it meets
    gateway: dict[str, Any] | None = None
    for listener in xds["lds"]:
        name = listener["name"]
        if name == "virtualInbound":
            ports = {int(_num((c.get("filter_chain_match") or {}).get("destination_port"), 0)) for c in listener.get("filter_chains") or []}
            inbound.update({p: listener for p in ports if 0 < p < 15000})  # 15000+: the proxy's own ports
        elif name.startswith("inbound_"):
            inbound[int(listener["address"]["socket_address"]["port_value"])] = listener
        elif name == "0.0.0.0_15443" and router:
            gateway = listener
        for chain in listener.get("filter_chains") or []:  # the lab's outbound routes are inline
            for f in chain.get("filters") or []:
                rc = _typed(f).get("route_config") or {}
                if f.get("name") == HCM_NAME and name.startswith("outbound"):
                    outbound_vhosts.update({v["name"]: v for v in rc.get("virtual_hosts") or []})
        if name not in dropped and not name.startswith(("inbound_", "outbound_", "virtual")) \
                and not re.match(r"^[\d.]+_\d+$", name):
            out[f"LDS listener {name}"] = {"present": True}
    http_clusters = {str(v.get("routes", [{}])[0].get("route", {}).get("cluster")) for v in outbound_vhosts.values()}
    override = _alpn_override(xds)
    weighted = set()
    for c in xds["cds"]:
        if c["name"] in dropped:
            continue
        cf = _cluster_facts(c, override if c["name"] in http_clusters else None)
        out[f"CDS {c['name']}"] = cf
        if cf["locality_weighted_lb"]:
            weighted.add(c["name"])
    assignments = {c["name"]: c["load_assignment"] for c in xds["cds"] if c.get("load_assignment")}
    assignments.update({cla["cluster_name"]: cla for cla in xds["eds"]})
    for name, cla in assignments.items():
        if name not in dropped and not name.startswith("inbound|"):
            out[f"EDS {name}"] = _endpoint_facts(cla, name in weighted)
    for vname, vhost in outbound_vhosts.items():
        if vname in ("allow_any", "block_all"):
            continue
        vport = vname.rsplit(":", 1)[-1]
        # a request for the vhost's port matches "host" and "host:<port>" alike (istiod: ignore_port_in_host_matching)
        domains = {d.removesuffix(f":{vport}") for d in vhost.get("domains") or []}
        domains = {d for d in domains if d not in cluster_ips}
        out[f"RDS {vname}"] = {**{f"domain {d}": "matched" for d in domains}, **_route_facts((vhost.get("routes") or [{}])[0])}
    for port, listener in sorted(inbound.items()):
        for client in CLIENTS:
            out[f"LDS inbound:{port} {client.name}"] = _chain_facts(select_chain(listener, port, client), routes)
    if gateway is not None:
        snis = sorted({n for c in gateway.get("filter_chains") or [] for n in (c.get("filter_chain_match") or {}).get("server_names") or []})
        for sni in snis:
            for client in CLIENTS[:2]:
                out[f"LDS gateway:15443 {client.name} sni={sni}"] = _chain_facts(select_chain(gateway, 15443, client, sni), routes)
        for client in CLIENTS[2:]:
            out[f"LDS gateway:15443 {client.name}"] = _chain_facts(select_chain(gateway, 15443, client), routes)
    return out
