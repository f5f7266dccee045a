package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
)

// World is one scenario as eastwest/backends/lab/world_json.py writes it (see its docstring).
type World struct {
	Scenario       string     `json:"scenario"`
	SuiteManifests []string   `json:"suite_manifests"`
	Clusters       []*Cluster `json:"clusters"`
}

// Cluster is one cluster of the mesh and the istiod that runs in it.
type Cluster struct {
	Name    string `json:"name"`
	Network string `json:"network"`
	// MeshConfig is applied over mesh.DefaultMeshConfig() (what the istiod chart renders that matters here).
	MeshConfig json.RawMessage `json:"mesh_config"`
	// Kubernetes objects of this cluster (Nodes, Namespaces, Services, Pods, EndpointSlices):
	// every istiod sees them all (multi-primary, remote secrets).
	Kubernetes []json.RawMessage `json:"kubernetes"`
	// Istio configuration of this cluster: only this cluster's istiod sees it.
	Istio []json.RawMessage `json:"istio"`
	// Manifests are this cluster's rendered manifests as applied (for istioctl analyze).
	Manifests []json.RawMessage `json:"manifests"`
	Proxies   []*ProxySpec      `json:"proxies"`
}

// ProxySpec is one proxy the lab runs in this cluster, as its agent would introduce it to istiod.
type ProxySpec struct {
	File     string          `json:"file"`
	NodeID   string          `json:"node_id"`
	Metadata json.RawMessage `json:"metadata"` // ISTIO_META_* node metadata (model.NodeMetadata JSON)
	Locality struct {
		Region string `json:"region"`
		Zone   string `json:"zone"`
	} `json:"locality"`
}

func loadWorld(path string) (*World, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	w := &World{}
	if err := dec.Decode(w); err != nil {
		return nil, fmt.Errorf("%s: %v (regenerate it with `make goldens`)", path, err)
	}
	if w.Scenario == "" || len(w.Clusters) == 0 {
		return nil, fmt.Errorf("%s: no scenario name or no clusters", path)
	}
	return w, nil
}
