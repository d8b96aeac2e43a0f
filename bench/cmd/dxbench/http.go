package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// The http workload: wrk in namespace B against cmd/http-hello in A, on
// dxnet (its own address, 198.51.100.21, dedicated mode) and on the
// kernel (-kernel, the shared lab's kernel address): the same binary and
// handler, only the listener differs. Each round measures both stacks at
// -c 1 and -c 64 (one wrk thread), GET / ("hello\n"), keep-alive; the
// server and wrk are pinned as every server and client are (-pin).
//
// Figures: requests per second and wrk's latency p50/p99 (--latency).
// The dxnet server's figures are recorded under the stack name "libos"
// (demixdp), so the ratios are libos/kernel like the other workloads'.

// httpConcurrency is each wrk run's connection count and its workload name.
var httpConcurrency = []struct {
	conns    int
	workload string
}{{1, "http_c1"}, {64, "http_c64"}}

func (h *harness) httpRound(l lab, round int) {
	port := strconv.Itoa(8080 + round) // a fresh port per round (no TIME_WAIT in the way)
	servers := []struct {
		stack  string
		argv   []string
		remote string
	}{
		{"libos", []string{h.bin["http-hello"], "-iface", l["IFA"], "-addr", "198.51.100.21:" + port}, "198.51.100.21:" + port},
		{"kernel", []string{h.bin["http-hello"], "-kernel", "-addr", l["A"] + ":" + port}, l["A"] + ":" + port},
	}
	for _, s := range servers {
		h.logf("round %d http %s", round, s.stack)
		if err := h.startServer(l["NSA"], s.argv...); err != nil {
			h.note("round %d: http %s server: %v", round, s.stack, err)
			for _, c := range httpConcurrency {
				if h.want(c.workload) {
					h.recordHTTP(c.workload, s.stack, nil)
				}
			}
			continue
		}
		for _, c := range httpConcurrency {
			if !h.want(c.workload) {
				continue
			}
			out, err := h.wrk(l["NSB"], c.conns, "http://"+s.remote+"/")
			var w *wrkResult
			if err == nil {
				w, err = parseWrk(out)
			}
			if err != nil {
				h.note("round %d: http %s -c %d: %v", round, s.stack, c.conns, err)
			}
			h.recordHTTP(c.workload, s.stack, w)
		}
		h.stopServer()
	}
}

// wrk runs wrk in namespace ns for the http workload's duration.
func (h *harness) wrk(ns string, conns int, url string) (string, error) {
	kv, err := h.clientRaw(ns, h.o.httpTime+30*time.Second, "wrk", "-t1", "-c"+strconv.Itoa(conns),
		"-d"+strconv.Itoa(int(h.o.httpTime.Seconds()))+"s", "--latency", "--timeout", "5s", url)
	return kv, err
}

func (h *harness) recordHTTP(workload, stack string, w *wrkResult) {
	if w == nil {
		w = &wrkResult{rps: math.NaN(), p50: math.NaN(), p99: math.NaN()}
	}
	h.record(workload, stack, "rps", w.rps)
	h.record(workload, stack, "p50_us", w.p50)
	h.record(workload, stack, "p99_us", w.p99)
}

// wrkResult is what parseWrk reads from wrk's report.
type wrkResult struct {
	rps, p50, p99 float64 // requests/s, latency percentiles in µs
}

// parseWrk reads Requests/sec and the --latency distribution's 50% and 99%
// lines from wrk's output. A run with socket errors or non-2xx responses
// is an error: its figures would not be comparable.
func parseWrk(out string) (*wrkResult, error) {
	w := &wrkResult{rps: math.NaN(), p50: math.NaN(), p99: math.NaN()}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 0:
		case f[0] == "Socket" || f[0] == "Non-2xx":
			return nil, fmt.Errorf("wrk: %s", strings.TrimSpace(sc.Text()))
		case f[0] == "Requests/sec:" && len(f) == 2:
			w.rps, _ = strconv.ParseFloat(f[1], 64)
		case (f[0] == "50%" || f[0] == "99%") && len(f) == 2:
			us, err := wrkDuration(f[1])
			if err != nil {
				return nil, err
			}
			if f[0] == "50%" {
				w.p50 = us
			} else {
				w.p99 = us
			}
		}
	}
	if math.IsNaN(w.rps) || math.IsNaN(w.p50) || math.IsNaN(w.p99) {
		return nil, fmt.Errorf("wrk: no Requests/sec or latency distribution in %q", out)
	}
	return w, nil
}

// wrkDuration converts wrk's "58.00us", "2.53ms", "1.20s", "1.00m" to µs.
func wrkDuration(s string) (float64, error) {
	units := []struct {
		suffix string
		us     float64
	}{{"us", 1}, {"ms", 1e3}, {"s", 1e6}, {"m", 60e6}, {"h", 3600e6}}
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("wrk latency %q: %v", s, err)
			}
			return f * u.us, nil
		}
	}
	return 0, fmt.Errorf("wrk latency %q: unknown unit", s)
}

// clientRaw runs argv in ns (pinned as the clients are) and returns its
// stdout.
func (h *harness) clientRaw(ns string, limit time.Duration, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, h.o.pin.wrap(h.o.pin.client, argv)...)...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return string(out), fmt.Errorf("%s: %v %s", argv[0], err, strings.TrimSpace(stderr))
	}
	return string(out), nil
}
