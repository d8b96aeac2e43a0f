package main

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/demixdp/demixdp/bench/report"
)

// The queue-scaling workloads (issue 14): udp_pps and tcp_connect against
// the libOS serving one and two NIC queues of a two-queue veth, the
// kernel client spreading its load over many flows (-flows), so that B's
// kernel spreads them over A's receive queues. Each configuration records
// the rate, the server's CPU time per reply or connection (scheduler
// accounting of all its threads), and each queue's share of the work
// (from the "queue N:" lines the server prints at exit).

// scaleConfig is one way of running the libOS server.
type scaleConfig struct {
	stack  string // the row in the tables
	queues int
	cpus   string // -cpus for the loops ("": not pinned one by one)
	whole  bool   // run the whole server on the server CPU (taskset), as every other server
}

var scaleConfigs = []scaleConfig{
	{"libos_q1", 1, "", true},
	{"libos_q2_1cpu", 2, "", true},
	{"libos_q2", 2, "", false}, // cpus filled in from the pinning: one loop per CPU
}

// scaleFlows is how many kernel sockets (flows) the client spreads over.
const scaleFlows = 16

// scalingRound runs the one-queue configuration on l1, a one-queue lab (on
// the two-queue lab half of the flows would arrive on a queue nobody
// serves), and the two-queue ones on l2.
func (h *harness) scalingRound(l1, l2 lab, round int) {
	loads := h.wanted([]string{"udp_pps_queues", "tcp_connect_queues"})
	if len(loads) == 0 {
		return
	}
	d := h.bin["dxbench"]
	port := strconv.Itoa(7101 + 10*(round-1)) // fresh ports each round (see tcpRound)
	for _, c := range scaleConfigs {
		l := l2
		if c.queues == 1 {
			l = l1
		}
		if c.queues == 2 && !c.whole && h.o.pin.on {
			c.cpus = strconv.Itoa(h.o.pin.server) + "," + strconv.Itoa(h.o.pin.client)
		}
		for _, wl := range loads {
			var server, client []string
			metric := "pps"
			if wl == "udp_pps_queues" {
				server = []string{h.bin["udp-echo"], "-iface", l["IFA"], "-addr", "198.51.100.21:7777", "-queues", strconv.Itoa(c.queues), "-pops", "32", "-log-level", "off"}
				client = []string{d, "client", "-stack", "kernel", "-workload", "udp_pps", "-remote", "198.51.100.21:7777",
					"-outstanding", "32", "-n", "4000000", "-duration", h.o.ppsTime.String(), "-flows", strconv.Itoa(scaleFlows)}
			} else {
				metric = "cps"
				server = []string{d, "tcp-server", "-stack", "libos", "-iface", l["IFA"], "-addr", "198.51.100.21/24", "-port", port, "-queues", strconv.Itoa(c.queues)}
				client = []string{d, "client", "-stack", "kernel", "-workload", "tcp_connect", "-remote", "198.51.100.21:" + port,
					"-duration", h.o.connTime.String(), "-flows", strconv.Itoa(scaleFlows)}
			}
			if c.cpus != "" {
				server = append(server, "-cpus", c.cpus)
			}
			h.logf("round %d %s %s", round, wl, c.stack)
			if err := h.startServerPinned(l["NSA"], c.whole, server...); err != nil {
				h.note("round %d: %s %s server: %v", round, wl, c.stack, err)
				h.record(wl, c.stack, metric, nan())
				continue
			}
			pid := h.server.Process.Pid
			t0, err0 := cpuTime(pid)
			kv, err := h.client(l["NSB"], 60*time.Second, client...)
			t1, err1 := cpuTime(pid)
			h.stopServer()
			if err != nil {
				h.note("round %d: %s %s: %v", round, wl, c.stack, err)
			}
			rate, done := num(kv, "rate"), num(kv, "received")
			h.record(wl, c.stack, metric, rate)
			if err0 == nil && err1 == nil && done > 0 {
				h.record(wl, c.stack, "server_cpu_us_per_op", float64(t1-t0)/1e3/done)
			}
			shares := queueShares(filepath.Join(h.o.work, "server.log"), wl == "udp_pps_queues")
			for q := range c.queues {
				v := nan()
				if q < len(shares) {
					v = rate * shares[q]
				}
				h.record(wl, c.stack, "q"+strconv.Itoa(q)+"_"+metric, v)
			}
		}
	}
}

// queueShares reads the server's "queue N:" lines and returns each
// queue's share of the work: the replies it echoed (UDP) or the
// connections it established (TCP).
func queueShares(log string, udp bool) []float64 {
	b, err := os.ReadFile(log)
	if err != nil {
		return nil
	}
	key := "conns_established"
	if udp {
		key = "echoed"
	}
	var counts []float64
	var total float64
	for _, line := range strings.Split(string(b), "\n") {
		head, rest, ok := strings.Cut(line, ": ")
		if !ok || !strings.HasPrefix(head, "queue ") {
			continue
		}
		for _, f := range strings.Fields(rest) {
			if k, v, ok := strings.Cut(f, "="); ok && k == key {
				n, _ := strconv.ParseFloat(v, 64)
				counts = append(counts, n)
				total += n
			}
		}
	}
	if total == 0 {
		return nil
	}
	for i := range counts {
		counts[i] /= total
	}
	return counts
}

// scalingRatios adds the scaling ratios of a queue workload: each
// two-queue configuration's rate over the one-queue rate, round by round.
func (h *harness) scalingRatios(workload, metric string, wd *workloadDoc) {
	if workload != "udp_pps_queues" && workload != "tcp_connect_queues" {
		return
	}
	base := h.figures[workload]["libos_q1"][metric]
	for _, st := range []string{"libos_q2", "libos_q2_1cpu"} {
		r := &ratio{Metric: metric + " (scaling: 2 queues over 1)"}
		if v, ok := report.RatioOfRounds(h.figures[workload][st][metric], base); ok {
			v = math.Round(v*1000) / 1000
			r.Value = &v
		} else {
			r.Reason = "no round measured both"
		}
		wd.Ratios[st+"/libos_q1"] = r
	}
}

func nan() float64 { return math.NaN() }
