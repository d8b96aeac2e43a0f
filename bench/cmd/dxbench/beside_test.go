package main

import (
	"slices"
	"testing"
)

// TestBesideTargets: the targets against the bare pair divide the
// neighbour measurements slot by slot (tcp_rtt by the reflector's udp_rtt
// of the same slot); the udpRound figures keep their ratio, without a
// target.
func TestBesideTargets(t *testing.T) {
	h := &harness{o: runOpts{only: []string{"udp_rtt", "udp_pps", "tcp_rtt"}}, figures: map[string]map[string]map[string][]float64{
		"udp_rtt": {
			"libos":         {"p50_us": {10}},
			"reflector":     {"p50_us": {5}},
			libosBeside:     {"p50_us": {6, 5.5, 7}},
			reflectorBeside: {"p50_us": {5, 5, 5}},
		},
		"udp_pps": {
			"libos":         {"pps": {100}},
			"reflector":     {"pps": {100}},
			libosBeside:     {"pps": {90, 80, 95}},
			reflectorBeside: {"pps": {100, 100, 100}},
		},
		"tcp_rtt": {
			"libos":     {"p50_us": {20}},
			libosBeside: {"p50_us": {6, 7, 6.25}},
		},
	}}
	doc := h.document(nil, nil, 0)
	check := func(wl, key string, want float64, met *bool) {
		t.Helper()
		r := doc[wl].(*workloadDoc).Ratios[key]
		if r == nil || r.Value == nil || *r.Value != want {
			t.Fatalf("%s %s: %+v, want %g", wl, key, r, want)
		}
		if (met == nil) != (r.Met == nil) || (met != nil && *met != *r.Met) {
			t.Fatalf("%s %s: met %v, want %v", wl, key, r.Met, met)
		}
	}
	yes, no := true, false
	key := libosBeside + "/" + reflectorBeside
	check("udp_rtt", key, 1.2, &no) // 1.2, 1.1, 1.4
	check("udp_rtt", "libos/reflector", 2, nil)
	check("udp_pps", key, 0.9, &yes)  // 0.9, 0.8, 0.95
	check("tcp_rtt", key, 1.25, &yes) // 1.2, 1.4, 1.25
	check("tcp_rtt", "libos/reflector", 4, nil)
}

func TestWithoutFlag(t *testing.T) {
	in := []string{"srv", "-cpuprofile", "p", "-iface", "x"}
	if got := withoutFlag(in, "-cpuprofile"); !slices.Equal(got, []string{"srv", "-iface", "x"}) {
		t.Fatalf("%q", got)
	}
	if len(in) != 5 || in[1] != "-cpuprofile" {
		t.Fatalf("the input changed: %q", in)
	}
	if got := withoutFlag(in, "-n"); !slices.Equal(got, in) {
		t.Fatalf("%q", got)
	}
}
