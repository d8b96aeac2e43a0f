package main

import (
	"strings"
	"testing"
)

// TestCABIRatioUsesTheGoPairBesideIt: in a full run the cabi/libos ratio
// divides by the Go pair measured beside the C pair, not by the full
// run's libos figures from another slot of the round; -only cabi, which
// records the neighbour as libos, divides by that.
func TestCABIRatioUsesTheGoPairBesideIt(t *testing.T) {
	h := &harness{figures: map[string]map[string]map[string][]float64{
		"tcp_rtt": {
			"cabi":     {"p50_us": {10, 10, 10}},
			"libos":    {"p50_us": {5, 5, 5}},
			cabiBeside: {"p50_us": {9.5, 10, 10.5}},
		},
		"udp_rtt": {
			"cabi":  {"p50_us": {6, 6, 6}},
			"libos": {"p50_us": {6, 5, 4}},
		},
	}}
	r := h.cabiRatio("tcp_rtt")
	if r == nil || r.Value == nil || *r.Value != 1 || r.Met == nil || !*r.Met {
		t.Fatalf("tcp_rtt: %+v, want the median of 10/9.5, 10/10, 10/10.5 = 1, met", r)
	}
	r = h.cabiRatio("udp_rtt")
	if r == nil || r.Value == nil || *r.Value != 1.2 || r.Met == nil || *r.Met {
		t.Fatalf("udp_rtt: %+v, want the median of 6/6, 6/5, 6/4 = 1.2 against libos, missed", r)
	}
	if h.cabiRatio("udp_pps") != nil {
		t.Fatal("a ratio for a workload without a C pair")
	}
}

// TestCABIOnlyDocumentsItsPairs: -only cabi measures the C and Go pairs
// under udp_rtt and tcp_rtt, which it does not name; its report must show
// them and the cabi ratio (it came out empty).
func TestCABIOnlyDocumentsItsPairs(t *testing.T) {
	h := &harness{o: runOpts{only: []string{"cabi"}}, figures: map[string]map[string]map[string][]float64{
		"udp_rtt": {
			"cabi":  {"p50_us": {6, 6, 6}},
			"libos": {"p50_us": {6, 6, 6}},
		},
	}}
	doc := h.document(nil, nil, 0)
	md := markdown(doc)
	if !strings.Contains(md, "## udp_rtt") || !strings.Contains(md, "| cabi |") || !strings.Contains(md, "cabi/libos") {
		t.Fatalf("-only cabi report lacks its pairs:\n%s", md)
	}
	if strings.Contains(md, "## udp_pps") {
		t.Fatalf("-only cabi report has a workload it did not measure:\n%s", md)
	}
}
