"""The kinds, fields and values the lab implements: everything else is refused by name.

``SCHEMAS`` lists every field of every kind the lab acts on, ``ENUMS`` the values it
implements, ``VALUES`` the Helm values it reads. The lab never silently ignores
configuration, because a test that passes on ignored config proves nothing.
"""

from __future__ import annotations

import re
from typing import Any

STR, INT, BOOL = str, int, bool
MAP = "map"  # string -> string (labels, annotations, selectors)
INT_MAP = "int-map"  # string -> int
INT_OR_STR = "int-or-string"
DURATION = "duration"

META = {"name": STR, "namespace": STR, "labels": MAP, "annotations": MAP}
ISTIO_VERSIONS = ("v1", "v1beta1", "v1alpha3")

_ENV = {"name": STR, "value": STR, "valueFrom": {"fieldRef": {"fieldPath": STR, "apiVersion": STR}}}
_CONTAINER = {
    "name": STR,
    "image": STR,
    "args": [STR],
    "command": [STR],
    "ports": [{"containerPort": INT, "name": STR, "protocol": STR}],
    "env": [_ENV],
    "imagePullPolicy": STR,
}
_TRAFFIC_POLICY = {
    "tls": {"mode": STR, "sni": STR, "subjectAltNames": [STR]},
    "loadBalancer": {
        "simple": STR,
        "localityLbSetting": {
            "enabled": BOOL,
            "distribute": [{"from": STR, "to": INT_MAP}],
            "failover": [{"from": STR, "to": STR}],
        },
    },
    "outlierDetection": {
        "consecutive5xxErrors": INT,
        "consecutiveGatewayErrors": INT,
        "interval": DURATION,
        "baseEjectionTime": DURATION,
        "maxEjectionPercent": INT,
        "minHealthPercent": INT,
    },
    "connectionPool": {
        "tcp": {"connectTimeout": DURATION, "maxConnections": INT},
        "http": {"maxRequestsPerConnection": INT, "http1MaxPendingRequests": INT},
    },
}

SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("v1", "Namespace"): {"metadata": META},
    ("v1", "ServiceAccount"): {"metadata": META},
    ("v1", "Service"): {
        "metadata": META,
        "spec": {
            "type": STR,
            "selector": MAP,
            "ports": [{"name": STR, "port": INT, "targetPort": INT_OR_STR, "protocol": STR, "appProtocol": STR}],
        },
    },
    ("apps/v1", "Deployment"): {
        "metadata": META,
        "spec": {
            "replicas": INT,
            "selector": {"matchLabels": MAP},
            "template": {"metadata": META, "spec": {"serviceAccountName": STR, "containers": [_CONTAINER]}},
        },
    },
    ("networking.istio.io", "Gateway"): {
        "metadata": META,
        "spec": {
            "selector": MAP,
            "servers": [
                {"port": {"number": INT, "name": STR, "protocol": STR}, "tls": {"mode": STR}, "hosts": [STR]}
            ],
        },
    },
    ("networking.istio.io", "ServiceEntry"): {
        "metadata": META,
        "spec": {
            "hosts": [STR],
            "addresses": [STR],
            "location": STR,
            "resolution": STR,
            "ports": [{"number": INT, "name": STR, "protocol": STR, "targetPort": INT}],
            "endpoints": [{"address": STR, "ports": INT_MAP, "locality": STR, "labels": MAP, "weight": INT}],
            "subjectAltNames": [STR],
        },
    },
    ("networking.istio.io", "DestinationRule"): {
        "metadata": META,
        "spec": {"host": STR, "trafficPolicy": _TRAFFIC_POLICY},
    },
    # only the route timeout (istiod/routes.py): one route to the service itself, no match, no weights
    ("networking.istio.io", "VirtualService"): {
        "metadata": META,
        "spec": {"hosts": [STR], "http": [{"route": [{"destination": {"host": STR}}], "timeout": DURATION}]},
    },
    ("security.istio.io", "PeerAuthentication"): {
        "metadata": META,
        "spec": {"selector": {"matchLabels": MAP}, "mtls": {"mode": STR}},
    },
}

CLUSTER_SCOPED = {"Namespace"}

# allowed values of enum-like fields: (kind, dotted path) -> values
ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("Service", "spec.type"): ("ClusterIP", "LoadBalancer"),
    ("Service", "spec.ports[].protocol"): ("TCP",),
    ("Gateway", "spec.servers[].tls.mode"): ("AUTO_PASSTHROUGH",),
    ("Gateway", "spec.servers[].port.protocol"): ("TLS",),
    ("ServiceEntry", "spec.location"): ("MESH_EXTERNAL", "MESH_INTERNAL"),
    ("ServiceEntry", "spec.resolution"): ("STATIC", "DNS", "NONE"),
    ("ServiceEntry", "spec.ports[].protocol"): ("HTTP",),
    ("DestinationRule", "spec.trafficPolicy.tls.mode"): ("DISABLE", "ISTIO_MUTUAL"),
    ("DestinationRule", "spec.trafficPolicy.loadBalancer.simple"): ("ROUND_ROBIN", "LEAST_REQUEST", "RANDOM"),
    ("PeerAuthentication", "spec.mtls.mode"): ("UNSET", "DISABLE", "PERMISSIVE", "STRICT"),
}

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")


def parse_duration(text: str) -> float:
    """``"250ms"`` -> 0.25; ``"1m"`` -> 60.0. Raises ValueError."""
    match = _DURATION.match(str(text).strip())
    if not match:
        raise ValueError(f"not a duration (like 250ms, 1s, 1m): {text!r}")
    return float(match[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match[2]]


# the Helm values the lab's "helm install" reads (istio/istiod and istio/gateway charts)
ISTIOD_VALUES = {"global": {"meshID": STR, "multiCluster": {"clusterName": STR}, "network": STR}, "meshConfig": {"trustDomain": STR}}
GATEWAY_VALUES = {"name": STR, "networkGateway": STR, "service": {"type": STR}, "labels": MAP}

