"""The mutants of ``make mutants``: realistic breakages of the mesh, each with what it models, the suite
tests that should kill it first, and the words of a failure that names its cause.

Two kinds: a **lab break** (``--lab-break NAME``, eastwest/backends/lab/breaks.py) where the lab itself
must behave wrongly, and a **manifest patch** (an edit of a copy of manifests/, as a user's own
misconfiguration would be). Adding a mutant is one entry in ``MUTANTS``; a lab break also needs its
entry in breaks.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from eastwest.backends.lab.breaks import CATALOGUE as LAB_BREAKS

MTLS = "suites/security/test_mtls_across_gateway.py"
PLAINTEXT = "suites/security/test_gateway_plaintext.py"
MUTUAL = "suites/security/test_mutual_authentication.py"
SERVER = "suites/security/test_server_identity.py"
FORGED = "suites/security/test_forged_identity_headers.py"
EXPOSURE = "suites/security/test_gateway_exposure.py"
WIRE = "suites/security/test_wire.py"
PEER_AUTH = "suites/security/test_peer_authentication.py"
UNTRUSTED = "suites/security/test_untrusted_root.py"
SE_ROUTE = "suites/routing/test_service_entry.py::test_service_entry_with_destination_rule_routes_to_eu_over_mtls"
PREFERENCE = "suites/locality/test_locality_preference.py::test_healthy_clusters_serve_their_own_region"
DISTRIBUTE = "suites/locality/test_locality_preference.py::test_distribute_splits_traffic_80_20"
IDENTITY = "suites/topology/test_mesh_identity.py"
GATEWAYS = "suites/topology/test_east_west_gateways.py"
SPLIT_HORIZON = "suites/topology/test_split_horizon_endpoints.py"
POD_NETWORKS = "suites/topology/test_pod_networks.py"
HTTP_ABORT = "suites/failover/test_http_faults.py::test_http_abort_on_us_echo_fails_over_to_eu_and_back"

NETWORK_VIEW = "suites/topology/test_gateway_network_view.py"

Docs = list[dict[str, Any]]
Edit = Callable[[Docs], None]


@dataclass(frozen=True)
class Mutant:
    name: str
    area: str
    models: str
    #: the suite tests that should kill it (run first; the whole of suites/ runs only if they do not)
    tests: tuple[str, ...]
    #: a regular expression the failure output must match for the cause to count as named
    cause: str
    #: manifest patches: (file under manifests/, edit of its YAML documents); none for a lab break
    patches: tuple[tuple[str, Edit], ...] = field(default=())
    #: why it cannot be killed (an equivalent mutant: it changes nothing observable)
    equivalent: str | None = None

    @property
    def kind(self) -> str:
        return "patch" if self.patches else "lab break"

    def apply_to(self, manifests: Path) -> None:
        """Edit the copy of manifests/ at ``manifests``."""
        for relative, edit in self.patches:
            path = manifests / relative
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
            edit(docs)
            path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def _set(path: str, value: Any, *, kind: str | None = None) -> Edit:
    """Set a dotted path (``spec.trafficPolicy.tls.sni``) in every document (of ``kind``)."""
    def edit(docs: Docs) -> None:
        for doc in docs:
            if kind and doc.get("kind") != kind:
                continue
            *parents, last = path.split(".")
            node = doc
            for key in parents:
                node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
            if value is _DELETE:
                node.pop(last, None)
            else:
                node[last] = value
    return edit


_DELETE = object()
DR_EU = "suites/routing/destinationrule-echo-eu.yaml"
SE_EU = "suites/routing/serviceentry-echo-eu.yaml"
DIST = "suites/locality/destinationrule-echo-distribute.yaml"
FAILOVER = "suites/locality/destinationrule-echo-failover.yaml"
ISTIOD = "istio/istiod.values.yaml"
GATEWAY_VALUES = "istio/eastwest-gateway.values.yaml"
CROSS_NETWORK = "istio/cross-network-gateway.yaml"


def _split(us: int, eu: int) -> Edit:
    return _set("spec.trafficPolicy.loadBalancer.localityLbSetting.distribute.0.to", {"us/*": us, "eu/*": eu})


_BREAK_MUTANTS: dict[str, tuple[tuple[str, ...], str]] = {
    "split-roots": ((MTLS,), r"do not share one root CA"),
    "foreign-trust-domain-workloads": ((IDENTITY,), r"trust domain eu\.local"),
    "untrusted-client-accepted": ((UNTRUSTED,), r"servers refusing a client certificate from an untrusted root: .*\n?.*expected every request to be refused"),
    "gateway-one-service": ((MTLS,), r"presented \['spiffe://corp\.local/ns/echo/sa/echo'\]"),
    "gateway-ignores-network-view": ((NETWORK_VIEW,), r"it ignores its network view"),
    "gateway-plaintext-passthrough": ((PLAINTEXT,), r"answered plaintext HTTP on 15443"),
    "pod-networks-flat": ((POD_NETWORKS,), r"the pod networks are flat"),
    "split-horizon-off": ((SPLIT_HORIZON,), r"appear as endpoints in the US"),
    "remote-secret-missing": ((SPLIT_HORIZON, MTLS), r"does not see the EU cluster|no healthy endpoint"),
    "proxy-locality-unset": ((PREFERENCE,), r"locality load balancing is off"),
    # the security suite's breaks (issue 8)
    "one-way-tls": ((MUTUAL,), r"its TLS is one-way"),
    "server-skips-trust-domain": ((MUTUAL,), r"does not check the peer's trust domain"),
    "client-skips-san-check": ((SERVER,), r"not in its DestinationRule's subjectAltNames"),
    "client-skips-server-verification": ((f"{SERVER}::test_client_refuses_a_server_with_a_certificate_from_another_root",),
                                         r"does not verify the server's certificate chain"),
    "xfcc-forwarded": ((FORGED,), r"forwarded the client's X-Forwarded-Client-Cert"),
    "gateway-plaintext-port": ((f"{EXPOSURE}::test_the_gateway_serves_only_east_west_ports_from_the_other_cluster",),
                               r"which a real east-west gateway does not serve"),
    "admin-on-all-addresses": ((f"{EXPOSURE}::test_no_proxy_admin_api_answers_from_outside_its_pod",),
                               r"admin API listens on a non-loopback address"),
    "tls12-max": ((WIRE,), r"the client offered no TLS 1.3"),
}

MUTANTS: tuple[Mutant, ...] = (
    *(Mutant(b.name, b.area, b.models, *_BREAK_MUTANTS[b.name]) for b in LAB_BREAKS if b.name in _BREAK_MUTANTS),
    # ---- trust
    Mutant("trust-domain-per-cluster", "trust", "each istiod installed with its own meshConfig.trustDomain (us.corp.local, eu.corp.local)",
           (IDENTITY, MTLS), r"(us|eu)\.corp\.local", ((ISTIOD, _set("meshConfig.trustDomain", "${CLUSTER}.corp.local")),)),
    Mutant("trust-domain-chart-default", "trust", "meshConfig.trustDomain left out: the istiod chart's default cluster.local",
           (IDENTITY,), r"cluster\.local", ((ISTIOD, _set("meshConfig.trustDomain", _DELETE)),)),
    Mutant("route-pins-wrong-san", "trust", "the route's DestinationRule pins subjectAltNames to another service account",
           (SE_ROUTE,), r"SAN check: the server presented \['spiffe://corp\.local/ns/echo/sa/echo'\]",
           ((DR_EU, _set("spec.trafficPolicy.tls.subjectAltNames", ["spiffe://${TRUST_DOMAIN}/ns/echo/sa/sleep"])),)),
    # ---- routing: the hand-written ServiceEntry route
    Mutant("route-without-sni", "routing", "DestinationRule ISTIO_MUTUAL without sni: the client sends outbound_.80_._.echo.eu.mesh.local",
           (SE_ROUTE,), r"matches NONE of the EU gateway's AUTO_PASSTHROUGH chains", ((DR_EU, _set("spec.trafficPolicy.tls.sni", _DELETE)),)),
    Mutant("route-sni-gateway-port", "routing", "sni built with the gateway's port 15443 instead of the EU Service port 80",
           (SE_ROUTE,), r"matches NONE of the EU gateway's AUTO_PASSTHROUGH chains",
           ((DR_EU, _set("spec.trafficPolicy.tls.sni", "outbound_.15443_._.echo.echo.svc.cluster.local")),)),
    Mutant("route-sni-target-port", "routing", "sni built with the Service's targetPort 8080 instead of its port 80",
           (SE_ROUTE,), r"matches NONE of the EU gateway's AUTO_PASSTHROUGH chains",
           ((DR_EU, _set("spec.trafficPolicy.tls.sni", "outbound_.8080_._.echo.echo.svc.cluster.local")),)),
    Mutant("route-tls-disabled", "routing", "the route's DestinationRule says tls.mode DISABLE: plaintext to 15443",
           (SE_ROUTE,), r"sends SNI None \(plaintext\)",
           ((DR_EU, _set("spec.trafficPolicy.tls", {"mode": "DISABLE"})),)),
    Mutant("route-endpoint-port-80", "routing", "the entry's endpoint keeps port 80 instead of mapping it to the gateway's 15443",
           (SE_ROUTE,), r"nothing listens at 172\.31\.255\.20:80", ((SE_EU, _set("spec.endpoints.0.ports", {"http": 80})),)),
    Mutant("route-to-us-gateway", "routing", "the entry's endpoint names the US gateway's load balancer, not the EU one",
           (SE_ROUTE,), r"observed \{'echo in us'", ((SE_EU, _set("spec.endpoints.0.address", "${US_GATEWAY_HOSTNAME}")),)),
    Mutant("route-static-with-name", "routing", "resolution STATIC with a hostname endpoint (istiod's validation rejects it)",
           (SE_ROUTE,), r"with resolution STATIC endpoints must be IP addresses", ((SE_EU, _set("spec.resolution", "STATIC")),)),
    Mutant("route-port-15443", "routing", "the entry exposes 15443 (the project's former shape) while clients call port 80",
           (SE_ROUTE,), r"no route for this host", ((SE_EU, _set("spec.ports.0.number", 15443)),)),
    # ---- gateway
    Mutant("gateway-hosts-elsewhere", "gateway", "cross-network-gateway exposes *.example.com instead of *.local",
           (GATEWAYS,), r"could not connect to the (us|eu) gateway", ((CROSS_NETWORK, _set("spec.servers.0.hosts", ["*.example.com"])),)),
    Mutant("gateway-selector-wrong", "gateway", "cross-network-gateway selects istio: ingressgateway (labels of the ingress chart)",
           (GATEWAYS,), r"could not connect to the (us|eu) gateway", ((CROSS_NETWORK, _set("spec.selector", {"istio": "ingressgateway"})),)),
    Mutant("gateway-port-15444", "gateway", "the AUTO_PASSTHROUGH server on a port other than 15443",
           (GATEWAYS,), r"could not connect to the (us|eu) gateway", ((CROSS_NETWORK, _set("spec.servers.0.port.number", 15444)),)),
    Mutant("gateway-without-network", "gateway", "the gateway chart installed without networkGateway: no network label, no address",
           (GATEWAYS,), r"has no external address", ((GATEWAY_VALUES, _set("networkGateway", _DELETE)),)),
    Mutant("gateway-service-clusterip", "gateway", "the gateway Service is ClusterIP: no external address (LB pending, pitfall 1)",
           (GATEWAYS,), r"has no external address", ((GATEWAY_VALUES, _set("service.type", "ClusterIP")),)),
    # ---- locality
    Mutant("distribute-70-30", "locality", "distribute weights 70/30 instead of 80/20", (DISTRIBUTE,),
           r"locality weights are eu 30%, us 70%", ((DIST, _split(70, 30)),)),
    Mutant("distribute-90-10", "locality", "distribute weights 90/10 instead of 80/20", (DISTRIBUTE,),
           r"locality weights are eu 10%, us 90%", ((DIST, _split(90, 10)),)),
    Mutant("distribute-inverted", "locality", "distribute weights inverted (20/80)", (DISTRIBUTE,), r": inverted", ((DIST, _split(20, 80)),)),
    Mutant("distribute-disabled", "locality", "localityLbSetting.enabled false under distribute", (DISTRIBUTE,),
           r"locality load balancing is off", ((DIST, _set("spec.trafficPolicy.loadBalancer.localityLbSetting.enabled", False)),)),
    Mutant("locality-label-wrong", "locality", "echo pods labelled istio-locality us.us-a in every cluster", (PREFERENCE,),
           r"carries the client's own locality",
           (("workloads/echo.yaml", _set("spec.template.metadata.labels.istio-locality", "us.us-a", kind="Deployment")),)),
    # ---- failover
    Mutant("failover-without-outlier-detection", "failover", "failover DestinationRule without outlierDetection (Istio then ignores it)",
           (PREFERENCE,), r"locality load balancing is off", ((FAILOVER, _set("spec.trafficPolicy.outlierDetection", _DELETE)),)),
    Mutant("failover-disabled", "failover", "localityLbSetting.enabled false under failover", (PREFERENCE,),
           r"locality load balancing is off", ((FAILOVER, _set("spec.trafficPolicy.loadBalancer.localityLbSetting.enabled", False)),)),
    Mutant("failover-long-ejection", "failover", "baseEjectionTime 10m, as in the istio.io failover task: traffic does not come home",
           (HTTP_ABORT,), r"no failback", ((FAILOVER, _set("spec.trafficPolicy.outlierDetection.baseEjectionTime", "10m")),)),
    Mutant("failover-lenient-outlier-detection", "failover", "outlierDetection that needs 50 consecutive 5xx and counts no gateway errors",
           (HTTP_ABORT,), r"never ejected", ((FAILOVER, _set("spec.trafficPolicy.outlierDetection", {
               "consecutive5xxErrors": 50, "interval": "1s", "baseEjectionTime": "5s", "maxEjectionPercent": 100})),)),
    # ---- discovery and exposure
    Mutant("network-label-same", "discovery", "istio-system labelled us-net in both clusters (istio/istio#39712)", (SPLIT_HORIZON,),
           r"appear as endpoints in the US", (("istio/istio-system.yaml", _set("metadata.labels", {"topology.istio.io/network": "us-net"})),)),
    Mutant("mesh-id-per-cluster", "discovery", "each istiod installed with its own meshID", (IDENTITY,), r"expected mesh ID",
           ((ISTIOD, _set("global.meshID", "${CLUSTER}-mesh")),)),
    Mutant("peer-authentication-permissive", "exposure", "the namespace's PeerAuthentication says PERMISSIVE where STRICT was meant",
           (PEER_AUTH,), r"STRICT echo refusing a client without a sidecar: .*\n?.*expected every request to be refused",
           (("suites/security/peer-authentication-strict.yaml", _set("spec.mtls.mode", "PERMISSIVE")),)),
    # ---- equivalent: listed with the reason, never counted
    Mutant("failover-rules-removed", "failover", "the failover DestinationRule without its failover list", (PREFERENCE,), "",
           ((FAILOVER, _set("spec.trafficPolicy.loadBalancer.localityLbSetting.failover", _DELETE)),),
           equivalent="with two regions the remote one gets a lower priority whether or not a rule names it; failover "
                      "rules only order a third region and beyond"),
    Mutant("route-mesh-internal", "routing", "the entry says MESH_INTERNAL instead of MESH_EXTERNAL", (SE_ROUTE,), "",
           ((SE_EU, _set("spec.location", "MESH_INTERNAL")),),
           equivalent="the DestinationRule sets ISTIO_MUTUAL and the SNI itself; location only changes auto mTLS (off for an "
                      "endpoint without the tlsMode label either way) and EU gateways never see this US-only entry"),
    Mutant("route-locality-us", "routing", "the entry's endpoint says locality us", (SE_ROUTE,), "",
           ((SE_EU, _set("spec.endpoints.0.locality", "us")),),
           equivalent="the entry has one endpoint and no locality settings; locality only ranks endpoints against each other"),
)
