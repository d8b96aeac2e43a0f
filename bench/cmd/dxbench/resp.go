package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/demixdp/demixdp/bench/report"
)

// The resp workload: redis-benchmark in namespace B, -t set,get -n 200000
// -c 50 at -P 1 (resp_p1) and -P 16 (resp_p16), against four servers in
// namespace A, one after the other: cmd/kv -api queue (the libOS's queue
// API, recorded as "libos"), cmd/kv -api net (redcon on dxnet, "kv_net"),
// cmd/kv -kernel (the same redcon server on the kernel's sockets,
// "kernel") and Debian's redis-server with persistence off ("redis").
// `dxbench run -only resp` runs it alone.
//
// Figures per server: ops/s over both tests (all requests over the time
// they took together), the SET and GET ops/s, the mean of their p50s and
// the larger of their p99s, from redis-benchmark's --csv report.

// respTests is each redis-benchmark run's pipeline depth and workload name.
var respTests = []struct {
	pipeline int
	workload string
}{{1, "resp_p1"}, {16, "resp_p16"}}

// respRequests is redis-benchmark's -n.
const respRequests = 200000

// respNetTarget is issue 13's goal for kv -api net: at least redis-server's
// ops/s at -P 1.
const respNetTarget = 1.0

func (h *harness) respRound(l lab, round int) {
	port := strconv.Itoa(6400 + round) // a fresh port per round (no TIME_WAIT in the way)
	dx := "198.51.100.21:" + port      // the libOS servers' own address (dedicated mode)
	kaddr := l["A"] + ":" + port       // the kernel's address in A
	servers := []struct {
		stack  string
		argv   []string
		ready  string
		remote string
	}{
		{"libos", []string{h.bin["kv"], "-iface", l["IFA"], "-addr", dx, "-api", "queue", "-log-level", "off"}, "listening", dx},
		{"kv_net", []string{h.bin["kv"], "-iface", l["IFA"], "-addr", dx, "-api", "net", "-log-level", "off"}, "listening", dx},
		{"kernel", []string{h.bin["kv"], "-kernel", "-addr", kaddr}, "listening", kaddr},
		{"redis", []string{"redis-server", "--bind", l["A"], "--port", port, "--save", "", "--appendonly", "no",
			"--protected-mode", "no", "--dir", h.o.work}, "Ready to accept connections", kaddr},
	}
	for _, s := range servers {
		h.logf("round %d resp %s", round, s.stack)
		if err := h.startServerReady(l["NSA"], s.ready, s.argv...); err != nil {
			h.note("round %d: resp %s server: %v", round, s.stack, err)
			for _, t := range respTests {
				h.recordResp(t.workload, s.stack, nil)
			}
			continue
		}
		for _, t := range respTests {
			r, err := h.redisBenchmark(l["NSB"], s.remote, t.pipeline)
			if err != nil {
				h.note("round %d: resp %s -P %d: %v", round, s.stack, t.pipeline, err)
			}
			h.recordResp(t.workload, s.stack, r)
		}
		h.stopServer()
	}
}

// respResult is one redis-benchmark run's figures.
type respResult struct {
	rps, setRPS, getRPS, p50, p99 float64
}

// redisBenchmark runs redis-benchmark (pinned like every client) in ns
// against remote and parses its CSV report.
func (h *harness) redisBenchmark(ns, remote string, pipeline int) (*respResult, error) {
	host, port, _ := strings.Cut(remote, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	argv := h.o.pin.wrap(h.o.pin.client, []string{"redis-benchmark", "-h", host, "-p", port, "-t", "set,get",
		"-n", strconv.Itoa(respRequests), "-c", "50", "-P", strconv.Itoa(pipeline), "--csv"})
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return nil, fmt.Errorf("redis-benchmark: %v %s", err, strings.TrimSpace(stderr))
	}
	return parseRedisBenchmarkCSV(string(out))
}

// parseRedisBenchmarkCSV reads redis-benchmark's --csv report: a header
// line ("test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",
// "p95_latency_ms","p99_latency_ms","max_latency_ms") and one line per
// test; it wants a SET and a GET line.
func parseRedisBenchmarkCSV(out string) (*respResult, error) {
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("redis-benchmark CSV: %v", err)
	}
	if len(recs) < 1 {
		return nil, fmt.Errorf("redis-benchmark printed no CSV")
	}
	col := map[string]int{}
	for i, name := range recs[0] {
		col[name] = i
	}
	for _, need := range []string{"test", "rps", "p50_latency_ms", "p99_latency_ms"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("redis-benchmark CSV has no %q column: %q", need, recs[0])
		}
	}
	type row struct{ rps, p50, p99 float64 }
	rows := map[string]row{}
	for _, rec := range recs[1:] {
		if len(rec) != len(recs[0]) {
			continue
		}
		var r row
		var errs [3]error
		r.rps, errs[0] = strconv.ParseFloat(rec[col["rps"]], 64)
		r.p50, errs[1] = strconv.ParseFloat(rec[col["p50_latency_ms"]], 64)
		r.p99, errs[2] = strconv.ParseFloat(rec[col["p99_latency_ms"]], 64)
		for _, e := range errs {
			if e != nil {
				return nil, fmt.Errorf("redis-benchmark CSV line %q: %v", rec, e)
			}
		}
		rows[rec[col["test"]]] = r
	}
	set, okS := rows["SET"]
	get, okG := rows["GET"]
	if !okS || !okG || set.rps <= 0 || get.rps <= 0 {
		return nil, fmt.Errorf("redis-benchmark CSV lacks a SET or GET figure: %q", out)
	}
	return &respResult{
		rps:    2 / (1/set.rps + 1/get.rps), // both tests' requests over their time together
		setRPS: set.rps, getRPS: get.rps,
		p50: (set.p50 + get.p50) / 2 * 1000,
		p99: math.Max(set.p99, get.p99) * 1000,
	}, nil
}

func (h *harness) recordResp(workload, stack string, r *respResult) {
	if r == nil {
		n := math.NaN()
		r = &respResult{n, n, n, n, n}
	}
	h.record(workload, stack, "rps", r.rps)
	h.record(workload, stack, "set_rps", r.setRPS)
	h.record(workload, stack, "get_rps", r.getRPS)
	h.record(workload, stack, "p50_us", r.p50)
	h.record(workload, stack, "p99_us", r.p99)
}

// respNetRatio is kv_net/redis for resp_p1's ops/s (issue 13: at least
// 1); nil for the other workloads.
func (h *harness) respNetRatio(workload string) *ratio {
	if workload != "resp_p1" {
		return nil
	}
	r := &ratio{Metric: "rps", Target: fmt.Sprintf(">= %g", respNetTarget)}
	a, b := h.figures[workload]["kv_net"]["rps"], h.figures[workload]["redis"]["rps"]
	v, ok := report.RatioOfRounds(a, b)
	if !ok {
		r.Reason = "no round measured both"
		return r
	}
	v = math.Round(v*1000) / 1000
	met := v >= respNetTarget
	r.Value, r.Met = &v, &met
	return r
}
