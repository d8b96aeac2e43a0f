// Package report turns benchmark rounds into the figures of `make bench`:
// medians and spread across rounds, ratios computed round by round, the
// Go benchmark output parsed into a map, the JSON document, the Markdown
// table and a latency CDF as SVG.
package report

import (
	"bufio"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Stat is one figure across rounds: its median, its spread, every round.
type Stat struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Rounds []float64 `json:"rounds"`
}

// Summarize returns the median, minimum and maximum of rounds; ok is false
// when there are none.
func Summarize(rounds []float64) (s Stat, ok bool) {
	if len(rounds) == 0 {
		return Stat{}, false
	}
	v := slices.Clone(rounds)
	slices.Sort(v)
	return Stat{Median: median(v), Min: v[0], Max: v[len(v)-1], Rounds: rounds}, true
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// RatioOfRounds divides a by b round by round (round i of a by round i of
// b: both were measured minutes apart at most, on the same machine state)
// and returns the median of those ratios. ok is false when no round has
// both figures or a divisor is zero.
func RatioOfRounds(a, b []float64) (r float64, ok bool) {
	var q []float64
	for i := 0; i < len(a) && i < len(b); i++ {
		if b[i] != 0 && !math.IsNaN(a[i]) && !math.IsNaN(b[i]) {
			q = append(q, a[i]/b[i])
		}
	}
	if len(q) == 0 {
		return 0, false
	}
	slices.Sort(q)
	return median(q), true
}

// Percentile is the nearest-rank q-quantile (0 < q <= 1) of sorted.
func Percentile(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Micro is one Go benchmark's result.
type Micro struct {
	NsPerOp     float64 `json:"ns_per_op"`
	AllocsPerOp float64 `json:"allocs_per_op"`
	BytesPerOp  float64 `json:"bytes_per_op"`
	// Extra holds the metrics a benchmark reports itself (b.ReportMetric),
	// by unit, e.g. "B/conn".
	Extra map[string]float64 `json:"extra,omitempty"`
}

// ParseGoBench reads `go test -bench -benchmem` output. Each result is keyed
// by its package's last path element and the benchmark name without the
// -GOMAXPROCS suffix, e.g. "libos/BenchmarkPushPop". Lines it does not
// understand are skipped.
func ParseGoBench(out string) map[string]Micro {
	res := map[string]Micro{}
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "pkg:" {
			pkg = f[1][strings.LastIndexByte(f[1], '/')+1:]
			continue
		}
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		var m Micro
		seen := false
		for i := 2; i+1 < len(f); i++ {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				m.NsPerOp, seen = v, true
			case "allocs/op":
				m.AllocsPerOp = v
			case "B/op":
				m.BytesPerOp = v
			default:
				if strings.Contains(f[i+1], "/") {
					if m.Extra == nil {
						m.Extra = map[string]float64{}
					}
					m.Extra[f[i+1]] = v
				}
			}
		}
		if !seen {
			continue
		}
		if pkg != "" {
			name = pkg + "/" + name
		}
		res[name] = m
	}
	return res
}
