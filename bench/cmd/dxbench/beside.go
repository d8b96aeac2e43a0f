package main

import (
	"slices"
	"strconv"
	"time"
)

// The round-trip targets against the bare AF_XDP pair (udp_rtt and
// udp_pps of the libOS over the reflector's, tcp_rtt over the reflector's
// udp_rtt) compare two figures that each move by a fifth from one process
// start to the next on this VM, against targets 15% and 30% away. In
// udpRound the two pairs are measured with the gVisor pair between them,
// and each once a round: three ratios a run, whose median landed on either
// side of a target from run to run. besideRound measures them again as
// neighbours, besidePerRound times a round, and the targets are medians of
// those neighbour ratios (document.go). The udpRound figures stay in the
// tables and keep their ratio, without a target.

// Stack names of the neighbour measurements.
const (
	libosBeside     = "libos_beside"
	reflectorBeside = "reflector_beside"
)

// besidePerRound is how many neighbour slots a round has. Each costs about
// 10 s: three server starts, two udp_pps seconds.
const besidePerRound = 3

// withoutFlag returns argv without flag and the value after it.
func withoutFlag(argv []string, flag string) []string {
	out := slices.Clone(argv)
	if i := slices.Index(out, flag); i >= 0 && i+1 < len(out) {
		out = slices.Delete(out, i, i+2)
	}
	return out
}

// besideRound measures, in one slot, the reflector pair's udp_rtt and
// udp_pps, the libOS pair's udp_rtt and udp_pps, and the libOS pair's
// tcp_rtt, as neighbours. slot counts from 1 across the run: odd slots go
// in that order, even ones in the reverse, so a drift favours neither; each
// slot has a TCP port of its own (no TIME_WAIT reuse), from 30001 up, clear
// of tcpRound's (7001 up) and cabiRound's (20001 up).
func (h *harness) besideRound(l lab, round, slot int) {
	loads := h.wanted([]string{"udp_rtt", "udp_pps", "tcp_rtt"})
	if len(loads) == 0 {
		return
	}
	type meas struct {
		stack, workload string
		client          []string
	}
	type step struct {
		server []string
		meas   []meas
	}
	var steps []step
	for _, s := range h.udpServers(l) {
		if s.name != "libos" && s.name != "reflector" {
			continue
		}
		st := step{server: withoutFlag(s.server, "-cpuprofile")}
		name := reflectorBeside
		if s.name == "libos" {
			name = libosBeside
		}
		for _, wl := range []string{"udp_rtt", "udp_pps"} {
			if h.want(wl) {
				st.meas = append(st.meas, meas{name, wl, withoutFlag(s.pair(wl, ""), "-cpuprofile")})
			}
		}
		if len(st.meas) > 0 {
			steps = append(steps, st)
		}
	}
	if h.want("tcp_rtt") {
		port := strconv.Itoa(30001 + 10*(slot-1))
		d := h.bin["dxbench"]
		steps = append(steps, step{
			server: []string{d, "tcp-server", "-stack", "libos", "-iface", l["IFA"], "-addr", "198.51.100.21/24", "-port", port},
			meas: []meas{{libosBeside, "tcp_rtt", []string{d, "client", "-stack", "libos", "-workload", "tcp_rtt",
				"-iface", l["IFB"], "-addr", "198.51.100.22/24", "-port", "9000", "-remote", "198.51.100.21:" + port,
				"-n", strconv.Itoa(h.o.rttN / 2)}}},
		})
	}
	if slot%2 == 0 {
		slices.Reverse(steps)
	}
	for _, st := range steps {
		serr := h.startServer(l["NSA"], st.server...)
		for _, m := range st.meas {
			h.logf("round %d beside %s %s", round, m.workload, m.stack)
			var kv map[string]string
			err := serr
			if err == nil {
				// A client with an empty -samples writes none.
				kv, err = h.client(l["NSB"], 60*time.Second, m.client...)
			}
			if err != nil {
				h.note("round %d: beside %s %s: %v", round, m.workload, m.stack, err)
				kv = nil // a NaN keeps the slots aligned
			}
			switch m.workload {
			case "udp_pps":
				h.record(m.workload, m.stack, "pps", num(kv, "rate", "pps"))
			default:
				h.record(m.workload, m.stack, "p50_us", num(kv, "p50_us", "rtt_p50_us"))
				h.record(m.workload, m.stack, "p99_us", num(kv, "p99_us", "rtt_p99_us"))
			}
		}
		h.stopServer()
	}
}
