package main

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ceilingPayload is the UDP payload of the bulk ceiling's frames: a
// 1500-byte IPv4 packet, the MTU, as every full-sized tcp_bulk segment.
const ceilingPayload = 1472

// ceilingRound measures bulk_ceiling once: the bare AF_XDP pair streaming
// one way, cmd/xdp-client -stream in B into cmd/xdp-reflect -sink -busy in
// A, up to 1 GiB of payload or -bulk-time, as tcp_bulk. The figure is what
// arrived: the sink's count of payload bytes over the sender's time from
// first post to last completion. What the sender offered and the share
// lost on the way (the receiver's fill ring ran dry, or the veth's queue
// was full) are recorded beside it.
func (h *harness) ceilingRound(l lab, round int) {
	if !h.want("bulk_ceiling") {
		return
	}
	const wl, stack = "bulk_ceiling", "reflector"
	h.logf("round %d bulk_ceiling", round)
	fail := func(format string, a ...any) {
		h.note("round %d: bulk_ceiling: "+format, append([]any{round}, a...)...)
		for _, m := range []string{"gbps", "pps", "offered_gbps", "loss"} {
			h.record(wl, stack, m, math.NaN())
		}
	}
	if err := h.startServer(l["NSA"], h.bin["xdp-reflect"], "-iface", l["IFA"], "-port", "7777", "-addr", l["A"], "-busy", "-sink"); err != nil {
		fail("sink: %v", err)
		return
	}
	frames := (1<<30 + ceilingPayload - 1) / ceilingPayload
	kv, err := h.client(l["NSB"], h.o.bulkTime+60*time.Second, h.bin["xdp-client"], "-iface", l["IFB"], "-src", l["B"]+":9000",
		"-dst", l["A"]+":7777", "-dstmac", l["MACA"], "-stream", "-size", strconv.Itoa(ceilingPayload),
		"-n", strconv.Itoa(frames), "-duration", h.o.bulkTime.String())
	h.stopServer() // the sink prints its counters as it exits
	if err != nil {
		fail("%v", err)
		return
	}
	log, _ := os.ReadFile(filepath.Join(h.o.work, "server.log"))
	sk := parseCounters(string(log))
	if c := num(sk, "sink.corrupt"); c != 0 {
		h.note("round %d: bulk_ceiling: the sink found %v corrupt frames", round, c)
	}
	got, bytes, el, sent := num(sk, "sink.frames"), num(sk, "sink.bytes"), num(kv, "elapsed_s"), num(kv, "completed")
	if math.IsNaN(got) || math.IsNaN(el) || el <= 0 || got == 0 {
		fail("no count from the sink (elapsed %v): %s", el, log)
		return
	}
	h.record(wl, stack, "gbps", bytes*8/el/1e9)
	h.record(wl, stack, "pps", got/el)
	h.record(wl, stack, "offered_gbps", num(kv, "gbps"))
	h.record(wl, stack, "loss", 1-got/sent)
}

// parseCounters returns the "group: key=value ..." lines of out as
// "group.key" entries.
func parseCounters(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		group, rest, ok := strings.Cut(line, ": ")
		if !ok || strings.Contains(group, " ") {
			continue
		}
		for _, f := range strings.Fields(rest) {
			if k, v, ok := strings.Cut(f, "="); ok {
				m[group+"."+k] = v
			}
		}
	}
	return m
}
