package main

import (
	"fmt"
	"sort"
	"strings"

	"istio.io/istio/pkg/config/analysis/analyzers"
	"istio.io/istio/pkg/config/analysis/local"
	"istio.io/istio/pkg/config/resource"
	"istio.io/istio/pkg/test"
)

// analyze is `istioctl analyze --use-kube=false -A` over each cluster's rendered manifests
// (istioctl/pkg/analyze/analyze.go: every analyzer, Istio's default resources added because no
// cluster is read, all namespaces). It returns the messages, one per line, cluster by cluster.
func analyze(t test.Failer, w *World) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# istioctl analyze --use-kube=false -A, scenario %s (%s)\n", w.Scenario, istioVersion())
	for _, c := range w.Clusters {
		sa := local.NewIstiodAnalyzer(analyzers.AllCombined(), "", resource.Namespace("istio-system"), nil)
		if err := sa.AddDefaultResources(); err != nil {
			t.Fatal(err)
		}
		source := local.ReaderSource{Name: c.Name, Reader: strings.NewReader(joinDocuments(t, c.Manifests))}
		if err := sa.AddReaderKubeSource([]local.ReaderSource{source}); err != nil {
			t.Fatalf("cluster %s: %v", c.Name, err)
		}
		result, err := sa.Analyze(make(chan struct{}))
		if err != nil {
			t.Fatalf("cluster %s: %v", c.Name, err)
		}
		messages := result.Messages.SortedDedupedCopy()
		fmt.Fprintf(&b, "\n## cluster %s: %d message(s)\n", c.Name, len(messages))
		for i := range messages {
			fmt.Fprintln(&b, messages[i].String())
		}
		// offline, analyzers that need runtime resources (Pods, webhooks...) do not run, as in istioctl
		skipped := append([]string(nil), result.SkippedAnalyzers...)
		sort.Strings(skipped)
		fmt.Fprintf(&b, "%d analyzers ran; skipped offline: %s\n", len(result.ExecutedAnalyzers), strings.Join(skipped, ", "))
	}
	return b.String()
}
