// Command istiod-golden writes what the real istiod sends to every proxy of the eastwest lab.
//
// It reads the world.json files that eastwest/backends/lab/world_json.py writes (the lab's topology
// and manifests rendered per cluster, pods with the lab's IPs, the gateway Service the chart
// renders, one entry per proxy the lab runs) and runs istiod's own config generation on them
// through Istio's in-process test harness, istio.io/istio/pilot/test/xds (FakeDiscoveryServer:
// kube registries on fake clients, a memory config store, the real push context, the real
// ConfigGenerator and EDS builder). Multi-primary: one server per cluster, each seeing the
// Kubernetes objects of every cluster (remote secrets) but only its own Istio configuration.
//
// For every proxy it writes one JSON file with the CDS, LDS, RDS and EDS istiod generated, each
// resource as protomarshal writes it (proto field names, Any resolved), pretty-printed with
// sorted keys and resources sorted by name, so a rerun reproduces the files byte for byte.
// Beside them, analyze.txt holds what `istioctl analyze --use-kube=false -A` says about each
// cluster's rendered manifests (analyze.go).
//
// Usage: istiod-golden -out goldens goldens/base/world.json goldens/routing/world.json ...
// (each file's goldens go to <out>/<scenario>/).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"

	meshconfig "istio.io/api/mesh/v1alpha1"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/networking/util"
	labelutil "istio.io/istio/pilot/pkg/serviceregistry/util/label"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/cluster"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/config/mesh/meshwatcher"
	_ "istio.io/istio/pkg/config/xds" // registers every filter type istiod may put in an Any
	istiolog "istio.io/istio/pkg/log"
	"istio.io/istio/pkg/test"
	"istio.io/istio/pkg/util/protomarshal"
)

const istioModule = "istio.io/istio"

// How long a proxy's output may keep changing after the servers start (EDS converges asynchronously).
const (
	settleTimeout = 60 * time.Second
	settlePoll    = 100 * time.Millisecond
	settleRounds  = 3 // identical snapshots in a row
)

func main() {
	out := flag.String("out", "goldens", "folder the goldens go to (<out>/<scenario>/<proxy>.json)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: istiod-golden [-out DIR] WORLD.json...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := refuseFeatureFlags(); err != nil {
		fmt.Fprintf(os.Stderr, "istiod-golden: %v\n", err)
		os.Exit(2)
	}
	quietIstioLogs()
	version := istioVersion()
	for _, path := range flag.Args() {
		w, err := loadWorld(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "istiod-golden: %v\n", err)
			os.Exit(1)
		}
		start := time.Now()
		err = test.Wrap(func(t test.Failer) {
			dir := filepath.Join(*out, w.Scenario)
			generate(t, w, version, dir)
			if err := os.WriteFile(filepath.Join(dir, "analyze.txt"), []byte(analyze(t, w)), 0o644); err != nil {
				t.Fatal(err)
			}
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "istiod-golden: %s: %v\n", path, err)
			os.Exit(1)
		}
		fmt.Printf("==> %s: goldens written in %.1fs\n", w.Scenario, time.Since(start).Seconds())
	}
}

// refuseFeatureFlags: istiod's feature flags are read from the environment at start; the goldens
// are istiod's defaults (what the lab's istiod mirrors), so a PILOT_* variable would silently change them.
func refuseFeatureFlags() error {
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PILOT_") || strings.HasPrefix(kv, "ISTIO_") {
			name, _, _ := strings.Cut(kv, "=")
			return fmt.Errorf("environment variable %s would change istiod's feature flags; unset it (the goldens use istiod's defaults)", name)
		}
	}
	return nil
}

// quietIstioLogs: the harness logs expected noise (e.g. Gateway API CRDs without a version
// annotation); a real failure ends the run through test.Failer instead.
func quietIstioLogs() {
	for _, s := range istiolog.Scopes() {
		s.SetOutputLevel(istiolog.NoneLevel)
	}
}

// istioVersion names the istio.io/istio module this binary was built with (written into every golden).
func istioVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == istioModule {
				return dep.Path + " " + dep.Version
			}
		}
	}
	return istioModule + " (unknown version)"
}

// generate runs one istiod per cluster over the world and writes every proxy's golden.
func generate(t test.Failer, w *World, version, dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	networks := meshNetworks(w)
	kubeObjects := map[cluster.ID]string{}
	for _, c := range w.Clusters {
		kubeObjects[cluster.ID(c.Name)] = joinDocuments(t, c.Kubernetes)
	}
	for _, c := range w.Clusters {
		m := mesh.DefaultMeshConfig()
		if err := protomarshal.ApplyJSONStrict(string(c.MeshConfig), m); err != nil {
			t.Fatalf("cluster %s: mesh_config: %v", c.Name, err)
		}
		s := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
			DefaultClusterName:              cluster.ID(c.Name),
			KubernetesObjectStringByCluster: kubeObjects,
			ConfigString:                    joinDocuments(t, c.Istio),
			MeshConfig:                      m,
			NetworksWatcher:                 meshwatcher.NewFixedNetworksWatcher(networks),
		})
		s.EnsureSynced(t)
		for _, p := range c.Proxies {
			g := settle(t, s, c, p, version)
			path := filepath.Join(dir, p.File)
			if err := os.WriteFile(path, g, 0o644); err != nil {
				t.Fatal(err)
			}
			fmt.Printf("    %s: %s (%d bytes)\n", w.Scenario, p.File, len(g))
		}
	}
}

// meshNetworks says which registry is on which network. The lab's manifests say it with the
// topology.istio.io/network label on istio-system, which the fake server does not read (it never
// sets the kube controller's SystemNamespace); meshNetworks fromRegistry gives every endpoint the
// same network. Gateways still come from the labelled gateway Service, as in the lab's install.
func meshNetworks(w *World) *meshconfig.MeshNetworks {
	out := &meshconfig.MeshNetworks{Networks: map[string]*meshconfig.Network{}}
	for _, c := range w.Clusters {
		n := out.Networks[c.Network]
		if n == nil {
			n = &meshconfig.Network{}
			out.Networks[c.Network] = n
		}
		n.Endpoints = append(n.Endpoints, &meshconfig.Network_NetworkEndpoints{
			Ne: &meshconfig.Network_NetworkEndpoints_FromRegistry{FromRegistry: c.Name},
		})
	}
	return out
}

// joinDocuments: the harness reads multi-document YAML split on "\n---\n"; JSON is YAML.
func joinDocuments(t test.Failer, objects []json.RawMessage) string {
	parts := make([]string, 0, len(objects))
	for _, o := range objects {
		var buf bytes.Buffer
		if err := json.Compact(&buf, o); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, buf.String())
	}
	return strings.Join(parts, "\n---\n")
}

// newProxy builds the proxy as istiod does for a connecting agent (initProxyMetadata,
// setTopologyLabels), from the node ID and metadata the lab's proxy would send.
func newProxy(t test.Failer, c *Cluster, p *ProxySpec) *model.Proxy {
	meta := &model.NodeMetadata{}
	if err := json.Unmarshal(p.Metadata, meta); err != nil {
		t.Fatalf("%s: metadata: %v", p.File, err)
	}
	proxy, err := model.ParseServiceNodeWithMetadata(p.NodeID, meta)
	if err != nil {
		t.Fatalf("%s: %v", p.File, err)
	}
	proxy.ConfigNamespace = model.GetProxyConfigNamespace(proxy)
	proxy.Labels = meta.Labels
	proxy.Locality = &core.Locality{Region: p.Locality.Region, Zone: p.Locality.Zone}
	proxy.Labels = labelutil.AugmentLabels(proxy.Labels, meta.ClusterID, util.LocalityToString(proxy.Locality), proxy.GetNodeName(), meta.Network)
	if meta.ClusterID != cluster.ID(c.Name) {
		t.Fatalf("%s: CLUSTER_ID %q is not the cluster %q it is listed under", p.File, meta.ClusterID, c.Name)
	}
	return proxy
}

// settle renders the proxy until istiod's output stops changing (endpoint events are processed
// asynchronously after the informers sync) and returns the golden file's bytes.
func settle(t test.Failer, s *xds.FakeDiscoveryServer, c *Cluster, p *ProxySpec, version string) []byte {
	deadline := time.Now().Add(settleTimeout)
	var last []byte
	same := 0
	for {
		s.EnsureSynced(t)
		proxy := s.SetupProxy(newProxy(t, c, p))
		g := golden(t, s, proxy, p, version)
		if bytes.Equal(g, last) {
			same++
		} else {
			same, last = 1, g
		}
		if same >= settleRounds {
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: istiod's output kept changing for %s", p.File, settleTimeout)
		}
		time.Sleep(settlePoll)
	}
}

func golden(t test.Failer, s *xds.FakeDiscoveryServer, proxy *model.Proxy, p *ProxySpec, version string) []byte {
	listeners := s.Listeners(proxy)
	doc := map[string]any{
		"generated_by": version,
		"proxy":        map[string]any{"node_id": p.NodeID, "file": p.File},
		"cds":          resources(t, s.Clusters(proxy)),
		"lds":          resources(t, listeners),
		"rds":          resources(t, s.RoutesFromListeners(proxy, listeners)),
		"eds":          resources(t, s.Endpoints(proxy)),
	}
	out, err := json.MarshalIndent(doc, "", "  ") // map keys come out sorted
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// resources marshals xDS resources as protomarshal does (proto names, Any resolved), sorted by name.
func resources[T proto.Message](t test.Failer, msgs []T) []any {
	type named struct {
		name string
		body any
	}
	list := make([]named, 0, len(msgs))
	for _, m := range msgs {
		b, err := protomarshal.MarshalProtoNames(m)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber() // keep integers exact
		var body map[string]any
		if err := dec.Decode(&body); err != nil {
			t.Fatal(err)
		}
		name, _ := body["name"].(string)
		if name == "" {
			name, _ = body["cluster_name"].(string)
		}
		list = append(list, named{name, body})
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].name < list[j].name })
	out := make([]any, len(list))
	for i, n := range list {
		out[i] = n.body
	}
	return out
}
