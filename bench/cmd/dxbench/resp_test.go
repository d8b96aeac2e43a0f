package main

import (
	"math"
	"testing"
)

// A report as redis-benchmark 7 prints it with --csv.
const sampleCSV = `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","47619.05","0.077","0.016","0.047","0.127","0.263","4.767"
"GET","40816.33","0.093","0.016","0.087","0.151","0.439","1.311"
`

func TestParseRedisBenchmarkCSV(t *testing.T) {
	r, err := parseRedisBenchmarkCSV(sampleCSV)
	if err != nil {
		t.Fatal(err)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6*math.Max(1, math.Abs(b)) }
	wantRPS := 2 / (1/47619.05 + 1/40816.33)
	if !near(r.rps, wantRPS) || !near(r.setRPS, 47619.05) || !near(r.getRPS, 40816.33) || !near(r.p50, 67) || !near(r.p99, 439) {
		t.Errorf("got %+v, want rps %v set 47619.05 get 40816.33 p50 67 p99 439", r, wantRPS)
	}
	for _, bad := range []string{"", `"test","rps"` + "\n", sampleCSV[:len(sampleCSV)-70]} {
		if _, err := parseRedisBenchmarkCSV(bad); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
}
