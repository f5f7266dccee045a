"""Names of the workloads every backend deploys (manifests/workloads/, manifests/suites/)."""

from __future__ import annotations

from eastwest.mesh import Workload

#: the client with a sidecar, in every cluster
SLEEP = Workload("sleep", "sleep")
#: the echo server with a sidecar, in every cluster
ECHO = Workload("echo", "echo")
ECHO_URL = "http://echo.echo.svc.cluster.local/"
ECHO_UPSTREAM = "outbound|80||echo.echo.svc.cluster.local"
ECHO_SNI = "outbound_.80_._.echo.echo.svc.cluster.local"
#: each cluster's east-west gateway
EASTWEST_GATEWAY = Workload("istio-system", "istio-eastwestgateway")
GATEWAY_PORT = 15443

#: manifests/suites/security/echo-in-eu-only.yaml: a service with replicas in EU only
ECHO_EU_ONLY_URL = "http://echo-eu-only.echo.svc.cluster.local/"
#: manifests/suites/security/client-without-sidecar.yaml
CLIENT_WITHOUT_SIDECAR = Workload("legacy", "sleep")
#: manifests/suites/security/client-with-untrusted-root.yaml
CLIENT_WITH_UNTRUSTED_ROOT = Workload("sleep", "sleep-untrusted")
#: the echo service's name, as its answers name it (the echo body's "service")
ECHO_SERVICE = "echo"
#: manifests/suites/security/echo-in-eu-only.yaml
ECHO_EU_ONLY_SERVICE = "echo-eu-only"
#: manifests/suites/routing/serviceentry-echo-eu.yaml: the seed's ServiceEntry, called as the seed's
#: verification does (``curl http://echo.eu.mesh.local/``): port 80, its endpoint the EU gateway's 15443
SERVICE_ENTRY_URL = "http://echo.eu.mesh.local/"
SERVICE_ENTRY_UPSTREAM = "outbound|80||echo.eu.mesh.local"

#: manifests/suites/security/echo-in-eu-only.yaml: the SNI a sidecar sends it across the EU gateway
ECHO_EU_ONLY_SNI = "outbound_.80_._.echo-eu-only.echo.svc.cluster.local"
ECHO_EU_ONLY_HOST = "echo-eu-only.echo.svc.cluster.local"
#: manifests/suites/security/server-with-untrusted-root.yaml: an EU-only server whose certificate the mesh does not trust
ECHO_UNTRUSTED_URL = "http://echo-untrusted.echo.svc.cluster.local/"
#: manifests/suites/security/client-for-wire-capture.yaml: a US client that has opened no connection yet
WIRE_CLIENT = Workload("sleep", "sleep-wire")
#: what a sidecar offers in its ClientHello towards another sidecar (Istio's ALPN, then the app's)
SIDECAR_ALPNS = ("istio-http/1.1", "istio", "http/1.1")
