package report

import (
	"bytes"
	"encoding/xml"
	"math"
	"testing"
)

func TestSummarize(t *testing.T) {
	s, ok := Summarize([]float64{5, 1, 3, 9})
	if !ok || s.Median != 4 || s.Min != 1 || s.Max != 9 {
		t.Fatalf("Summarize = %+v %v", s, ok)
	}
	if _, ok := Summarize(nil); ok {
		t.Fatal("no rounds: ok")
	}
}

func TestRatioOfRoundsPairsRounds(t *testing.T) {
	// Round 2 is 2x slower for both: per-round ratios are all 0.5, while
	// a ratio of medians would not be.
	a := []float64{1, 2, 1}
	b := []float64{2, 4, 2}
	if r, ok := RatioOfRounds(a, b); !ok || r != 0.5 {
		t.Fatalf("ratio = %v %v, want 0.5", r, ok)
	}
	if _, ok := RatioOfRounds([]float64{1}, []float64{0}); ok {
		t.Fatal("zero divisor gave a ratio")
	}
	if r, ok := RatioOfRounds([]float64{1, math.NaN(), 3}, []float64{1, 1, 1}); !ok || r != 2 {
		t.Fatalf("NaN round not skipped: %v", r)
	}
}

func TestPercentile(t *testing.T) {
	v := make([]int64, 1000)
	for i := range v {
		v[i] = int64(i + 1)
	}
	for _, c := range []struct {
		q    float64
		want int64
	}{{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}, {0, 1}} {
		if got := Percentile(v, c.q); got != c.want {
			t.Errorf("p%v = %d, want %d", c.q, got, c.want)
		}
	}
	if Percentile(nil, 0.5) != 0 {
		t.Error("empty")
	}
}

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
pkg: github.com/demixdp/demixdp/umem
BenchmarkPoolAllocFree-2   	12345678	        12.5 ns/op	       0 B/op	       0 allocs/op
BenchmarkOdd-2   	100	  3.0 ns/op	  16 B/op	  1 allocs/op	  99.0 MB/s
PASS
pkg: github.com/demixdp/demixdp/netstack/checksum
BenchmarkSum/64-2 	1000	 4.25 ns/op	 15058.82 MB/s	 0 B/op	 0 allocs/op
BenchmarkBroken-2 	--- FAIL
ok  	github.com/demixdp/demixdp/umem	1.2s
pkg: github.com/demixdp/demixdp/libos
BenchmarkIdleConnHeap-2 	       1	5123456789 ns/op	     25093 B/conn	      8123 conns/s	123456 B/op	  4567 allocs/op
`
	m := ParseGoBench(out)
	if len(m) != 4 {
		t.Fatalf("parsed %d results: %v", len(m), m)
	}
	if got := m["umem/BenchmarkPoolAllocFree"]; got.NsPerOp != 12.5 || got.AllocsPerOp != 0 {
		t.Errorf("PoolAllocFree = %+v", got)
	}
	if got := m["umem/BenchmarkOdd"]; got.BytesPerOp != 16 || got.AllocsPerOp != 1 {
		t.Errorf("Odd = %+v", got)
	}
	if got, ok := m["checksum/BenchmarkSum/64"]; !ok || got.NsPerOp != 4.25 {
		t.Errorf("Sum/64 = %+v %v", got, ok)
	}
	// Metrics of b.ReportMetric are kept by unit.
	if got := m["libos/BenchmarkIdleConnHeap"]; got.Extra["B/conn"] != 25093 || got.Extra["conns/s"] != 8123 || got.AllocsPerOp != 4567 || len(got.Extra) != 2 {
		t.Errorf("IdleConnHeap = %+v", got)
	}
	if got := m["umem/BenchmarkOdd"]; got.Extra["MB/s"] != 99 {
		t.Errorf("Odd's MB/s = %+v", got)
	}
}

func TestWriteCDFIsWellFormedSVG(t *testing.T) {
	var b bytes.Buffer
	s := []Series{{Label: "a<b", Samples: []int64{3000, 4000, 5000, 100000}}, {Label: "empty"}, {Label: "kernel", Samples: []int64{60000, 61000}}}
	if err := WriteCDF(&b, "udp_rtt & friends", s); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&b)
	n := 0
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d polylines, want 2 (the empty series draws none)", n)
	}
}
