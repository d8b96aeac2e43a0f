// Command xdp-client is the bare AF_XDP UDP client that pairs with
// cmd/xdp-reflect: together they are the physical reference of the
// benchmarks, the datapath with no stack on either end. It keeps -outstanding
// requests of -size payload bytes in flight from -src to -dst, busy-polling
// the rings (no sleep, no netstack, no allocation per packet), and prints
//
//	rtt_p50_us=.. rtt_p99_us=.. rtt_p999_us=.. rtt_max_us=.. pps=.. sent=.. received=.. lost=.. bad=.. stale=.. retransmits=.. kicks=.. elapsed_s=..
//
// It runs in shared-address mode inside the namespace that holds the
// interface: -src is the kernel's own address there, and the steering
// program redirects only UDP to the -src port into the socket. The
// destination's MAC address is given with -dstmac (the client does no ARP).
//
//	ip netns exec NS xdp-client -iface IF -src IP:PORT -dst IP:PORT -dstmac MAC
//	    [-n N] [-warmup W] [-duration D] [-size B] [-outstanding K]
//	    [-timeout 100ms] [-retries 3] [-samples FILE] [-cpuprofile FILE]
//
// -samples writes every measured round-trip time as a little-endian int64
// of nanoseconds. The exit status is 1 when a request was lost or a reply
// was malformed, 2 on a usage or setup error.
//
// -stream turns it into a one-way sender, the bare pair's bulk ceiling: it
// sends -n frames of -size payload bytes (or for -duration) in the stream
// format of internal/cli (sequence number, mark, constant tail) as fast as
// the TX ring and its completions allow, receives nothing, and prints
//
//	stream sent=.. completed=.. frame_bytes=.. payload_bytes=.. pps=.. gbps=.. kicks=.. tx_full=.. elapsed_s=..
//
// where gbps counts UDP payload bits the kernel completed (not what the
// receiver got: cmd/xdp-reflect -sink counts that).
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/demixdp/demixdp/bpf"
	"github.com/demixdp/demixdp/internal/cli"
	"github.com/demixdp/demixdp/umem"
	"github.com/demixdp/demixdp/xdp"
)

type options struct {
	iface, src, dst, dstmac string
	n, warmup               uint64
	duration, timeout       time.Duration
	size, outstanding       int
	retries, frames, batch  int
	queue                   int
	samples, cpuprofile     string
	stream                  bool
}

func main() {
	var o options
	flag.StringVar(&o.iface, "iface", "", "interface (required)")
	flag.StringVar(&o.src, "src", "", "source IP:PORT, the kernel's address on -iface (required)")
	flag.StringVar(&o.dst, "dst", "", "server IP:PORT (required)")
	flag.StringVar(&o.dstmac, "dstmac", "", "server's (or next hop's) MAC address (required)")
	flag.Uint64Var(&o.n, "n", 100000, "round trips to measure")
	flag.Uint64Var(&o.warmup, "warmup", 1000, "round trips before measuring")
	flag.DurationVar(&o.duration, "duration", 0, "stop after this long even if -n is not reached (0: no limit)")
	flag.DurationVar(&o.timeout, "timeout", 100*time.Millisecond, "resend a request unanswered this long")
	flag.IntVar(&o.retries, "retries", 3, "resends before a request counts as lost")
	flag.IntVar(&o.size, "size", 64, "UDP payload bytes (12-1472)")
	flag.IntVar(&o.outstanding, "outstanding", 1, "requests in flight (1-1024)")
	flag.IntVar(&o.frames, "frames", 4096, "UMEM frames (half receive, half transmit)")
	flag.IntVar(&o.batch, "batch", 64, "RX descriptors per ring operation")
	flag.IntVar(&o.queue, "queue", 0, "device queue")
	flag.StringVar(&o.samples, "samples", "", "write the measured RTTs here (int64 ns, little endian)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile to this file")
	flag.BoolVar(&o.stream, "stream", false, "send -n frames one way as fast as possible (tx only), no replies expected")
	flag.Parse()
	code, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "xdp-client:", err)
	}
	os.Exit(code)
}

// errUsage marks errors in the command line.
var errUsage = errors.New("usage")

func parseOptions(o options) (endpoints, error) {
	var ep endpoints
	if o.iface == "" || o.src == "" || o.dst == "" || o.dstmac == "" {
		return ep, fmt.Errorf("-iface, -src, -dst and -dstmac are required: %w", errUsage)
	}
	var err error
	if ep.src, err = netip.ParseAddrPort(o.src); err != nil || !ep.src.Addr().Is4() {
		return ep, fmt.Errorf("-src %q: want IPv4:PORT: %w", o.src, errUsage)
	}
	if ep.dst, err = netip.ParseAddrPort(o.dst); err != nil || !ep.dst.Addr().Is4() {
		return ep, fmt.Errorf("-dst %q: want IPv4:PORT: %w", o.dst, errUsage)
	}
	if ep.src.Port() == 0 || ep.dst.Port() == 0 {
		return ep, fmt.Errorf("ports must not be 0: %w", errUsage)
	}
	mac, err := net.ParseMAC(o.dstmac)
	if err != nil || len(mac) != 6 {
		return ep, fmt.Errorf("-dstmac %q: want an Ethernet address: %w", o.dstmac, errUsage)
	}
	copy(ep.dstMAC[:], mac)
	if o.size < minPayload || o.size > 1472 {
		return ep, fmt.Errorf("-size %d: want %d-1472: %w", o.size, minPayload, errUsage)
	}
	if o.outstanding < 1 || o.outstanding > maxOutstanding {
		return ep, fmt.Errorf("-outstanding %d: want 1-%d: %w", o.outstanding, maxOutstanding, errUsage)
	}
	if o.frames < 2*maxOutstanding || o.frames&(o.frames-1) != 0 {
		return ep, fmt.Errorf("-frames %d: want a power of two >= %d: %w", o.frames, 2*maxOutstanding, errUsage)
	}
	if o.batch < 1 || o.batch > 1024 || o.n == 0 {
		return ep, fmt.Errorf("-batch 1-1024 and -n > 0: %w", errUsage)
	}
	return ep, nil
}

func run(o options) (int, error) {
	ep, err := parseOptions(o)
	if err != nil {
		return 2, err
	}
	ifc, err := net.InterfaceByName(o.iface)
	if err != nil {
		return 2, fmt.Errorf("interface %s: %w", o.iface, err)
	}
	copy(ep.srcMAC[:], ifc.HardwareAddr)

	u, err := umem.New(umem.Config{NumFrames: o.frames})
	if err != nil {
		return 2, err
	}
	defer u.Close()
	rs := uint32(o.frames / 2)
	sock, err := xdp.Open(xdp.Config{
		Ifindex: ifc.Index, QueueID: o.queue,
		Umem: u.Bytes(), FrameSize: uint32(u.FrameSize()),
		FillSize: rs, CompletionSize: rs, RXSize: rs, TXSize: rs,
		// The previous owner of the queue (a run that just exited) is
		// released by the kernel from deferred work.
		BusyWait: 3 * time.Second,
	})
	if err != nil {
		return 2, err
	}
	defer sock.Close()
	st, err := bpf.Load(bpf.Config{Mode: bpf.Shared})
	if err != nil {
		return 2, err
	}
	defer st.Close()
	if err := st.AddAddr(ep.src.Addr()); err != nil {
		return 2, err
	}
	if err := st.AddPort(17, ep.src.Port()); err != nil {
		return 2, err
	}
	if err := st.RegisterSocket(uint32(o.queue), sock.FD()); err != nil {
		return 2, err
	}

	c := &client{
		u: u, sock: sock, fill: sock.Fill(), comp: sock.Completion(), rxr: sock.RX(), txr: sock.TX(),
		t:       newTemplate(ep, o.size),
		slots:   make([]slot, o.outstanding),
		txFree:  make([]uint32, 0, o.frames),
		fillBuf: make([]uint64, 0, o.batch),
		ready:   make([]uint32, 0, o.outstanding),
		batch:   uint32(o.batch),
		timeout: int64(o.timeout), retries: o.retries,
		want: o.n + o.warmup, warmup: o.warmup,
	}
	if o.stream {
		c.want, c.warmup = o.n, 0
	} else {
		c.samples = make([]int64, 0, o.n)
	}
	c.setup()
	if err := st.Attach(ifc.Index); err != nil {
		return 2, err
	}
	defer st.Detach()

	var stop atomic.Bool
	defer cli.OnSignal(func() { stop.Store(true) })()

	stopProfile, err := cli.StartProfile(o.cpuprofile)
	if err != nil {
		return 2, err
	}
	defer stopProfile()
	if o.stream {
		elapsed := c.stream(stop.Load, o.duration)
		fmt.Println(streamSummary(c, elapsed))
		return 0, nil
	}
	// A first request can die in ARP-less silence only if -dstmac is wrong;
	// the warm-up absorbs the kernel's first-packet costs.
	elapsed := c.run(stop.Load, o.duration)
	if o.samples != "" {
		if err := writeSamples(o.samples, c.samples); err != nil {
			return 2, err
		}
	}
	fmt.Println(summary(c, elapsed))
	if c.st.lost > 0 || c.st.bad > 0 {
		return 1, nil
	}
	return 0, nil
}

func writeSamples(path string, s []int64) error {
	b := make([]byte, 8*len(s))
	for i, v := range s {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	return os.WriteFile(path, b, 0o644)
}

// percentile returns the q-quantile (0..1) of sorted by nearest rank.
func percentile(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)) + 0.5)
	if i < 1 {
		i = 1
	}
	if i > len(sorted) {
		i = len(sorted)
	}
	return sorted[i-1]
}

func us(ns int64) string { return strconv.FormatFloat(float64(ns)/1e3, 'f', 2, 64) }

func summary(c *client, elapsed time.Duration) string {
	s := slices.Clone(c.samples)
	slices.Sort(s)
	var maxv int64
	if len(s) > 0 {
		maxv = s[len(s)-1]
	}
	pps := 0.0
	if elapsed > 0 {
		pps = float64(c.st.received) / elapsed.Seconds()
	}
	return fmt.Sprintf("rtt_p50_us=%s rtt_p99_us=%s rtt_p999_us=%s rtt_max_us=%s pps=%.0f sent=%d received=%d lost=%d bad=%d stale=%d retransmits=%d kicks=%d samples=%d elapsed_s=%.3f",
		us(percentile(s, 0.5)), us(percentile(s, 0.99)), us(percentile(s, 0.999)), us(maxv), pps,
		c.st.sent, c.st.received, c.st.lost, c.st.bad, c.st.stale, c.st.retransmits, c.st.kicks, len(s), elapsed.Seconds())
}

func streamSummary(c *client, elapsed time.Duration) string {
	pay := uint64(len(c.t.frame) - hdrLen)
	sec := elapsed.Seconds()
	pps, gbps := 0.0, 0.0
	if sec > 0 {
		pps = float64(c.st.completed) / sec
		gbps = float64(c.st.completed*pay) * 8 / sec / 1e9
	}
	return fmt.Sprintf("stream sent=%d completed=%d frame_bytes=%d payload_bytes=%d pps=%.0f gbps=%.4f kicks=%d tx_full=%d elapsed_s=%.3f",
		c.st.sent, c.st.completed, len(c.t.frame), pay, pps, gbps, c.st.kicks, c.st.txFull, sec)
}
