package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/demixdp/demixdp/bench/report"
)

// The C ABI's pair: examples/c/udp-ping-pong and tcp-ping-pong, built by
// `make libdemi`, client and server each on its own libOS, beside the Go
// libOS pair (cmd/udp-echo + the dxbench libOS client; dxbench tcp-server
// and client -stack libos). They use the Go pair's addresses, so the only
// difference is the language and the C-Go boundary. `dxbench run -only
// cabi` runs these two pairs alone and writes latest-cabi.{json,md}.

// cabiTarget is issue 12's goal: the C pair's p50 within 1.1x of Go's.
const cabiTarget = 1.1

// buildCABI runs `make libdemi` into the work directory.
func (h *harness) buildCABI() error {
	dir := filepath.Join(h.o.work, "cabi")
	cmd := exec.Command("make", "libdemi", "BUILD="+dir)
	cmd.Dir = h.o.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("make libdemi: %v\n%s", err, out)
	}
	h.bin["c-udp"] = filepath.Join(dir, "examples", "udp-ping-pong")
	h.bin["c-tcp"] = filepath.Join(dir, "examples", "tcp-ping-pong")
	return nil
}

// cenv prefixes a C example's command line with its libOS configuration.
func cenv(iface, ip string, argv ...string) []string {
	return append([]string{"env", "LINUX_INTERFACE_NAME=" + iface, "LOCAL_IPV4_ADDR=" + ip}, argv...)
}

// cabiBeside is the stack name, in a full run, of the Go libOS pair that
// cabiRound measures right beside the C pair: the denominator of the
// cabi/libos ratio. The full run's own libos figures come from udpRound
// and tcpRound, minutes away from the C pair in the round; on this VM the
// pairs drift that much between slots (the cabi ratio of UDP and of TCP
// each came out on either side of the target in successive runs).
const cabiBeside = "libos_beside_cabi"

// cabiPerRound is how many times a full run measures the two pairs in
// each of its rounds. One p50 on this VM moves by a fifth between
// neighbouring measurements of the same pair (6.8 to 10.6 us in one
// -only cabi run), against a difference of a few percent to be seen: a
// full run's three rounds gave three ratios, and their median landed on
// either side of the target from run to run. Three neighbour pairs per
// round give the ratio nine; they cost about 8 s a round.
const cabiPerRound = 3

// cabiRound measures the C pair's udp_rtt and tcp_rtt (64 bytes, one
// outstanding) and, right beside each, the Go libOS pair's, recorded
// under goStack (cabiBeside in a full run, libos for -only cabi). slot
// counts the calls from 1 (in a full run, cabiPerRound a round): odd
// slots run the Go pair first, even slots the C pair, so a drift favours
// neither; each slot has TCP ports of its own.
func (h *harness) cabiRound(l lab, round, slot int, goStack string) {
	const srv, cli = "198.51.100.21", "198.51.100.22"
	n := strconv.Itoa(h.o.rttN)
	if h.bin["c-udp"] == "" {
		h.note("round %d: cabi: not built", round)
		h.record("udp_rtt", "cabi", "fail", 1)
		h.record("tcp_rtt", "cabi", "fail", 1)
		return
	}
	type pair struct {
		stack, workload string
		server, client  []string
	}
	// New TCP ports each slot (no TIME_WAIT reuse), from 20001 up: clear
	// of the other workloads' ports (below 9100) for any number of rounds
	// short of a thousand.
	port := 20001 + 10*(slot-1)
	ctp, gtp := strconv.Itoa(port), strconv.Itoa(port+5)
	goPairs := []pair{
		{goStack, "udp_rtt", []string{h.bin["udp-echo"], "-iface", l["IFA"], "-addr", srv + ":7777"},
			[]string{h.bin["dxbench"], "client", "-stack", "libos", "-workload", "udp_rtt", "-remote", srv + ":7777",
				"-iface", l["IFB"], "-addr", cli + "/24", "-port", "9000", "-n", n}},
		{goStack, "tcp_rtt", []string{h.bin["dxbench"], "tcp-server", "-stack", "libos", "-iface", l["IFA"], "-addr", srv + "/24", "-port", gtp},
			[]string{h.bin["dxbench"], "client", "-stack", "libos", "-workload", "tcp_rtt", "-remote", srv + ":" + gtp,
				"-iface", l["IFB"], "-addr", cli + "/24", "-port", "9000", "-n", strconv.Itoa(h.o.rttN / 2)}},
	}
	cPairs := []pair{
		{"cabi", "udp_rtt", cenv(l["IFA"], srv, h.bin["c-udp"], "--server", srv, "7777"),
			cenv(l["IFB"], cli, h.bin["c-udp"], "--client", srv, "7777", "64", n)},
		{"cabi", "tcp_rtt", cenv(l["IFA"], srv, h.bin["c-tcp"], "--server", srv, ctp),
			cenv(l["IFB"], cli, h.bin["c-tcp"], "--client", srv, ctp, "64", strconv.Itoa(h.o.rttN/2))},
	}
	var pairs []pair
	for i := range cPairs {
		if slot%2 == 1 {
			pairs = append(pairs, goPairs[i], cPairs[i])
		} else {
			pairs = append(pairs, cPairs[i], goPairs[i])
		}
	}
	for _, p := range pairs {
		h.logf("round %d %s %s", round, p.workload, p.stack)
		var kv map[string]string
		err := h.startServer(l["NSA"], p.server...)
		if err == nil {
			kv, err = h.client(l["NSB"], 2*time.Minute, p.client...)
		}
		if err != nil {
			h.note("round %d: %s %s: %v", round, p.workload, p.stack, err)
			kv = nil
		}
		h.record(p.workload, p.stack, "p50_us", num(kv, "p50_us", "rtt_p50_us"))
		h.record(p.workload, p.stack, "p99_us", num(kv, "p99_us", "rtt_p99_us"))
		h.stopServer()
	}
}

// cabiRatio is cabi/libos for a workload's p50 (lower is better), round by
// round; nil when the workload has no C pair.
func (h *harness) cabiRatio(workload string) *ratio {
	a := h.figures[workload]["cabi"]["p50_us"]
	if len(a) == 0 {
		return nil
	}
	r := &ratio{Metric: "p50_us", Target: fmt.Sprintf("<= %g", cabiTarget)}
	b := h.figures[workload][cabiBeside]["p50_us"] // a full run
	if len(b) == 0 {
		b = h.figures[workload]["libos"]["p50_us"] // -only cabi
	}
	v, ok := report.RatioOfRounds(a, b)
	if !ok {
		r.Reason = "no round measured both"
		return r
	}
	v = math.Round(v*1000) / 1000
	met := v <= cabiTarget
	r.Value, r.Met = &v, &met
	return r
}

// runCABIOnly is `dxbench run -only cabi`: the C and the Go libOS pairs,
// interleaved in rounds, written to latest-cabi.{json,md} (the full run's
// files stay as they are).
func (h *harness) runCABIOnly(t0 time.Time) error {
	if err := h.buildCABI(); err != nil {
		return err
	}
	l, err := h.labUp(fmt.Sprintf("dxbc%04x", rand.IntN(1<<16)), false)
	if err != nil {
		return err
	}
	for r := 1; r <= h.o.rounds; r++ {
		h.cabiRound(l, r, r, "libos")
	}
	doc := h.document(nil, nil, time.Since(t0))
	js, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	os.MkdirAll(h.o.out, 0o755)
	if err := os.WriteFile(filepath.Join(h.o.out, "latest-cabi.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	md := markdown(doc)
	if err := os.WriteFile(filepath.Join(h.o.out, "latest-cabi.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	return nil
}
